//! The daemon's loop: one mio poll over the listening socket, the clients,
//! the script processes' output pipes and the signal self-pipe.  Requests
//! are answered as Samba's eventd answers them; scripts run as children
//! the loop only watches, so a hung script never stalls it; a client that
//! sends something undecodable is logged and dropped.

use crate::child::{self, Output, PipeState, ProcResult};
use crate::component::{Admission, Begin, Component, Finished, PendingRun, Step, Waiter};
use crate::config::EventConfig;
use crate::paths::Paths;
use crate::signals::SignalPipe;
use crate::{log_debug, log_err, log_notice, logging, scripts};
use ctdb_protocol::event::{
    decode_request, encode_reply, EventCommand, EventReply, EventRequest, RunRequest, ScriptAction,
    ScriptRequest, StatusRequest, MAX_EVENT_PACKET, RUN_ALL,
};
use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Client tokens are CLIENT_BASE + client id.
const CLIENT_BASE: usize = 1 << 8;
/// Pipe tokens are PIPE_BASE + pid.
const PIPE_BASE: usize = 1 << 48;
/// Longest poll wait while children run (a wake-up backstop to SIGCHLD).
const CHILD_POLL: Duration = Duration::from_millis(500);
/// EPROTO, as Samba logs a dropped client.
const EPROTO: i32 = libc::EPROTO;

/// Why the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// SIGTERM or SIGINT.
    Signal,
    /// The watched process (-P) is gone.
    WatchedPidGone,
}

impl ExitReason {
    /// The exit status Samba's daemon uses.
    pub fn status(self) -> i32 {
        match self {
            ExitReason::Signal => 0,
            ExitReason::WatchedPidGone => libc::ESRCH,
        }
    }
}

/// What a child process is to the daemon.
#[derive(Debug)]
enum Role {
    /// The current script of a component's run.
    Script { component: String },
    /// The debug script for `hung`, a timed-out script of `component`.
    Debug { component: String, hung: Pid },
    /// A process the daemon no longer waits for (timed out, cancelled):
    /// reaped and forgotten.
    Orphan,
}

#[derive(Debug)]
struct Proc {
    pipe: Option<OwnedFd>,
    output: Output,
    role: Role,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    wants_write: bool,
}

/// The event daemon's state.
pub struct Daemon {
    poll: Poll,
    listener: UnixListener,
    socket_path: PathBuf,
    config_file: PathBuf,
    etc_dir: PathBuf,
    events_dir: PathBuf,
    debug_script: Option<PathBuf>,
    signals: SignalPipe,
    components: BTreeMap<String, Component>,
    clients: HashMap<u64, Client>,
    next_client: u64,
    procs: HashMap<Pid, Proc>,
    watch: Option<(Pid, Instant)>,
    exit: Option<ExitReason>,
}

impl Daemon {
    /// Binds the socket (replacing a stale one) and sets up the loop.
    /// `watch_pid`: exit when that process is gone (checked after 1 s,
    /// then every 5 s).
    pub fn new(
        paths: &Paths,
        debug_script: Option<PathBuf>,
        watch_pid: Option<i32>,
    ) -> std::io::Result<Daemon> {
        let poll = Poll::new()?;
        let socket_path = paths.socket();
        let _ = std::fs::remove_file(&socket_path);
        let mut listener = UnixListener::bind(&socket_path).inspect_err(|_| {
            log_err!("socket bind failed - {}", socket_path.display());
        })?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let signals = SignalPipe::install(poll.registry(), SIGNALS)?;
        log_notice!("listening on {}", socket_path.display());
        let watch = watch_pid
            .filter(|&p| p > 1)
            .map(|p| (Pid::from_raw(p), Instant::now() + Duration::from_secs(1)));
        Ok(Daemon {
            poll,
            listener,
            socket_path,
            config_file: paths.config(),
            etc_dir: paths.etc_dir.clone(),
            events_dir: paths.events_dir(),
            debug_script,
            signals,
            components: BTreeMap::new(),
            clients: HashMap::new(),
            next_client: 0,
            procs: HashMap::new(),
            watch,
            exit: None,
        })
    }

