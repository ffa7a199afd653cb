//! ctdbd: a Rust replacement for Samba's CTDB daemon.  See docs/ctdbd.md.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The daemon's log macros, shared with the other daemon through ctdb-logging.
use ctdb_logging::{log_debug, log_err, log_info, log_notice, log_warn};

mod actions;
mod announce;
mod call;
mod client_tcp;
mod cluster;
#[allow(dead_code)] // some keys are parsed now and used by later features
mod config;
mod control;
mod daemon;
mod databases;
mod db;
mod dispatch;
mod event_loop;
mod eventscript;
mod forward;
mod keepalive;
mod logging;
mod ltdb;
mod messages;
mod monitor;
mod node_link;
mod nodes;
mod public_addresses;
mod recoverd;
mod requests;
mod signals;
mod stats;
mod timers;
mod transport;
mod tunables;
mod vacuum;

use config::{Config, LogTarget, Paths};
use ctdb_protocol::types::{self as wire_types, RunState};
use ctdb_protocol::wire::Timeval;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, setsid, ForkResult};
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const VERSION: &str = "4.17.12";

fn usage(to_stdout: bool) {
    let text = "Usage: ctdbd [OPTION...]\n  -i, --interactive     don't fork, log to stderr\n\nHelp options:\n  -?, --help            Show this help message\n      --usage           Display brief usage message\n";
    if to_stdout {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
}

fn die(msgs: &[String]) -> ! {
    for m in msgs {
        log_err!("{}", m);
    }
    std::process::exit(1);
}

/// Holds the pid file open with an fcntl write lock for the daemon's life.
struct PidFile {
    path: PathBuf,
    _file: std::fs::File,
}

impl PidFile {
    fn create(path: &Path) -> Result<PidFile, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("Failed to create PID file {}: {}", path.display(), e))?;
        // A write lock on the whole file, however long it grows.
        let whole_file = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        if fcntl(&file, FcntlArg::F_SETLK(&whole_file)).is_err() {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            return Err(format!(
                "PID file {} is locked: ctdbd already running (pid {})",
                path.display(),
                holder.trim()
            ));
        }
        file.set_len(0).map_err(|e| e.to_string())?;
        let mut f = &file;
        writeln!(f, "{}", std::process::id()).map_err(|e| e.to_string())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the client socket, refusing to steal one a live daemon is using.
fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "Domain socket {} is in use by another daemon",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("Unable to remove stale socket {}: {}", path.display(), e))?;
        log_notice!("Removed stale socket {}", path.display());
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("Unable to bind on ctdb socket {}: {}", path.display(), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    Ok(l)
}

/// Finds this node's PNN.  With [cluster] node address, that address must be
/// in the nodes file; otherwise the first nodes-file address we can bind wins.
/// The bound listener is kept for the node transport.
fn find_pnn(
    cfg: &Config,
    nodes: &[nodes::Node],
) -> Result<(u32, Option<std::net::TcpListener>), String> {
    let try_bind = |a: SocketAddr| std::net::TcpListener::bind(a);
    if let Some(addr) = cfg.node_address {
        let n = nodes
            .iter()
            .find(|n| !n.deleted && n.addr.ip() == addr)
            .ok_or_else(|| format!("Node address {addr} is not in the nodes file"))?;
        let l = try_bind(n.addr)
            .map_err(|e| format!("Unable to bind to node address {}: {}", n.addr, e))?;
        return Ok((n.pnn, Some(l)));
    }
    for n in nodes.iter().filter(|n| !n.deleted) {
        if let Ok(l) = try_bind(n.addr) {
            return Ok((n.pnn, Some(l)));
        }
    }
    Err("Unable to bind to any of the node addresses".to_string())
}

