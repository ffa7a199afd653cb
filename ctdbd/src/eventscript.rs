//! The event scripts, as Samba's daemon runs them: not itself but through
//! the event daemon (`ctdb-eventd`), which ctdbd starts at start-up and
//! talks to over its unix socket with the event protocol
//! (`ctdb_protocol::event`).  Every event of the "legacy" component runs
//! with EventScriptTimeout; the daemon goes on serving while it runs and
//! the event's continuation gets the event daemon's result.  Start-up's
//! "init" and shutdown's "shutdown" are waited for, as in Samba.
//!
//! The event daemon's start-up pipe stays open for its life: when it reads
//! as closed, the event daemon has gone and ctdbd exits, as Samba's does.
//! The other way round, the event daemon gets SIGTERM when ctdbd dies
//! (Samba's notices at its next look at `-P`, seconds later), and a new
//! ctdbd waits a moment for an old event daemon's pid file.

use crate::daemon::Daemon;
use crate::{log_err, log_info, log_notice};
use ctdb_protocol::event::{self as wire, EventReply, EventRequest, RunRequest};
use mio::net::UnixStream;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::HashMap;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The poll token of the connection to the event daemon.
pub const EVENTD_SOCKET: Token = Token(4);
/// The poll token of the event daemon's start-up pipe (closed: it died).
pub const EVENTD_WATCH: Token = Token(5);

/// Where the event daemon binary is when neither CTDB_EVENTD nor a binary
/// beside ctdbd's own names one (Samba's helper directory).
const HELPER_BINDIR_EVENTD: &str = "/usr/libexec/ctdb/ctdb-eventd";
/// How long the event daemon has to say it is ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event daemon left by a killed ctdbd may hold its pid file.
const PREVIOUS_EXIT_WAIT: Duration = Duration::from_secs(5);
/// The component whose scripts the daemon runs.
const COMPONENT: &str = "legacy";

/// The errno values the event daemon reports in a run's result.
const ETIMEDOUT: i32 = nix::libc::ETIMEDOUT;
const ECANCELED: i32 = nix::libc::ECANCELED;

/// An event of the daemon's scripts, by Samba's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start-up, before the transport (waited for).
    Init,
    /// Start-up, before the recovery daemon.
    Setup,
    /// After the first recovery; the node then runs.
    Startup,
    /// A recovery begins (START_RECOVERY).
    StartRecovery,
    /// A recovery ended (END_RECOVERY).
    Recovered,
    /// An address comes to this node: iface, address, mask bits.
    TakeIp,
    /// An address leaves this node: iface, address, mask bits.
    ReleaseIp,
    /// The periodic health check.
    Monitor,
    /// The daemon stops (waited for).
    Shutdown,
    /// An address moves between interfaces: old, new, address, bits.
    UpdateIp,
    /// A takeover run finished (IPREALLOCATED).
    IpReallocated,
}

impl Event {
    /// The event's name as scripts get it.
    pub fn name(self) -> &'static str {
        match self {
            Event::Init => "init",
            Event::Setup => "setup",
            Event::Startup => "startup",
            Event::StartRecovery => "startrecovery",
            Event::Recovered => "recovered",
            Event::TakeIp => "takeip",
            Event::ReleaseIp => "releaseip",
            Event::Monitor => "monitor",
            Event::Shutdown => "shutdown",
            Event::UpdateIp => "updateip",
            Event::IpReallocated => "ipreallocated",
        }
    }

    /// How many words its arguments have.
    fn arg_count(self) -> usize {
        match self {
            Event::TakeIp | Event::ReleaseIp => 3,
            Event::UpdateIp => 4,
            _ => 0,
        }
    }

    /// Whether it may run while the node is in recovery.
    fn allowed_in_recovery(self) -> bool {
        matches!(
            self,
            Event::Init
                | Event::Setup
                | Event::StartRecovery
                | Event::Shutdown
                | Event::ReleaseIp
                | Event::IpReallocated
        )
    }

    /// A hung script of this event counts as success (logged).
    fn timeout_ignored(self) -> bool {
        matches!(
            self,
            Event::StartRecovery | Event::Recovered | Event::TakeIp | Event::ReleaseIp
        )
    }
}

/// How an event's run ended: 0, or the errno the event daemon gave
/// (ETIMEDOUT, ECANCELED, ENOEXEC for a failed script, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventStatus(pub i32);