    /// Runs until a signal or the watched process ends it; then kills
    /// every child's process group and removes the socket.
    pub fn run(&mut self) -> std::io::Result<ExitReason> {
        let mut events = Events::with_capacity(128);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for ev in events.iter() {
                self.dispatch(ev.token(), ev.is_writable());
            }
            self.reap();
            self.expire_deadlines();
            self.check_watched_pid();
            if let Some(reason) = self.exit {
                self.shut_down();
                return Ok(reason);
            }
        }
    }

    /// How long the poll may sleep: until the next deadline or pid check.
    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let deadlines = self
            .components
            .values()
            .filter_map(|c| c.active.as_ref())
            .filter(|r| r.running.is_some())
            .map(|r| r.deadline);
        let next = deadlines.chain(self.watch.map(|w| w.1)).min();
        let mut timeout = next.map(|t| t.saturating_duration_since(now));
        if !self.procs.is_empty() {
            timeout = Some(timeout.map_or(CHILD_POLL, |t| t.min(CHILD_POLL)));
        }
        timeout
    }

    fn dispatch(&mut self, token: Token, writable: bool) {
        match token {
            LISTENER => self.accept(),
            SIGNALS => self.handle_signals(),
            Token(t) if t >= PIPE_BASE => {
                let pid = Pid::from_raw((t - PIPE_BASE) as i32);
                self.read_pipe(pid);
            }
            Token(t) => {
                let id = (t - CLIENT_BASE) as u64;
                if writable {
                    self.flush(id);
                }
                self.read_client(id);
            }
        }
    }

    fn handle_signals(&mut self) {
        for sig in self.signals.drain() {
            if sig == libc::SIGCHLD {
                continue;
            }
            log_notice!("Received signal {}", sig);
            match sig {
                libc::SIGTERM | libc::SIGINT => self.exit = Some(ExitReason::Signal),
                libc::SIGHUP => {
                    if logging::reopen() {
                        log_notice!("reopen logs completed successfully");
                    } else {
                        log_err!("reopen logs, ret=1");
                    }
                }
                libc::SIGUSR1 => {
                    self.reload_config();
                    log_notice!("reconfigure completed successfully");
                }
                _ => {}
            }
        }
    }

    /// Samba's reconfigure: the file is read again and checked; as in
    /// Samba's daemon, nothing read is applied (the debug script and the
    /// logging stay as they were at start).
    fn reload_config(&self) {
        log_notice!("Re-reading config file {}", self.config_file.display());
        if let Err(e) = EventConfig::load(&self.config_file, &self.etc_dir) {
            for line in e.to_string().lines() {
                log_err!("{}", line);
            }
            crate::log_warn!("Configuration reload failed");
        }
    }

    fn check_watched_pid(&mut self) {
        let Some((pid, at)) = self.watch else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        match kill(pid, None) {
            Err(Errno::ESRCH) => {
                log_err!("PID {} gone away, exiting", pid);
                self.exit = Some(ExitReason::WatchedPidGone);
            }
            Err(e) => log_err!("Failed to check PID status {}, ret={}", pid, e as i32),
            Ok(()) => {}
        }
        self.watch = Some((pid, Instant::now() + Duration::from_secs(5)));
    }

    fn shut_down(&mut self) {
        log_notice!("Shutting down");
        for pid in self.procs.keys() {
            let _ = killpg(*pid, Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }

    // ----- clients -----

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let id = self.next_client;
                    self.next_client += 1;
                    let token = Token(CLIENT_BASE + id as usize);
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let client = Client {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        wants_write: false,
                    };
                    self.clients.insert(id, client);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    log_err!("failed to accept new connection");
                    return;
                }
            }
        }
    }

    fn read_client(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let mut closed = false;
        let mut buf = [0u8; 16384];
        loop {
            match client.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => client.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if !self.take_packets(id) {
            return;
        }
        if closed {
            self.drop_client(id);
        }
    }

    /// Handles every whole packet buffered for `id`; false when the client
    /// was dropped for sending garbage.
    fn take_packets(&mut self, id: u64) -> bool {
        loop {
            let Some(client) = self.clients.get_mut(&id) else {
                return false;
            };
            let Some(field) = client.inbuf.get(..4) else {
                return true;
            };
            let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) as usize;
            if !(4..=MAX_EVENT_PACKET as usize).contains(&len) {
                let buflen = client.inbuf.len();
                self.refuse_client(id, buflen);
                return false;
            }
            if client.inbuf.len() < len {
                return true;
            }
            let packet: Vec<u8> = client.inbuf.drain(..len).collect();
            match decode_request(&packet) {
                Ok((header, request)) => self.handle_request(id, header.reqid, request),
                Err(e) => {
                    log_debug!("undecodable request: {}", e);
                    self.refuse_client(id, packet.len());
                    return false;
                }
            }
        }
    }

    fn refuse_client(&mut self, id: u64, buflen: usize) {
        log_err!("Invalid packet received, buflen={}", buflen);
        log_err!("client read failed with ret={}", EPROTO);
        self.drop_client(id);
    }

    fn drop_client(&mut self, id: u64) {
        if let Some(mut c) = self.clients.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn reply(&mut self, waiter: Option<Waiter>, reply: &EventReply) {
        let Some(w) = waiter else {
            return;
        };
        let Some(client) = self.clients.get_mut(&w.client) else {
            return;
        };
        client
            .outbuf
            .extend_from_slice(&encode_reply(w.reqid, reply));
        self.flush(w.client);
    }

    fn reply_result(&mut self, waiter: Option<Waiter>, command: EventCommand, result: i32) {
        let reply = EventReply {
            command,
            result,
            status: None,
        };
        self.reply(waiter, &reply);
    }

    fn flush(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        while !client.outbuf.is_empty() {
            match client.stream.write(&client.outbuf) {
                Ok(0) => break,
                Ok(n) => {
                    client.outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    log_err!("Sending reply failed");
                    self.drop_client(id);
                    return;
                }
            }
        }
        let want = !client.outbuf.is_empty();
        if want != client.wants_write {
            client.wants_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(CLIENT_BASE + id as usize);
            let _ = self
                .poll
                .registry()
                .reregister(&mut client.stream, token, interest);
        }
    }

    // ----- requests -----

    fn handle_request(&mut self, client: u64, reqid: u32, request: EventRequest) {
        let waiter = Some(Waiter { client, reqid });
        match request {
            EventRequest::Run(run) => self.handle_run(waiter, run),
            EventRequest::Status(status) => self.handle_status(waiter, status),
            EventRequest::Script(script) => self.handle_script(waiter, script),
        }
    }

    /// The component named `name`, opened on first use.
    fn component(&mut self, name: &str) -> Result<&mut Component, Errno> {
        if !self.components.contains_key(name) {
            let c = Component::open(self.events_dir.join(name))?;
            self.components.insert(name.to_string(), c);
        }
        self.components.get_mut(name).ok_or(Errno::ENOENT)
    }

    fn handle_run(&mut self, waiter: Option<Waiter>, run: RunRequest) {
        let pending = PendingRun {
            waiter,
            event: run.event,
            args: run.args,
            deadline: Instant::now() + Duration::from_secs(run.timeout.into()),
            run_all: run.flags & RUN_ALL != 0,
        };
        let admission = match self.component(&run.component) {
            Ok(c) => c.admit(pending),
            Err(e) => return self.reply_result(waiter, EventCommand::Run, e as i32),
        };
        match admission {
            Admission::Refused(p) => {
                self.reply_result(p.waiter, EventCommand::Run, libc::ECANCELED);
            }
            Admission::Queued { cancelled } => {
                if let Some(m) = cancelled {
                    if let Some(pid) = m.running {
                        let _ = killpg(pid, Signal::SIGKILL);
                        self.orphan(pid);
                    }
                    self.reply_result(m.waiter, EventCommand::Run, libc::ECANCELED);
                }
                self.pump(&run.component);
            }
        }
    }

    fn handle_status(&mut self, waiter: Option<Waiter>, req: StatusRequest) {
        let found = self
            .component(&req.component)
            .and_then(|c| c.result(&req.event).cloned());
        let reply = match found {
            Ok(status) => EventReply {
                command: EventCommand::Status,
                result: 0,
                status: Some(status),
            },
            Err(e) => EventReply {
                command: EventCommand::Status,
                result: e as i32,
                status: None,
            },
        };
        self.reply(waiter, &reply);
    }

    fn handle_script(&mut self, waiter: Option<Waiter>, req: ScriptRequest) {
        let enable = req.action == ScriptAction::Enable;
        let result = match self.component(&req.component) {
            Ok(c) => match scripts::set_enabled(&c.dir, &req.script, enable) {
                Ok(()) => 0,
                Err(e) => e as i32,
            },
            Err(e) => e as i32,
        };
        self.reply_result(waiter, EventCommand::Script, result);
    }

    // ----- runs -----

    /// Moves `name`'s runs on: starts queued runs and scripts until one
    /// script is running or nothing is left to do.
    fn pump(&mut self, name: &str) {
        loop {
            let Some(comp) = self.components.get_mut(name) else {
                return;
            };
            if comp.active.is_none() {
                match comp.begin_next() {
                    None => return,
                    Some(Begin::Failed(w, e)) => {
                        self.reply_result(w, EventCommand::Run, e as i32);
                        continue;
                    }
                    Some(Begin::Empty(w)) => {
                        self.reply_result(w, EventCommand::Run, 0);
                        continue;
                    }
                    Some(Begin::Started) => {}
                }
            }
            if comp.active.as_ref().is_some_and(|r| r.running.is_some()) {
                return;
            }
            let Some((path, argv)) = comp.script_to_run() else {
                return;
            };
            let step = match self.start_script(name, &path, &argv) {
                Ok(()) => return,
                Err(e) => match self.components.get_mut(name) {
                    Some(c) => c.script_done(ProcResult::errno(e), None, None),
                    None => return,
                },
            };
            self.after_step(name, step, None);
        }
    }

    fn start_script(&mut self, name: &str, path: &Path, argv: &[String]) -> Result<(), Errno> {
        child::check_runnable(path)?;
        let role = Role::Script {
            component: name.to_string(),
        };
        let pid = self.spawn(path, argv, role)?;
        if let Some(run) = self
            .components
            .get_mut(name)
            .and_then(|c| c.active.as_mut())
        {
            run.running = Some(pid);
        }
        Ok(())
    }

    fn spawn(&mut self, path: &Path, argv: &[String], role: Role) -> Result<Pid, Errno> {
        let spawned = child::spawn(path, argv)?;
        let pid = spawned.pid;
        let token = Token(PIPE_BASE + pid.as_raw() as usize);
        let raw = spawned.output.as_raw_fd();
        let pipe =
            match self
                .poll
                .registry()
                .register(&mut SourceFd(&raw), token, Interest::READABLE)
            {
                Ok(()) => Some(spawned.output),
                Err(_) => None,
            };
        let proc = Proc {
            pipe,
            output: Output::default(),
            role,
        };
        self.procs.insert(pid, proc);
        Ok(pid)
    }

    /// Acts on a finished script: a finished run is answered; a timed-out
    /// script (`timed_out`) is handed to the debug script when the run
    /// says so, else its process group is terminated at once.
    fn after_step(&mut self, name: &str, step: Step, timed_out: Option<Pid>) {
        let finished = match step {
            Step::Next => None,
            Step::Done(f) => Some(f),
        };
        let debugged = finished.as_ref().and_then(|f| f.hung);
        if let Some(pid) = timed_out.filter(|p| Some(*p) != debugged) {
            let _ = killpg(pid, Signal::SIGTERM);
        }
        if let Some(f) = finished {
            self.finish_run(name, f);
        }
    }

    fn finish_run(&mut self, name: &str, f: Finished) {
        self.reply_result(f.waiter, EventCommand::Run, f.result);
        if let Some(pid) = f.hung {
            self.debug_hung(name, pid, &f.event);
        }
    }

    /// Runs the debug script for a hung script, as Samba: `debug PID EVENT`,
    /// one at a time per component; the hung process group gets SIGTERM
    /// once the debug script is done (at once when there is none).
    fn debug_hung(&mut self, name: &str, hung: Pid, event: &str) {
        let busy = self.components.get(name).is_none_or(|c| c.debug_running);
        let Some(debug) = self.debug_script.clone().filter(|_| !busy) else {
            let _ = killpg(hung, Signal::SIGTERM);
            return;
        };
        let argv = [
            debug.to_string_lossy().into_owned(),
            hung.to_string(),
            event.to_string(),
        ];
        log_debug!(
            "Running debug {} with args \"{} {}\"",
            debug.display(),
            argv[1],
            argv[2]
        );
        let role = Role::Debug {
            component: name.to_string(),
            hung,
        };
        let started = child::check_runnable(&debug).and_then(|()| self.spawn(&debug, &argv, role));
        match started {
            Ok(_) => {
                if let Some(c) = self.components.get_mut(name) {
                    c.debug_running = true;
                }
            }
            Err(_) => {
                let _ = killpg(hung, Signal::SIGTERM);
            }
        }
    }

    /// Forgets a process the daemon no longer waits for (it is still
    /// reaped when it ends).
    fn orphan(&mut self, pid: Pid) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.role = Role::Orphan;
        }
    }

    // ----- children -----

    fn read_pipe(&mut self, pid: Pid) {
        let Some(proc) = self.procs.get_mut(&pid) else {
            return;
        };
        let Some(fd) = &proc.pipe else {
            return;
        };
        if child::drain(fd, &mut proc.output) == PipeState::Closed {
            close_pipe(&self.poll, proc);
        }
    }

    /// Collects every child that ended and acts on it.
    fn reap(&mut self) {
        let ended: Vec<(Pid, ProcResult)> = self
            .procs
            .keys()
            .filter_map(|&pid| match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => None,
                Ok(status) => ProcResult::from_wait(status).map(|r| (pid, r)),
                Err(_) => Some((pid, ProcResult::errno(Errno::ECHILD))),
            })
            .collect();
        for (pid, result) in ended {
            let Some(mut proc) = self.procs.remove(&pid) else {
                continue;
            };
            if let Some(fd) = &proc.pipe {
                child::drain(fd, &mut proc.output);
            }
            close_pipe(&self.poll, &mut proc);
            self.child_ended(pid, result, proc);
        }
    }

    fn child_ended(&mut self, pid: Pid, result: ProcResult, mut proc: Proc) {
        match proc.role {
            Role::Orphan => {}
            Role::Debug { component, hung } => {
                if let Some(c) = self.components.get_mut(&component) {
                    c.debug_running = false;
                }
                if let Some(out) = proc.output.take() {
                    logging::log_lines("event_debug", &out);
                }
                let _ = killpg(hung, Signal::SIGTERM);
            }
            Role::Script { component } => {
                let Some(comp) = self.components.get_mut(&component) else {
                    return;
                };
                if comp.active.as_ref().and_then(|r| r.running) != Some(pid) {
                    return;
                }
                let step = comp.script_done(result, proc.output.take(), None);
                self.after_step(&component, step, None);
                self.pump(&component);
            }
        }
    }

    /// Gives up on scripts past their run's deadline: result -ETIMEDOUT
    /// with the output so far; the process is left to the debug script or
    /// terminated.
    fn expire_deadlines(&mut self) {
        let now = Instant::now();
        let expired: Vec<(String, Pid)> = self
            .components
            .iter()
            .filter_map(|(name, c)| {
                let run = c.active.as_ref()?;
                let pid = run.running?;
                (now >= run.deadline).then(|| (name.clone(), pid))
            })
            .collect();
        for (name, pid) in expired {
            let output = match self.procs.get_mut(&pid) {
                Some(p) => {
                    if let Some(fd) = &p.pipe {
                        child::drain(fd, &mut p.output);
                    }
                    p.role = Role::Orphan;
                    p.output.take()
                }
                None => None,
            };
            let Some(comp) = self.components.get_mut(&name) else {
                continue;
            };
            let step = comp.script_done(ProcResult::errno(Errno::ETIMEDOUT), output, Some(pid));
            self.after_step(&name, step, Some(pid));
            self.pump(&name);
        }
    }
}

