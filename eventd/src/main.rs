//! ctdb-eventd: runs CTDB's event scripts for ctdbd and the `ctdb event`
//! tool over a unix socket, as a drop-in for Samba 4.17's daemon (same
//! command line, paths, configuration, protocol and results).

// The daemon's log macros, shared with the other daemon through ctdb-logging.
use ctdb_logging::{log_debug, log_err, log_notice, log_warn};

mod child;
mod component;
mod config;
mod logging;
mod options;
mod paths;
mod pidfile;
mod scripts;
mod server;
mod signals;

use config::{EventConfig, LogTarget, DEBUG_NOTICE};
use nix::fcntl::{FcntlArg, FdFlag};
use options::Options;
use paths::Paths;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

fn main() {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if opts.help || opts.usage {
        print!(
            "{}",
            if opts.help {
                options::HELP
            } else {
                options::USAGE
            }
        );
        std::process::exit(0);
    }
    let interactive = opts.interactive || std::env::var_os("CTDB_INTERACTIVE").is_some();
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::abort();
        }
    };
    let config = match EventConfig::load(&paths.config(), &paths.etc_dir) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                log_err!("{}", line);
            }
            log_err!("Failed to initialize event config");
            std::process::exit(libc::EINVAL);
        }
    };
    let (target, level) = if interactive {
        (LogTarget::Stderr, DEBUG_NOTICE)
    } else {
        (config.log_target.clone(), config.log_level)
    };
    if let Err(e) = logging::init(target, level) {
        eprintln!("Failed to setup sock daemon: {e}");
        std::process::exit(1);
    }
    std::process::exit(run(&paths, config, &opts));
}

/// Starts the daemon and runs it; the process's exit status.
fn run(paths: &Paths, config: EventConfig, opts: &Options) -> i32 {
    let _pidfile = match pidfile::PidFile::create(&paths.pidfile()) {
        Ok(p) => p,
        Err(e) => {
            log_err!(
                "Failed to create pid file {}: {}",
                paths.pidfile().display(),
                e
            );
            return libc::EEXIST;
        }
    };
    log_notice!("daemon started, pid={}", std::process::id());
    log_notice!("startup completed successfully");
    let mut daemon = match server::Daemon::new(paths, config.debug_script, opts.watch_pid) {
        Ok(d) => d,
        Err(e) => {
            log_err!("Failed to setup socket {}: {}", paths.socket().display(), e);
            return e.raw_os_error().unwrap_or(libc::EIO);
        }
    };
    if let Some(fd) = opts.startup_fd {
        notify_startup(fd);
    }
    match daemon.run() {
        Ok(reason) => reason.status(),
        Err(e) => {
            log_err!("event loop failed: {}", e);
            e.raw_os_error().unwrap_or(libc::EIO)
        }
    }
}

/// Tells the parent the daemon is ready: four zero bytes on `fd`.  The
/// descriptor then stays open (close-on-exec, so no script inherits it)
/// for the daemon's whole life: Samba's ctdbd takes its end-of-file as the
/// event daemon being gone.
fn notify_startup(fd: i32) {
    if fd < 0 || !std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        log_warn!("Failed to write zero to pipe FD");
        return;
    }
    // SAFETY: fd was handed to this process on the command line to be
    // written and held; it was open before the daemon opened anything (so
    // none of the daemon's own descriptors has that number) and nothing
    // else in the process owns it.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if nix::fcntl::fcntl(&f, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
        log_err!("Failed to set close-on-exec on startup fd");
    }
    if f.write_all(&0u32.to_ne_bytes()).is_err() {
        log_warn!("Failed to write zero to pipe FD");
    }
    // Held open until the process exits.
    let _ = f.into_raw_fd();
}