impl EventStatus {
    /// Every script succeeded.
    pub fn ok(self) -> bool {
        self.0 == 0
    }
    /// The run was cut at its timeout.
    pub fn timed_out(self) -> bool {
        self.0 == ETIMEDOUT
    }
    /// A later run cancelled it (monitor).
    pub fn cancelled(self) -> bool {
        self.0 == ECANCELED
    }
}

/// Why an event could not be started or waited for.
#[derive(Debug)]
pub enum EventError {
    /// The node is in recovery and the event may not run then.
    InRecovery(Event),
    /// The arguments do not have the event's number of words.
    BadArguments(Event, String),
    /// The event daemon could not be started or reached.
    Daemon(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InRecovery(e) => {
                write!(f, "Refusing to run event '{}' while in recovery", e.name())
            }
            EventError::BadArguments(e, a) => {
                write!(f, "Bad event script arguments '{}' for '{}'", a, e.name())
            }
            EventError::Daemon(why) => write!(f, "{why}"),
        }
    }
}

/// What runs when an event's run ends.
pub type EventDone = Box<dyn FnOnce(&mut Daemon, EventStatus)>;

/// The running event daemon and the connection to it.
pub struct EventDaemon {
    pid: nix::unistd::Pid,
    watch: OwnedFd,
    conn: UnixStream,
    output: Vec<u8>,
    input: Vec<u8>,
    waiting: HashMap<u32, (Event, EventDone)>,
    next_reqid: u32,
}

/// The event daemon binary: CTDB_EVENTD, else `ctdb-eventd` beside this
/// executable (a build tree), else in `../libexec/ctdb` from it (an
/// installation, as Debian lays Samba's out), else Samba's helper
/// directory.
fn eventd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CTDB_EVENTD") {
        return PathBuf::from(p);
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let candidates = dir.map(|d| [d.join("ctdb-eventd"), d.join("../libexec/ctdb/ctdb-eventd")]);
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(HELPER_BINDIR_EVENTD))
}

/// True while another process holds the fcntl write lock on `pidfile` (an
/// event daemon is running with it).
fn pidfile_locked(pidfile: &Path) -> bool {
    let Ok(f) = std::fs::File::open(pidfile) else {
        return false;
    };
    let mut lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let asked = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETLK(&mut lock));
    asked.is_ok() && lock.l_type != nix::libc::F_UNLCK as i16
}