fn close_pipe(poll: &Poll, proc: &mut Proc) {
    if let Some(fd) = proc.pipe.take() {
        let _ = poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::event::{decode_reply, encode_request};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream as StdStream;

    /// A daemon on a fresh test base, running in its own thread for the
    /// rest of the test process; the base directory.
    fn daemon(tag: &str, scripts: &[(&str, &str)]) -> PathBuf {
        daemon_with_debug(tag, scripts, None)
    }

    /// As [`daemon`], with a debug script body (run for hung scripts).
    fn daemon_with_debug(tag: &str, scripts: &[(&str, &str)], debug: Option<&str>) -> PathBuf {
        let base = std::env::temp_dir().join(format!("eventd-server-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let legacy = base.join("events/legacy");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::create_dir_all(base.join("run")).unwrap();
        for (name, body) in scripts {
            let p = legacy.join(format!("{name}.script"));
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let debug_script = debug.map(|body| {
            let p = base.join("debug.sh");
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        });
        let paths = Paths::new(true, Some(base.clone())).unwrap();
        let mut d = Daemon::new(&paths, debug_script, None).unwrap();
        std::thread::spawn(move || d.run());
        base
    }

    fn connect(base: &Path) -> StdStream {
        let s = StdStream::connect(base.join("run/eventd.socket")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn send(s: &mut StdStream, reqid: u32, req: EventRequest) {
        s.write_all(&encode_request(reqid, &req)).unwrap();
    }

    fn receive(s: &mut StdStream) -> (u32, EventReply) {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut buf = len.to_vec();
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        s.read_exact(&mut buf[4..]).unwrap();
        let (h, r) = decode_reply(&buf).unwrap();
        (h.reqid, r)
    }

    fn run(component: &str, event: &str, timeout: u32) -> EventRequest {
        EventRequest::Run(RunRequest {
            component: component.into(),
            event: event.into(),
            args: Some("x y".into()),
            timeout,
            flags: 0,
        })
    }

    fn status(component: &str, event: &str) -> EventRequest {
        EventRequest::Status(StatusRequest {
            component: component.into(),
            event: event.into(),
        })
    }

    fn request(base: &Path, req: EventRequest) -> EventReply {
        let mut s = connect(base);
        send(&mut s, 9, req);
        let (reqid, reply) = receive(&mut s);
        assert_eq!(reqid, 9);
        reply
    }

    #[test]
    fn run_then_status_reports_every_script_and_the_failure() {
        let base = daemon(
            "status",
            &[
                ("01.ok", "echo \"ok $*\""),
                ("02.fail", "echo bad >&2; exit 3"),
                ("03.after", "exit 0"),
            ],
        );
        assert_eq!(
            request(&base, status("legacy", "startup")).result,
            libc::EINVAL
        );
        assert_eq!(
            request(&base, run("legacy", "startup", 10)).result,
            libc::ENOEXEC
        );
        let reply = request(&base, status("legacy", "startup"));
        let st = reply.status.unwrap();
        assert_eq!(st.summary, 3);
        let got: Vec<_> = st
            .scripts
            .iter()
            .map(|s| (s.name.as_str(), s.result, s.output.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("01.ok", 0, Some("ok startup x y\n")),
                ("02.fail", 3, Some("bad\n"))
            ]
        );
        assert_eq!(
            request(&base, run("nosuch", "startup", 10)).result,
            libc::ENOENT
        );
        assert_eq!(
            request(&base, status("nosuch", "startup")).result,
            libc::ENOENT
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn hung_monitor_does_not_stall_the_daemon_and_is_cancelled() {
        let hang = "[ \"$1\" = monitor ] && { echo $$ > \"$(dirname \"$0\")/../../hung.pid\"; sleep 30; }; exit 0";
        let base = daemon("hang", &[("01.hang", hang)]);
        let mut monitor = connect(&base);
        send(&mut monitor, 1, run("legacy", "monitor", 60));
        let pidfile = base.join("hung.pid");
        let started = Instant::now();
        while std::fs::read_to_string(&pidfile).map_or(true, |s| s.trim().is_empty()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "monitor never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let asked = Instant::now();
        assert_eq!(
            request(&base, status("legacy", "monitor")).result,
            libc::EINVAL
        );
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "status waited for the script"
        );
        assert_eq!(request(&base, run("legacy", "startup", 10)).result, 0);
        let (reqid, reply) = receive(&mut monitor);
        assert_eq!((reqid, reply.result), (1, libc::ECANCELED));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            kill(Pid::from_raw(pid), None).is_err()
        });
        assert!(gone, "cancelled monitor's script still running");
        assert_eq!(
            request(&base, status("legacy", "monitor")).result,
            libc::EINVAL
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn one_connection_carries_concurrent_requests_answered_out_of_order() {
        let slow = "[ \"$1\" = monitor ] && sleep 30; exit 0";
        let base = daemon("concurrent", &[("01.slow", slow)]);
        let mut s = connect(&base);
        send(&mut s, 1, run("legacy", "monitor", 60));
        std::thread::sleep(Duration::from_millis(200));
        send(&mut s, 2, status("legacy", "monitor"));
        send(&mut s, 3, run("legacy", "takeip", 10));
        let mut got = [receive(&mut s), receive(&mut s), receive(&mut s)]
            .map(|(reqid, r)| (reqid, r.command, r.result));
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (1, EventCommand::Run, libc::ECANCELED),
                (2, EventCommand::Status, libc::EINVAL),
                (3, EventCommand::Run, 0)
            ]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn timeout_reports_etimedout_with_the_output_so_far() {
        let base = daemon("timeout", &[("01.slow", "echo started; sleep 30")]);
        let asked = Instant::now();
        assert_eq!(
            request(&base, run("legacy", "takeip", 1)).result,
            libc::ETIMEDOUT
        );
        let took = asked.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{took:?}"
        );
        let st = request(&base, status("legacy", "takeip")).status.unwrap();
        assert_eq!(st.summary, -libc::ETIMEDOUT);
        assert_eq!(st.scripts[0].result, -libc::ETIMEDOUT);
        assert_eq!(st.scripts[0].output.as_deref(), Some("started\n"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn debug_script_gets_pid_and_event_then_the_hung_group_is_terminated() {
        let hang = "echo $$ > \"$(dirname \"$0\")/../../hung.pid\"; sleep 30";
        let debug = "echo \"$1 $2\" > \"$(dirname \"$0\")/debug.args\"; kill -0 $1 && echo alive >> \"$(dirname \"$0\")/debug.args\"";
        let base = daemon_with_debug("debug", &[("01.hang", hang)], Some(debug));
        assert_eq!(
            request(&base, run("legacy", "releaseip", 1)).result,
            libc::ETIMEDOUT
        );
        let hung: i32 = std::fs::read_to_string(base.join("hung.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let args = base.join("debug.args");
        let gone = (0..250).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            kill(Pid::from_raw(hung), None).is_err()
        });
        assert!(gone, "hung script still running after the debug script");
        let text = std::fs::read_to_string(&args).unwrap();
        assert_eq!(text, format!("{hung} releaseip\nalive\n"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn garbage_drops_the_client_and_the_daemon_goes_on() {
        let base = daemon("garbage", &[("01.ok", "exit 0")]);
        for junk in [
            &[
                20u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 2, 3, 4,
            ][..],
            &[2, 0, 0, 0],
        ] {
            let mut s = connect(&base);
            s.write_all(junk).unwrap();
            let mut b = [0u8; 16];
            assert_eq!(s.read(&mut b).unwrap(), 0, "connection not closed");
        }
        let script = EventRequest::Script(ScriptRequest {
            component: "legacy".into(),
            script: "01.ok".into(),
            action: ScriptAction::Disable,
        });
        assert_eq!(request(&base, script).result, 0);
        assert_eq!(request(&base, run("legacy", "startup", 5)).result, 0);
        let st = request(&base, status("legacy", "startup")).status.unwrap();
        assert_eq!(st.scripts[0].result, -libc::ENOEXEC, "disabled script");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