/// Detaches from the terminal: forks (the parent exits 0), starts a new
/// session and points stdin, stdout and stderr at /dev/null.
fn daemonise() {
    // SAFETY: no other thread exists yet, so the child may run any code; the
    // parent only exits.
    match unsafe { fork() } {
        Err(_) => die(&["fork failed".to_string()]),
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
    }
    let _ = setsid();
    // Not close-on-exec: the copies on 0, 1 and 2 are inherited by children.
    if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
        if null.as_raw_fd() <= 2 {
            // It already is one of the standard streams: keep it open.
            let _ = null.into_raw_fd();
        }
    }
}

/// public_addresses: every line added as ctdb_set_public_addresses does
/// (a missing file is no addresses; a bad line or an unknown interface
/// stops the daemon).
fn public_addresses(path: &Path, pnn: u32) -> Result<public_addresses::PublicAddresses, String> {
    let mut table = public_addresses::PublicAddresses::new(ctdb_protocol::Pnn(pnn));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log_warn!("Not loading public addresses, no file {}", path.display());
            return Ok(table);
        }
        Err(e) => {
            return Err(format!(
                "Failed to load public address list '{}': {e}",
                path.display()
            ))
        }
    };
    let lines = public_addresses::parse_file(&text)?;
    for (n, c) in lines.iter().enumerate() {
        table.add(c, &public_addresses::iface_exists).map_err(|e| {
            format!(
                "{e}\nFailed to add line {} to the public address list",
                n + 1
            )
        })?;
    }
    log_notice!("Loaded public addresses from {}", path.display());
    Ok(table)
}

/// Exits 0 after flushing what was printed.
fn exit_ok() -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// Parses the command line; returns whether `-i` was given, or exits for
/// --help, --usage, --version and unknown options.
fn parse_args() -> bool {
    let mut interactive = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-i" | "--interactive" => interactive = true,
            "-?" | "--help" => {
                usage(true);
                exit_ok();
            }
            "--usage" => {
                println!("Usage: ctdbd [-i?] [-i|--interactive] [-?|--help] [--usage]");
                exit_ok();
            }
            "--version" | "-V" => {
                println!("Version {VERSION} (ctdbd-rs {})", env!("CARGO_PKG_VERSION"));
                exit_ok();
            }
            other => {
                eprintln!("Invalid option {other}: unknown option");
                usage(false);
                std::process::exit(1);
            }
        }
    }
    interactive
}

/// Reads the nodes file; a missing file or one with only deleted nodes is
/// fatal.
fn read_nodes(path: &Path) -> Vec<nodes::Node> {
    nodes::read(path).unwrap_or_else(|e| die(&[e]))
}

/// Loads ctdb.tunables over the defaults; any problem is fatal.
fn load_tunables(path: &Path) -> tunables::Tunables {
    let mut tun = tunables::Tunables::default();
    match tun.load_file(path) {
        Ok(true) => log_notice!("Loaded tunables from {}", path.display()),
        Ok(false) => {}
        Err(errs) => {
            let mut m: Vec<String> = errs
                .into_iter()
                .map(|e| format!("{}: {}", path.display(), e))
                .collect();
            m.push(format!("Failed to load tunables from {}", path.display()));
            die(&m);
        }
    }
    tun
}

/// Bytes from which glibc's malloc maps a block of its own (its default,
/// 128 KiB, rising with what is freed, is below a record buffer).
const MALLOC_MMAP_THRESHOLD: i32 = 4 << 20;
/// Free bytes at the top of a malloc heap before glibc gives them back.
const MALLOC_TRIM_THRESHOLD: i32 = 16 << 20;

/// Keeps the record buffers a recovery moves (about RecBufferSizeLimit,
/// 1 MB, each, allocated and freed by the hundred) in the heap: with the
/// defaults each one was a fresh mapping or fresh heap pages, faulted in
/// page by page (a third of the recovery's cpu time). Freed memory beyond
/// 16 MiB still goes back to the system.
fn tune_malloc() {
    // SAFETY: mallopt only sets glibc's malloc parameters; it is called
    // before any other thread exists and takes no pointers.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1
    };
    if !ok {
        log_warn!("Could not tune malloc; recoveries will be slower");
    }
}