/// After a ctdbd was killed, its event daemon may still hold the pid file
/// for a moment (it gets SIGTERM when its parent dies): the new one would
/// fail to start, so wait a little for it.
fn wait_for_previous(pidfile: &Path) {
    let deadline = Instant::now() + PREVIOUS_EXIT_WAIT;
    let mut told = false;
    while pidfile_locked(pidfile) && Instant::now() < deadline {
        if !told {
            log_notice!("Waiting for the previous event daemon to exit");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the event daemon's start-up word on `fd`: 0 is ready.
fn wait_ready(fd: &OwnedFd) -> Result<(), String> {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(STARTUP_TIMEOUT).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, ms) {
        Ok(0) => return Err("timed out".into()),
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let mut word = [0u8; 4];
    match nix::unistd::read(fd, &mut word) {
        Ok(4) if u32::from_ne_bytes(word) == 0 => Ok(()),
        Ok(4) => Err("it reported a failure".into()),
        Ok(0) => Err("it exited".into()),
        Ok(_) => Err("short start-up word".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl EventDaemon {
    /// Starts the event daemon (`-P` this pid, `-S` the start-up pipe),
    /// waits until it is ready and connects to `socket`.
    pub fn start(socket: &Path, pidfile: &Path) -> Result<EventDaemon, EventError> {
        let fail = |why: String| EventError::Daemon(why);
        wait_for_previous(pidfile);
        if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_err() {
            let _ = std::fs::remove_file(socket);
        }
        let (rd, wr) = nix::unistd::pipe().map_err(|e| fail(e.to_string()))?;
        nix::fcntl::fcntl(
            &rd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| fail(e.to_string()))?;
        let bin = eventd_binary();
        let ppid = std::process::id().to_string();
        let fd = wr.as_raw_fd().to_string();
        log_notice!(
            "Starting event daemon {} -P {} -S {}",
            bin.display(),
            ppid,
            fd
        );
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["-P", &ppid, "-S", &fd]);
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes one system call (prctl); it allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("{}: {}", bin.display(), e)))?;
        drop(wr);
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        if let Err(why) = wait_ready(&rd) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            return Err(fail(format!("Failed to initialize event daemon ({why})")));
        }
        let std_conn = std::os::unix::net::UnixStream::connect(socket)
            .map_err(|e| fail(format!("Failed to connect to event daemon: {e}")))?;
        std_conn
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        Ok(EventDaemon {
            pid,
            watch: rd,
            conn: UnixStream::from_std(std_conn),
            output: Vec::new(),
            input: Vec::new(),
            waiting: HashMap::new(),
            next_reqid: 1,
        })
    }

    /// Registers the connection and the start-up pipe with the loop.
    pub fn register(&mut self, registry: &Registry) -> std::io::Result<()> {
        registry.register(
            &mut self.conn,
            EVENTD_SOCKET,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        registry.register(
            &mut SourceFd(&self.watch.as_raw_fd()),
            EVENTD_WATCH,
            Interest::READABLE,
        )
    }

    /// Queues a run request; returns its reqid.
    fn send_run(&mut self, event: Event, args: Option<&str>, timeout: u32) -> u32 {
        let reqid = self.next_reqid;
        self.next_reqid = self.next_reqid.wrapping_add(1).max(1);
        let req = EventRequest::Run(RunRequest {
            component: COMPONENT.to_string(),
            event: event.name().to_string(),
            args: args.map(str::to_string),
            timeout,
            flags: 0,
        });
        self.output.extend(wire::encode_request(reqid, &req));
        self.flush();
        reqid
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn flush(&mut self) {
        while !self.output.is_empty() {
            match self.conn.write(&self.output) {
                Ok(0) => return,
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log_err!("Failed to write to event daemon: {}", e);
                    return;
                }
            }
        }
    }

    /// Reads what the socket has; returns the whole replies, or an error
    /// when the event daemon closed the connection.
    fn read_replies(&mut self) -> Result<Vec<(u32, EventReply)>, String> {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.read(&mut buf) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut replies = Vec::new();
        while let Some(len) = wire::frame_length(&self.input).map_err(|e| format!("{e:?}"))? {
            let packet: Vec<u8> = self.input.drain(..len).collect();
            match wire::decode_reply(&packet) {
                Ok((header, reply)) => replies.push((header.reqid, reply)),
                Err(e) => log_err!("Invalid packet received, ret={:?}", e),
            }
        }
        Ok(replies)
    }

    /// Runs `event` and waits for it (start-up and shutdown), at most its
    /// timeout and a little more.
    fn run_and_wait(&mut self, event: Event, timeout: u32) -> EventStatus {
        let reqid = self.send_run(event, None, timeout);
        let deadline = Instant::now() + Duration::from_secs(u64::from(timeout) + 5);
        loop {
            self.flush();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return EventStatus(ETIMEDOUT);
            }
            let mut fds = [PollFd::new(self.conn.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, ms).is_err() {
                continue;
            }
            match self.read_replies() {
                Ok(replies) => {
                    if let Some((_, r)) = replies.into_iter().find(|(id, _)| *id == reqid) {
                        return EventStatus(r.result);
                    }
                }
                Err(why) => {
                    log_err!("Event daemon connection lost: {}", why);
                    return EventStatus(nix::libc::EPIPE);
                }
            }
        }
    }

    /// Stops the event daemon (SIGTERM by its pid).
    pub fn stop(&self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGTERM);
    }
}

/// Checks an event's arguments: the number of words Samba's daemon sends.
fn check_args(event: Event, args: &str) -> Result<(), EventError> {
    if args.split_whitespace().count() != event.arg_count() {
        return Err(EventError::BadArguments(event, args.to_string()));
    }
    Ok(())
}

impl Daemon {
    /// Starts the event daemon (Samba exits when it cannot).
    pub(crate) fn start_eventd(&mut self) -> Result<(), EventError> {
        let socket = self.state.paths.rundir.join("eventd.socket");
        let pidfile = self.state.paths.rundir.join("eventd.pid");
        let mut e = EventDaemon::start(&socket, &pidfile)?;
        e.register(self.poll.registry())
            .map_err(|err| EventError::Daemon(err.to_string()))?;
        self.eventd = Some(e);
        Ok(())
    }

    /// Runs `event` with `args` through the event daemon; `done` gets its
    /// status.  Without an event daemon (unit tests) every event succeeds
    /// at once, as with no scripts.
    pub(crate) fn run_event(
        &mut self,
        event: Event,
        args: &str,
        done: EventDone,
    ) -> Result<(), EventError> {
        if self.in_recovery() && !event.allowed_in_recovery() {
            return Err(EventError::InRecovery(event));
        }
        check_args(event, args)?;
        let timeout = self.state.tunables.event_script_timeout;
        let Some(e) = self.eventd.as_mut() else {
            done(self, EventStatus(0));
            return Ok(());
        };
        let reqid = e.send_run(event, Some(args), timeout);
        e.waiting.insert(reqid, (event, done));
        log_info!("Running event {} with arguments {}", event.name(), args);
        Ok(())
    }

    /// Runs `event` (no arguments) and waits for its end: "init" and
    /// "shutdown" (Samba bans no node for their timeouts).
    pub(crate) fn run_event_and_wait(&mut self, event: Event) -> EventStatus {
        let timeout = self.state.tunables.event_script_timeout;
        match self.eventd.as_mut() {
            Some(e) => e.run_and_wait(event, timeout),
            None => EventStatus(0),
        }
    }

    /// The event daemon's socket is readable or writable.
    pub(crate) fn eventd_ready(&mut self) {
        let Some(e) = self.eventd.as_mut() else {
            return;
        };
        e.flush();
        let replies = match e.read_replies() {
            Ok(r) => r,
            Err(why) => {
                log_err!("Event daemon connection lost: {}", why);
                return;
            }
        };
        for (reqid, reply) in replies {
            let Some((event, done)) = self.eventd.as_mut().and_then(|e| e.waiting.remove(&reqid))
            else {
                continue;
            };
            let mut status = EventStatus(reply.result);
            if status.timed_out() && event.timeout_ignored() {
                log_err!("Ignoring hung script for {} event", event.name());
                status = EventStatus(0);
            }
            done(self, status);
        }
    }

    /// The event daemon's start-up pipe closed: it has gone.
    pub(crate) fn eventd_gone(&mut self) -> ! {
        log_err!("Eventd went away - exiting");
        std::process::exit(1);
    }

    /// Stops the event daemon at shutdown.
    pub(crate) fn stop_eventd(&mut self) {
        if let Some(e) = self.eventd.take() {
            e.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::tests::daemon;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn arguments_must_have_the_events_word_count() {
        assert!(check_args(Event::Monitor, "").is_ok());
        assert!(check_args(Event::Monitor, "x").is_err());
        assert!(check_args(Event::TakeIp, "pub0 192.0.2.1 24").is_ok());
        assert!(check_args(Event::TakeIp, "pub0 192.0.2.1").is_err());
        assert!(check_args(Event::UpdateIp, "pub0 pub1 192.0.2.1 24").is_ok());
        assert!(check_args(Event::ReleaseIp, "pub0  192.0.2.1\t24").is_ok());
    }

    #[test]
    fn in_recovery_only_samba_s_events_run() {
        let (mut d, dir) = daemon("eventscript-recovery");
        d.state.recmode = ctdb_protocol::types::RECOVERY_ACTIVE;
        let ran = Rc::new(Cell::new(0));
        for (event, args) in [
            (Event::StartRecovery, ""),
            (Event::ReleaseIp, "pub0 192.0.2.1 24"),
            (Event::IpReallocated, ""),
        ] {
            let r = ran.clone();
            let done = Box::new(move |_: &mut Daemon, s: EventStatus| r.set(r.get() + s.0 + 1));
            assert!(d.run_event(event, args, done).is_ok(), "{}", event.name());
        }
        assert_eq!(ran.get(), 3);
        for (event, args) in [
            (Event::Recovered, ""),
            (Event::Monitor, ""),
            (Event::Startup, ""),
            (Event::TakeIp, "pub0 192.0.2.1 24"),
        ] {
            let done = Box::new(|_: &mut Daemon, _: EventStatus| panic!("ran"));
            let e = d.run_event(event, args, done).unwrap_err();
            assert!(matches!(e, EventError::InRecovery(x) if x == event));
            assert!(e.to_string().contains("while in recovery"));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hung_scripts_are_ignored_only_where_samba_ignores_them() {
        let ignored: Vec<_> = [
            Event::Init,
            Event::Setup,
            Event::Startup,
            Event::StartRecovery,
            Event::Recovered,
            Event::TakeIp,
            Event::ReleaseIp,
            Event::Monitor,
            Event::Shutdown,
            Event::UpdateIp,
            Event::IpReallocated,
        ]
        .into_iter()
        .filter(|e| e.timeout_ignored())
        .map(Event::name)
        .collect();
        assert_eq!(
            ignored,
            ["startrecovery", "recovered", "takeip", "releaseip"]
        );
    }
}