fn main() {
    let interactive = parse_args();
    if interactive {
        // As Samba's: the event daemon (and the scripts) see it and log to
        // stderr too.  Set before any thread starts.
        std::env::set_var("CTDB_INTERACTIVE", "true");
    }
    let paths = Paths::from_env().unwrap_or_else(|e| die(&[e]));
    let cfg = Config::load(&paths).unwrap_or_else(|e| die(&e));

    let target = if interactive {
        LogTarget::Stderr
    } else {
        config::parse_log_location(&cfg.log_location).expect("validated at load")
    };
    if let Err(e) = logging::init(target, cfg.log_level, paths.test_mode) {
        die(&[format!(
            "Failed to initialise logging to {}: {}",
            cfg.log_location, e
        )]);
    }
    log_notice!("CTDB starting on node");
    tune_malloc();
    if cfg.cluster_lock.is_none() {
        log_warn!("Cluster lock not set");
    }

    let nodes = read_nodes(&paths.etcdir.join("nodes"));
    let tun = load_tunables(&paths.etcdir.join("ctdb.tunables"));

    let (pnn, node_listener) = find_pnn(&cfg, &nodes).unwrap_or_else(|e| die(&[e]));

    let public =
        public_addresses(&paths.etcdir.join("public_addresses"), pnn).unwrap_or_else(|e| die(&[e]));

    if !paths.rundir.is_dir() {
        if let Err(e) = std::fs::create_dir_all(&paths.rundir) {
            die(&[format!(
                "Unable to create run directory {}: {}",
                paths.rundir.display(),
                e
            )]);
        }
    }

    if !interactive {
        daemonise();
    }

    let pidfile = PidFile::create(&paths.pidfile()).unwrap_or_else(|e| die(&[e]));
    log_notice!(
        "Starting CTDBD (Version {}) as PID: {}",
        VERSION,
        std::process::id()
    );
    log_notice!("Created PID file {}", paths.pidfile().display());

    let sock_path = paths.socket();
    let listener = bind_socket(&sock_path).unwrap_or_else(|e| die(&[e]));
    log_notice!("Listening to ctdb socket {}", sock_path.display());
    log_notice!("PNN is {}", pnn);

    let mut caps = wire_types::CAP_RECMASTER
        | wire_types::CAP_LMASTER
        | wire_types::CAP_PARALLEL_RECOVERY
        | wire_types::CAP_FRAGMENTED_CONTROLS;
    if !cfg.lmaster_capability {
        caps &= !wire_types::CAP_LMASTER;
    }
    if !cfg.leader_capability {
        caps &= !wire_types::CAP_RECMASTER;
    }
    let mut flags = 0;
    if cfg.start_as_disabled {
        flags |= wire_types::NODE_FLAGS_PERMANENTLY_DISABLED;
    }
    if cfg.start_as_stopped {
        flags |= wire_types::NODE_FLAGS_STOPPED;
    }

    let now = Timeval::now();
    let vnn_map = daemon::NodeState::initial_vnn_map(&nodes);
    let node_flags = daemon::NodeState::initial_node_flags(&nodes, pnn, flags);
    let state = daemon::NodeState {
        pnn,
        nodes,
        generation: ctdb_protocol::Generation::INVALID,
        vnn_map,
        recmode: wire_types::RECOVERY_ACTIVE,
        all_frozen: false,
        runstate: RunState::Unknown,
        start_time: now,
        last_recovery_started: now,
        last_recovery_finished: now,
        tunables: tun,
        capabilities: caps,
        node_flags,
        config: cfg,
        paths: paths.clone(),
        public,
    };
    let mut daemon = daemon::Daemon::new(listener, node_listener, state)
        .unwrap_or_else(|e| die(&[format!("Failed to set up event loop: {e}")]));
    let res = daemon.run();
    daemon.shutdown();
    drop(pidfile);
    if let Err(e) = res {
        die(&[format!("Event loop failed: {e}")]);
    }
    log_notice!("CTDB daemon shutting down");
}
