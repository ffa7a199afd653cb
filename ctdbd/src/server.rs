//! The daemon proper: one mio event loop serving the unix-domain client
//! socket, the node transport listener, the signal pipe and the helper-thread
//! waker, plus a simple timer list (poll timeout = earliest deadline).

use crate::config::{Config, Paths};
use crate::db::traverse::{Item as TraverseItem, Stream as TraverseStream};
use crate::db::{self, DbInfo, Done, Job, Op, PushState, Reply};
use crate::nodes::Node;
use crate::protocol::{
    self as p, ctrl, Header, ReqCall, ReqControl, ReqMessage, RunState, Timeval, Writer,
};
use crate::tunables::{SetResult, Tunables};
use crate::{log_debug, log_err, log_info, log_notice, log_warn};
use crossbeam_channel::Receiver;
use mio::net::{TcpListener, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
const NODE_LISTENER: Token = Token(3);
const FIRST_CLIENT: usize = 16;
/// Unsent bytes a traverse's receiving client may have before the traverse
/// waits for it to read (see pump_traverses).
const TRAVERSE_BACKLOG: usize = 4 << 20;

/// Everything the node knows about itself and the cluster.
pub struct NodeState {
    pub pnn: u32,
    pub nodes: Vec<Node>,
    pub generation: u32,
    pub recmode: u32,
    pub runstate: RunState,
    pub start_time: Timeval,
    pub last_recovery_started: Timeval,
    pub last_recovery_finished: Timeval,
    pub tunables: Tunables,
    pub capabilities: u32,
    pub flags: u32,
    pub config: Config,
    pub paths: Paths,
    pub public_ifaces: Vec<String>,
    /// Addresses listed in public_addresses.  This node never hosts them
    /// (there is no IP takeover yet), so they are all unassigned.
    pub public_ips: Vec<PublicIp>,
}

/// One line of public_addresses.
pub struct PublicIp {
    pub ip: std::net::IpAddr,
    /// Its interfaces, in the order of the line.
    pub ifaces: Vec<String>,
}

struct Client {
    stream: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    want_write: bool,
    pid: i32,
    /// Registered srvids with their registration counts: as in Samba, each
    /// registration is a separate handler that gets its own copy.
    srvids: HashMap<u64, u32>,
    /// REGISTER_NOTIFY: (srvid, data) messages delivered (to the clients
    /// registered for srvid) when this client goes away.
    notify: Vec<(u64, Vec<u8>)>,
    closing: bool,
}

/// What a control handler decided.
enum Outcome {
    Reply(i32, Vec<u8>, Option<String>),
    /// The reply is sent later (e.g. when the helper thread finishes).
    Later,
    /// The daemon is going down; no reply.
    Exit,
}

fn ok(data: Vec<u8>) -> Outcome {
    Outcome::Reply(0, data, None)
}
fn status(s: i32) -> Outcome {
    Outcome::Reply(s, Vec::new(), None)
}
/// A control whose data has the wrong size (Samba's CHECK_CONTROL_DATA_SIZE).
fn bad_size(name: &str, got: usize) -> Outcome {
    log_err!("Invalid data in {} control ({} bytes)", name, got);
    status(-1)
}
fn fail(msg: &str) -> Outcome {
    Outcome::Reply(-1, Vec::new(), Some(msg.to_string()))
}

/// A control waiting for the helper thread.
struct Waiting {
    token: Token,
    reqid: u32,
}

/// What to do when a helper-thread operation finishes.
enum Pending {
    /// REQ_CALL: send REPLY_CALL.
    Call {
        token: Token,
        reqid: u32,
        started: Instant,
    },
    /// A control whose reply carries the operation's result.
    Control {
        token: Token,
        reqid: u32,
        noreply: bool,
        after: After,
    },
    /// TRAVERSE_START_EXT: the records streamed from the database's worker
    /// go to `srvid` as they arrive, then the end marker.
    Traverse {
        srvid: u64,
        trav_reqid: u32,
        db_id: u32,
        stream: TraverseStream,
        /// Records sent so far.
        records: u32,
    },
    /// A DB_PUSH record buffer being stored.
    Push { db_id: u32 },
    /// A vacuum run; `scheduled` runs set the next timer when they end, a
    /// DB_VACUUM control gets its reply.
    Vacuum {
        db_id: u32,
        started: Instant,
        scheduled: bool,
        control: Option<Waiting>,
    },
}

/// Bookkeeping done on the catalogue when a control's operation succeeds.
enum After {
    Nothing,
    TransactionStarted {
        db_id: u32,
        tid: u32,
    },
    TransactionEnded {
        db_id: u32,
    },
    SetFlag {
        db_id: u32,
        bit: u8,
    },
    /// DB_PUSH_CONFIRM: reply with the number of records pushed.
    PushConfirm {
        db_id: u32,
    },
    /// TRANS3_COMMIT's store: the childwrite counters.
    Childwrite {
        started: Instant,
    },
}

pub struct Daemon {
    poll: Poll,
    listener: UnixListener,
    node_listener: Option<TcpListener>,
    clients: HashMap<Token, Client>,
    next_token: usize,
    sig_fd: RawFd,
    /// The database workers (one thread per open database).
    db_tx: db::Workers,
    db_rx: Receiver<Done>,
    /// Newest first, as `ctdb getdbmap` lists them.
    dbs: Vec<DbInfo>,
    attach_waiters: HashMap<u32, Vec<Waiting>>,
    pending: HashMap<u64, Pending>,
    next_tag: u64,
    state: NodeState,
    next_leader_broadcast: Instant,
    /// The database being vacuumed: one run at a time, as Samba allows one
    /// vacuum child.
    vacuuming: Option<u32>,
    exit_requested: bool,
    /// The exit came from the SHUTDOWN control (not a signal).
    shutdown_by_control: bool,
    stats: crate::stats::Stats,
}

static SIG_WRITE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIG_WRITE_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the byte is on the stack.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

fn install_signals() -> std::io::Result<RawFd> {
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    SIG_WRITE_FD.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    // SAFETY: installing plain handlers; on_signal only calls write(2).
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(fds[0])
}

fn peer_pid(stream: &UnixStream) -> i32 {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len describe a writable ucred.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 {
        cred.pid
    } else {
        -1
    }
}

/// A random generation number that is never INVALID_GENERATION.
pub fn new_generation() -> u32 {
    loop {
        let mut b = [0u8; 4];
        // SAFETY: b is writable for 4 bytes.
        let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 4, 0) };
        let g = if n == 4 {
            u32::from_le_bytes(b)
        } else {
            (Timeval::now().usec as u32).wrapping_mul(2654435761)
        };
        if g != p::INVALID_GENERATION && g != 0 {
            return g;
        }
    }
}

impl Daemon {
    pub fn new(
        listener: std::os::unix::net::UnixListener,
        node_listener: Option<std::net::TcpListener>,
        state: NodeState,
    ) -> std::io::Result<Daemon> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        let mut listener = UnixListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let node_listener = match node_listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                let mut l = TcpListener::from_std(l);
                poll.registry()
                    .register(&mut l, NODE_LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let sig_fd = install_signals()?;
        poll.registry()
            .register(&mut SourceFd(&sig_fd), SIGNALS, Interest::READABLE)?;
        let w = waker.clone();
        let (db_tx, db_rx) = db::spawn(
            state.pnn,
            Arc::new(move || {
                let _ = w.wake();
            }),
        );
        Ok(Daemon {
            poll,
            listener,
            node_listener,
            clients: HashMap::new(),
            next_token: FIRST_CLIENT,
            sig_fd,
            db_tx,
            db_rx,
            dbs: Vec::new(),
            attach_waiters: HashMap::new(),
            pending: HashMap::new(),
            next_tag: 1,
            state,
            next_leader_broadcast: Instant::now(),
            vacuuming: None,
            exit_requested: false,
            shutdown_by_control: false,
            stats: Default::default(),
        })
    }

    fn set_runstate(&mut self, rs: RunState) {
        self.state.runstate = rs;
        log_notice!("Set runstate to {} ({})", rs.name(), rs as u32);
    }

    /// Single-node start-up: there is nobody to recover with, so the first
    /// recovery is just a new generation.
    fn startup(&mut self) {
        self.set_runstate(RunState::Init);
        self.set_runstate(RunState::Setup);
        self.set_runstate(RunState::FirstRecovery);
        self.state.last_recovery_started = Timeval::now();
        self.state.recmode = p::RECOVERY_ACTIVE;
        self.state.generation = new_generation();
        self.state.recmode = p::RECOVERY_NORMAL;
        self.state.last_recovery_finished = Timeval::now();
        self.stats.num_recoveries += 1;
        log_notice!("Recovery complete, generation {}", self.state.generation);
        self.set_runstate(RunState::Startup);
        self.set_runstate(RunState::Running);
    }

    pub fn run(&mut self) -> std::io::Result<()> {
        self.startup();
        let mut events = Events::with_capacity(256);
        while !self.exit_requested {
            let next = self
                .dbs
                .iter()
                .filter_map(|d| d.vacuum.next)
                .fold(self.next_leader_broadcast, Instant::min);
            let timeout = next.saturating_duration_since(Instant::now());
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_clients(),
                    NODE_LISTENER => self.accept_nodes(),
                    WAKER => self.drain_db_replies(),
                    SIGNALS => self.read_signals(),
                    t => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.client_readable(t);
                        }
                        if ev.is_writable() {
                            self.flush(t);
                        }
                    }
                }
            }
            self.run_timers();
            self.reap_closed();
            // Writes may have drained a traverse's clients: let it go on.
            self.pump_traverses();
        }
        Ok(())
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        if now >= self.next_leader_broadcast {
            self.broadcast_leader();
            let secs = self.state.tunables.recover_interval().max(1) as u64;
            self.next_leader_broadcast = now + Duration::from_secs(secs);
        }
        let due: Vec<u32> = self
            .dbs
            .iter()
            .filter(|d| d.vacuum.next.is_some_and(|t| t <= now))
            .map(|d| d.id)
            .collect();
        for id in due {
            self.vacuum_event(id, now);
        }
    }

    /// VacuumInterval as a timer length.  Samba would run back to back with
    /// 0; we wait at least a second.
    fn vacuum_interval(&self) -> u32 {
        self.state.tunables.vacuum_interval().max(1)
    }

    /// The vacuum timer of a volatile database fired (Samba's
    /// ctdb_vacuum_event).
    fn vacuum_event(&mut self, id: u32, now: Instant) {
        let interval = self.vacuum_interval();
        let fast_max = self.state.tunables.vacuum_fast_path_count();
        let Some(d) = self.dbs.iter_mut().find(|d| d.id == id) else {
            return;
        };
        let v = &mut d.vacuum;
        if interval > v.interval {
            // The interval grew since the timer was set: wait the difference.
            log_info!(
                "Vacuum interval increased from {} to {}, rescheduling",
                v.interval,
                interval
            );
            v.next = Some(now + Duration::from_secs((interval - v.interval) as u64));
            v.interval = interval;
            return;
        }
        v.interval = interval;
        let mut full = false;
        if v.fast_path_count >= fast_max {
            full = fast_max > 0;
            v.fast_path_count = 0;
        }
        v.next = None;
        match self.start_vacuum(id, full, true, None) {
            Ok(()) => {}
            Err(busy) => {
                let d = self.dbs.iter_mut().find(|d| d.id == id).unwrap();
                let wait = if busy {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(interval as u64)
                };
                d.vacuum.next = Some(now + wait);
            }
        }
    }

    /// Hands a vacuum run to the helper thread.  Err(true): another run is
    /// under way; Err(false): not now (recovery, frozen, not volatile).
    fn start_vacuum(
        &mut self,
        id: u32,
        full: bool,
        scheduled: bool,
        control: Option<Waiting>,
    ) -> Result<(), bool> {
        let Some(d) = self.dbs.iter().find(|d| d.id == id) else {
            return Err(false);
        };
        if d.kind() != crate::ltdb::Kind::Volatile || !d.ready {
            return Err(false);
        }
        if self.state.recmode != p::RECOVERY_NORMAL || d.frozen {
            log_info!(
                "Not vacuuming {} ({})",
                d.name,
                if d.frozen { "frozen" } else { "in recovery" }
            );
            return Err(false);
        }
        if self.vacuuming.is_some() {
            return Err(true);
        }
        let op = Op::Vacuum {
            name: d.name.clone(),
            full,
            repack_limit: self.state.tunables.repack_limit(),
            max_run: Duration::from_secs(self.state.tunables.vacuum_max_run_time() as u64),
        };
        log_info!(
            "Starting {} vacuum run for db {}",
            if full { "full" } else { "fast" },
            d.name
        );
        let tag = self.new_tag();
        if self.db_tx.send(Job::Op { id, tag, op }).is_err() {
            return Err(false);
        }
        self.vacuuming = Some(id);
        self.pending.insert(
            tag,
            Pending::Vacuum {
                db_id: id,
                started: Instant::now(),
                scheduled,
                control,
            },
        );
        Ok(())
    }

    /// A vacuum run ended (Samba's vacuum child destructor).
    fn vacuum_done(
        &mut self,
        db_id: u32,
        started: Instant,
        scheduled: bool,
        control: Option<Waiting>,
        reply: Reply,
    ) {
        self.vacuuming = None;
        let interval = self.vacuum_interval();
        let secs = started.elapsed().as_secs_f64();
        let ok = match &reply {
            Reply::Ok => true,
            Reply::TimedOut => {
                log_err!("Vacuuming timed out for db 0x{:08x}", db_id);
                false
            }
            Reply::Failed(why) => {
                log_err!("Vacuuming failed for db 0x{:08x}: {}", db_id, why);
                false
            }
            _ => false,
        };
        if let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id) {
            d.stats.vacuum_latency.update(secs);
            log_info!("Vacuuming took {:.3} seconds for database {}", secs, d.name);
            // A run that ended by itself counts as a fast run, even with an
            // error; one stopped by VacuumMaxRunTime does not.
            if reply != Reply::TimedOut {
                d.vacuum.fast_path_count += 1;
            }
            if scheduled {
                d.vacuum.arm(Instant::now(), interval);
            }
        }
        if let Some(w) = control {
            self.reply(w.token, w.reqid, if ok { 0 } else { -1 }, &[], None);
        }
    }

    fn read_signals(&mut self) {
        let mut b = [0u8; 16];
        loop {
            // SAFETY: b is writable.
            let n =
                unsafe { libc::read(self.sig_fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
            if n <= 0 {
                break;
            }
            for sig in &b[..n as usize] {
                log_notice!("Received signal {}, shutting down", sig);
                self.exit_requested = true;
            }
        }
    }

    fn accept_nodes(&mut self) {
        if let Some(l) = &self.node_listener {
            while let Ok((s, addr)) = l.accept() {
                // The node transport is the next step (multi-node); until then a
                // peer is refused explicitly rather than left hanging.
                log_warn!(
                    "Refusing node connection from {} (node transport not implemented)",
                    addr
                );
                drop(s);
            }
        }
    }

    fn accept_clients(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        log_err!("Failed to register client: {}", e);
                        continue;
                    }
                    let pid = peer_pid(&stream);
                    log_info!("Connected client with pid:{}", pid);
                    self.clients.insert(
                        token,
                        Client {
                            stream,
                            rbuf: Vec::new(),
                            wbuf: Vec::new(),
                            want_write: false,
                            pid,
                            srvids: HashMap::new(),
                            notify: Vec::new(),
                            closing: false,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_err!("accept on client socket failed: {}", e);
                    break;
                }
            }
        }
    }

    fn close_client(&mut self, token: Token, why: &str) {
        if let Some(c) = self.clients.get_mut(&token) {
            if !c.closing {
                log_debug!("Closing client pid:{} ({})", c.pid, why);
                c.closing = true;
            }
        }
    }

    fn reap_closed(&mut self) {
        let dead: Vec<Token> = self
            .clients
            .iter()
            .filter(|(_, c)| c.closing)
            .map(|(t, _)| *t)
            .collect();
        for t in dead {
            if let Some(mut c) = self.clients.remove(&t) {
                let _ = self.poll.registry().deregister(&mut c.stream);
                // Samba sends a client's notifications (to every connected
                // node: here, this one) when the client structure is freed.
                for (srvid, data) in std::mem::take(&mut c.notify) {
                    log_err!("Sending client notify message for srvid:{}", srvid);
                    self.deliver_message(srvid, &data);
                }
            }
            for w in self.attach_waiters.values_mut() {
                w.retain(|x| x.token != t);
            }
        }
    }

    fn client_readable(&mut self, token: Token) {
        let mut packets = Vec::new();
        {
            let Some(c) = self.clients.get_mut(&token) else {
                return;
            };
            if c.closing {
                return;
            }
            let mut eof = false;
            let mut buf = [0u8; 16384];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => c.rbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
            let mut bad = None;
            while c.rbuf.len() >= 4 {
                let len = u32::from_le_bytes(c.rbuf[..4].try_into().unwrap());
                let len = match p::check_length(len) {
                    Ok(l) => l,
                    Err(e) => {
                        bad = Some(e.to_string());
                        break;
                    }
                };
                if c.rbuf.len() < len {
                    break;
                }
                let pkt: Vec<u8> = c.rbuf.drain(..len).collect();
                packets.push(pkt);
            }
            if let Some(why) = bad {
                log_err!(
                    "Malformed packet from client pid:{}: {}, closing it",
                    c.pid,
                    why
                );
                c.closing = true;
            }
            if eof && !c.closing {
                c.closing = true;
            }
        }
        for pkt in packets {
            // Counted once when read (a call held back by a freeze is
            // replayed later through client_packet without being counted again).
            self.stats.client_packets_recv += 1;
            if pkt.len() >= p::HEADER_LEN {
                match u32::from_le_bytes(pkt[16..20].try_into().unwrap()) {
                    p::REQ_CALL => self.stats.client_req[0] += 1,
                    p::REQ_MESSAGE => self.stats.client_req[1] += 1,
                    p::REQ_CONTROL => self.stats.client_req[2] += 1,
                    p::REQ_TUNNEL => self.stats.client_req[3] += 1,
                    _ => {}
                }
            }
            if let Err(why) = self.client_packet(token, &pkt) {
                let pid = self.clients.get(&token).map(|c| c.pid).unwrap_or(-1);
                log_err!(
                    "Malformed packet from client pid:{}: {}, closing it",
                    pid,
                    why
                );
                self.close_client(token, "malformed packet");
                break;
            }
        }
    }

    /// Queues bytes for a client and writes as much as the socket takes.
    fn send(&mut self, token: Token, bytes: &[u8]) {
        if let Some(c) = self.clients.get_mut(&token) {
            if c.closing {
                return;
            }
            c.wbuf.extend_from_slice(bytes);
            self.stats.client_packets_sent += 1;
        }
        self.flush(token);
    }

    fn flush(&mut self, token: Token) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        let mut written = 0;
        let mut failed = false;
        while written < c.wbuf.len() {
            match c.stream.write(&c.wbuf[written..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        c.wbuf.drain(..written);
        if failed {
            c.closing = true;
            return;
        }
        let want = !c.wbuf.is_empty();
        if want != c.want_write {
            c.want_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.stream, token, interest);
        }
    }

    fn is_local_dest(&self, dest: u32) -> bool {
        dest == p::CURRENT_NODE
            || dest == self.state.pnn
            || dest == p::BROADCAST_ALL
            || dest == p::BROADCAST_ACTIVE
            || dest == p::BROADCAST_CONNECTED
            || dest == p::MULTICAST
    }

    fn client_packet(&mut self, token: Token, pkt: &[u8]) -> Result<(), String> {
        let mut hdr = Header::parse(pkt).map_err(|e| e.to_string())?;
        if hdr.length as usize != pkt.len() {
            return Err(format!("length {} does not match packet", hdr.length));
        }
        // Packets from local clients carry this node as their source.
        hdr.srcnode = self.state.pnn;
        let body = &pkt[p::HEADER_LEN..];
        match hdr.operation {
            p::REQ_CONTROL => {
                let c = ReqControl::parse(body).map_err(|e| e.to_string())?;
                self.client_control(token, hdr, c);
            }
            p::REQ_MESSAGE => {
                let m = ReqMessage::parse(body).map_err(|e| e.to_string())?;
                if self.is_local_dest(hdr.destnode) {
                    self.stats.node_packets_sent += 1;
                    self.stats.node[crate::stats::NODE_REQ_MESSAGE] += 1;
                    self.push_message(m.srvid, &m.data);
                    self.deliver_message(m.srvid, &m.data);
                } else {
                    log_warn!(
                        "Dropping message for srvid 0x{:x} to unreachable node {}",
                        m.srvid,
                        hdr.destnode
                    );
                }
            }
            p::REQ_CALL => {
                let c = ReqCall::parse(body).map_err(|e| e.to_string())?;
                self.request_call(token, hdr, c, pkt);
            }
            op => {
                log_err!(
                    "Packet with unsupported operation {} from client, ignored",
                    op
                );
            }
        }
        Ok(())
    }

    fn reply(&mut self, token: Token, reqid: u32, status: i32, data: &[u8], errmsg: Option<&str>) {
        self.stats.node_packets_sent += 1;
        self.stats.node[crate::stats::NODE_REPLY_CONTROL] += 1;
        let h = Header {
            generation: self.state.generation,
            operation: p::REPLY_CONTROL,
            destnode: self.state.pnn,
            srcnode: self.state.pnn,
            reqid,
            ..Default::default()
        };
        let pkt = p::build_packet(h, &p::reply_control_body(status, data, errmsg));
        self.send(token, &pkt);
    }

    fn client_control(&mut self, token: Token, hdr: Header, c: ReqControl) {
        let outcome = if self.is_local_dest(hdr.destnode) {
            self.stats.node_packets_sent += 1;
            self.stats.node[crate::stats::NODE_REQ_CONTROL] += 1;
            self.control(token, &hdr, &c)
        } else if (hdr.destnode as usize) < self.state.nodes.len() {
            fail("node is disconnected")
        } else {
            fail("invalid destination node")
        };
        match outcome {
            Outcome::Reply(st, data, msg) => {
                if c.flags & p::CTRL_FLAG_NOREPLY == 0 {
                    self.reply(token, hdr.reqid, st, &data, msg.as_deref());
                }
            }
            Outcome::Later => {}
            Outcome::Exit => {
                log_notice!("Received SHUTDOWN command.");
                self.exit_requested = true;
                self.shutdown_by_control = true;
            }
        }
    }

    fn find_db(&self, id: u32) -> Option<&DbInfo> {
        self.dbs.iter().find(|d| d.id == id && d.ready)
    }

    fn db_from_data(&self, data: &[u8]) -> Result<&DbInfo, Outcome> {
        let id = p::Reader::new(data)
            .u32()
            .ok_or_else(|| fail("missing database id"))?;
        self.find_db(id).ok_or_else(|| {
            log_err!("Unknown db_id 0x{:08x}", id);
            fail("unknown database")
        })
    }

    fn control(&mut self, token: Token, hdr: &Header, c: &ReqControl) -> Outcome {
        let st = &self.state;
        match c.opcode {
            ctrl::PROCESS_EXISTS => {
                let pid = match p::Reader::new(&c.data).i32() {
                    Some(p) => p,
                    None => return fail("missing pid"),
                };
                if self.clients.values().any(|cl| cl.pid == pid && !cl.closing) {
                    status(0)
                } else {
                    status(-1)
                }
            }
            ctrl::PING => status(self.clients.values().filter(|c| !c.closing).count() as i32),
            ctrl::GET_PID => status(std::process::id() as i32),
            ctrl::GET_PNN => status(st.pnn as i32),
            ctrl::GET_RECMODE => status(st.recmode as i32),
            ctrl::GET_RUNSTATE => {
                let mut w = Writer::new();
                w.u32(st.runstate as u32);
                ok(w.buf)
            }
            ctrl::GET_CAPABILITIES => {
                let mut w = Writer::new();
                w.u32(st.capabilities);
                ok(w.buf)
            }
            ctrl::GET_DEBUG => {
                let mut w = Writer::new();
                w.u32(crate::logging::level());
                ok(w.buf)
            }
            ctrl::SET_DEBUG => match p::Reader::new(&c.data).u32() {
                Some(l) => {
                    crate::logging::set_level(l);
                    status(0)
                }
                None => fail("missing debug level"),
            },
            ctrl::UPTIME => {
                let mut w = Writer::new();
                w.timeval(Timeval::now())
                    .timeval(st.start_time)
                    .timeval(st.last_recovery_started)
                    .timeval(st.last_recovery_finished);
                ok(w.buf)
            }
            ctrl::GETVNNMAP => {
                let mut w = Writer::new();
                let active: Vec<u32> = if st.capabilities & p::CAP_LMASTER != 0 {
                    vec![st.pnn]
                } else {
                    vec![]
                };
                w.u32(st.generation).u32(active.len() as u32);
                for n in active {
                    w.u32(n);
                }
                ok(w.buf)
            }
            ctrl::GET_NODEMAP | ctrl::GET_NODES_FILE => {
                let mut w = Writer::new();
                w.u32(st.nodes.len() as u32);
                for n in &st.nodes {
                    // GET_NODES_FILE reports the file as read (only deleted
                    // nodes flagged); GET_NODEMAP the live view, in which every
                    // other node is disconnected until the node transport exists.
                    let flags = if n.deleted {
                        p::NODE_FLAGS_DELETED
                    } else if c.opcode == ctrl::GET_NODES_FILE {
                        0
                    } else if n.pnn == st.pnn {
                        st.flags
                    } else {
                        p::NODE_FLAGS_DISCONNECTED
                    };
                    w.u32(n.pnn).u32(flags);
                    p::sock_addr(&mut w, &n.addr);
                }
                ok(w.buf)
            }
            ctrl::GET_IFACES => {
                let mut w = Writer::new();
                w.u32(st.public_ifaces.len() as u32);
                // Samba prepends each new interface to its list.
                for name in st.public_ifaces.iter().rev() {
                    p::iface(&mut w, name, 1, 0);
                }
                ok(w.buf)
            }
            ctrl::LIST_TUNABLES => {
                let list = Tunables::names().join(":");
                let mut w = Writer::new();
                w.u32(list.len() as u32 + 1).cstring(&list);
                ok(w.buf)
            }
            ctrl::GET_TUNABLE => {
                let mut r = p::Reader::new(&c.data);
                let name = r
                    .u32()
                    .and_then(|l| r.bytes(l as usize))
                    .and_then(p::parse_cstring);
                let Some(name) = name else {
                    return fail("bad tunable request");
                };
                match st.tunables.get(&name) {
                    Some(v) => {
                        let mut w = Writer::new();
                        w.u32(v);
                        ok(w.buf)
                    }
                    None => status(-libc::EINVAL),
                }
            }
            ctrl::SET_TUNABLE => {
                let mut r = p::Reader::new(&c.data);
                let value = r.u32();
                let name = r
                    .u32()
                    .and_then(|l| r.bytes(l as usize))
                    .and_then(p::parse_cstring);
                let (Some(value), Some(name)) = (value, name) else {
                    return fail("bad tunable request");
                };
                match self.state.tunables.set(&name, value) {
                    SetResult::Ok => status(0),
                    SetResult::Obsolete => {
                        log_warn!("Setting obsolete tunable \"{}\"", name);
                        status(1)
                    }
                    SetResult::Unknown => status(-1),
                }
            }
            ctrl::GET_ALL_TUNABLES => {
                let mut w = Writer::new();
                st.tunables.encode_all(&mut w);
                ok(w.buf)
            }
            ctrl::REGISTER_SRVID => {
                if let Some(cl) = self.clients.get_mut(&token) {
                    *cl.srvids.entry(c.srvid).or_insert(0) += 1;
                }
                log_info!("Registered message handler for srvid={}", c.srvid);
                if c.srvid == p::SRVID_LEADER {
                    // Tell a new listener at once who leads, rather than making it
                    // wait for the next periodic announcement.
                    self.pending_leader_to(token);
                }
                status(0)
            }
            ctrl::DEREGISTER_SRVID => {
                // One registration goes; ENOENT when this client has none.
                let Some(cl) = self.clients.get_mut(&token) else {
                    return status(-1);
                };
                match cl.srvids.get_mut(&c.srvid) {
                    Some(n) => {
                        *n -= 1;
                        if *n == 0 {
                            cl.srvids.remove(&c.srvid);
                        }
                        status(0)
                    }
                    None => status(libc::ENOENT),
                }
            }
            ctrl::CHECK_PID_SRVID => {
                // ctdb_pid_srvid is packed: pid i32 then srvid u64 (12 bytes),
                // as the tool and smbd's ctdbd_conn.c send it.
                let mut r = p::Reader::new(&c.data);
                let pid = r.i32();
                let srvid = r.u64();
                let (Some(pid), Some(srvid)) = (pid, srvid) else {
                    return fail("bad request");
                };
                let found = self
                    .clients
                    .values()
                    .any(|cl| cl.pid == pid && cl.srvids.contains_key(&srvid) && !cl.closing);
                if found {
                    status(0)
                } else {
                    status(-1)
                }
            }
            ctrl::REGISTER_NOTIFY => {
                let Some((srvid, data)) = p::parse_notify_data(&c.data) else {
                    log_err!(
                        "Wrong amount of data in REGISTER_NOTIFY control ({} bytes)",
                        c.data.len()
                    );
                    return status(-1);
                };
                log_info!(
                    "Register srvid {} for client pid:{}",
                    srvid,
                    self.clients.get(&token).map_or(-1, |cl| cl.pid)
                );
                let Some(cl) = self.clients.get_mut(&token) else {
                    return status(-1);
                };
                if cl.notify.iter().any(|(s, _)| *s == srvid) {
                    log_err!(
                        "Notification for srvid:{} already exists for this client",
                        srvid
                    );
                    return status(-1);
                }
                cl.notify.insert(0, (srvid, data));
                status(0)
            }
            ctrl::DEREGISTER_NOTIFY => {
                if c.data.len() != 8 {
                    return bad_size("DEREGISTER_NOTIFY", c.data.len());
                }
                let srvid = p::Reader::new(&c.data).u64().unwrap();
                let Some(cl) = self.clients.get_mut(&token) else {
                    return status(-1);
                };
                match cl.notify.iter().position(|(s, _)| *s == srvid) {
                    Some(i) => {
                        cl.notify.remove(i);
                        status(0)
                    }
                    None => {
                        log_err!("No notification for srvid:{} found for this client", srvid);
                        status(-1)
                    }
                }
            }
            ctrl::TCP_CLIENT => {
                // smbd registers each SMB connection (the SMB client's
                // address as src, its own as dst) so that an IP takeover can
                // send tickle ACKs.  Without public
                // addresses that is pointless and accepted, as in Samba; a
                // connection to a listed public address fails because this
                // node holds none of them (no IP takeover yet), which tells
                // smbd to drop the connection.
                let Some((client, server)) = p::parse_connection(&c.data) else {
                    return bad_size("TCP_CLIENT", c.data.len());
                };
                if st.public_ips.is_empty() {
                    return status(0);
                }
                if st.public_ips.iter().any(|p| p.ip == server.ip()) {
                    log_err!(
                        "Attempt to register tcp client for IP {} we don't hold - failing",
                        server.ip()
                    );
                    return status(-1);
                }
                if server.ip() != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
                    log_err!("Could not register TCP connection from {} to {} (not a public address) (port {})", client.ip(), server.ip(), server.port());
                }
                status(0)
            }
            ctrl::GET_PUBLIC_IPS => {
                if !c.data.is_empty() {
                    return bad_size("GET_PUBLIC_IPS", c.data.len());
                }
                // PUBLIC_IP_FLAGS_ONLY_AVAILABLE (0x10000) leaves out the
                // addresses this node could not host: all of them unless it
                // is RUNNING and neither inactive nor disabled (interfaces
                // are never monitored, so their links stay up, as they start
                // in Samba).  No address is ever assigned (pnn -1): there is
                // no IP takeover, as in Samba with failover disabled.
                let unusable = p::NODE_FLAGS_DISCONNECTED
                    | p::NODE_FLAGS_BANNED
                    | p::NODE_FLAGS_STOPPED
                    | p::NODE_FLAGS_UNHEALTHY
                    | p::NODE_FLAGS_PERMANENTLY_DISABLED;
                let available = st.runstate == RunState::Running && st.flags & unusable == 0;
                let ips: Vec<(u32, std::net::IpAddr)> =
                    if c.flags & p::PUBLIC_IP_FLAGS_ONLY_AVAILABLE != 0 && !available {
                        Vec::new()
                    } else {
                        // Samba prepends each address of the file to its list.
                        st.public_ips
                            .iter()
                            .rev()
                            .map(|p| (p::UNKNOWN_PNN, p.ip))
                            .collect()
                    };
                let mut w = Writer::new();
                p::public_ip_list(&mut w, &ips);
                ok(w.buf)
            }
            ctrl::GET_PUBLIC_IP_INFO => {
                if c.data.len() != p::SOCK_ADDR_LEN {
                    return bad_size("GET_PUBLIC_IP_INFO", c.data.len());
                }
                let addr = p::parse_sock_addr(&c.data);
                let Some(pubip) = addr.and_then(|a| st.public_ips.iter().find(|p| p.ip == a.ip()))
                else {
                    log_err!(
                        "Could not get public ip info, '{}' not a public address",
                        addr.map_or("?".to_string(), |a| a.ip().to_string())
                    );
                    return status(-1);
                };
                // ctdb_public_ip_info: the address (unassigned), no active
                // interface, then its interfaces, links up, no references.
                let mut w = Writer::new();
                w.u32(p::UNKNOWN_PNN);
                p::sock_addr(&mut w, &std::net::SocketAddr::new(pubip.ip, 0));
                w.u32(u32::MAX).u32(pubip.ifaces.len() as u32);
                for name in &pubip.ifaces {
                    p::iface(&mut w, name, 1, 0);
                }
                ok(w.buf)
            }
            ctrl::ENABLE_SEQNUM => {
                if c.data.len() != 4 {
                    return bad_size("ENABLE_SEQNUM", c.data.len());
                }
                let id = p::Reader::new(&c.data).u32().unwrap();
                if self.find_db(id).is_none() {
                    log_err!("Unknown db_id 0x{:x} in ctdb_ltdb_enable_seqnum", id);
                    return status(-1);
                }
                // The daemon's own stores (record migrations) then bump the
                // tdb sequence number as clients' stores do.  Samba also
                // polls the number every SeqnumInterval ms and broadcasts
                // UPDATE_SEQNUM to the other active nodes; alone, there is
                // nobody to tell.
                self.db_op(
                    token,
                    hdr.reqid,
                    c.flags,
                    id,
                    Op::EnableSeqnum,
                    After::Nothing,
                )
            }
            ctrl::UPDATE_SEQNUM => {
                if c.data.len() != 4 {
                    return bad_size("UPDATE_SEQNUM", c.data.len());
                }
                let id = p::Reader::new(&c.data).u32().unwrap();
                if hdr.srcnode == st.pnn {
                    // Samba ignores its own broadcast ("don't update ourselves").
                    return status(0);
                }
                match self.find_db(id) {
                    Some(_) => self.db_op(
                        token,
                        hdr.reqid,
                        c.flags,
                        id,
                        Op::IncrementSeqnum,
                        After::Nothing,
                    ),
                    None => {
                        log_err!("Unknown db_id 0x{:x} in ctdb_ltdb_update_seqnum", id);
                        status(-1)
                    }
                }
            }
            ctrl::GET_DBMAP => {
                let mut w = Writer::new();
                let ready: Vec<&DbInfo> = self.dbs.iter().filter(|d| d.ready).collect();
                w.u32(ready.len() as u32);
                for d in ready {
                    w.u32(d.id).u8(d.flags).zeros(3);
                }
                ok(w.buf)
            }
            ctrl::GET_DBNAME => match self.db_from_data(&c.data) {
                Ok(d) => {
                    let mut w = Writer::new();
                    w.cstring(&d.name);
                    ok(w.buf)
                }
                Err(o) => o,
            },
            ctrl::GETDBPATH => match self.db_from_data(&c.data) {
                Ok(d) => {
                    let mut w = Writer::new();
                    w.cstring(&d.path.display().to_string());
                    ok(w.buf)
                }
                Err(o) => o,
            },
            ctrl::DB_GET_HEALTH => match self.db_from_data(&c.data) {
                Ok(d) => {
                    let mut w = Writer::new();
                    if let Some(r) = &d.unhealthy {
                        w.cstring(r);
                    }
                    ok(w.buf)
                }
                Err(o) => o,
            },
            ctrl::DB_OPEN_FLAGS => match self.db_from_data(&c.data) {
                Ok(d) => {
                    let mut w = Writer::new();
                    w.i32(d.tdb_flags as i32);
                    ok(w.buf)
                }
                Err(o) => o,
            },
            ctrl::DB_ATTACH => self.attach(token, hdr.reqid, c, 0),
            ctrl::DB_ATTACH_PERSISTENT => self.attach(token, hdr.reqid, c, p::DB_FLAGS_PERSISTENT),
            ctrl::DB_ATTACH_REPLICATED => self.attach(token, hdr.reqid, c, p::DB_FLAGS_REPLICATED),
            ctrl::GET_DB_SEQNUM => {
                let Some(id) = p::Reader::new(&c.data).u32() else {
                    return fail("missing database id");
                };
                let Some(d) = self.find_db(id) else {
                    log_err!("Unknown db 0x{:08x}", id);
                    return status(-1);
                };
                if d.frozen && d.transaction.is_none() {
                    return status(-1);
                }
                self.db_op(token, hdr.reqid, c.flags, id, Op::GetSeqnum, After::Nothing)
            }
            ctrl::TRAVERSE_START | ctrl::TRAVERSE_START_EXT => {
                // ctdb_traverse_start: db_id u32, reqid u32, srvid u64; the
                // _EXT form adds withemptyrecords (bool) and 7 bytes padding.
                let want = if c.opcode == ctrl::TRAVERSE_START {
                    16
                } else {
                    24
                };
                if c.data.len() != want {
                    log_err!("Bad record size in traverse start ({} bytes)", c.data.len());
                    return status(-1);
                }
                let mut r = p::Reader::new(&c.data);
                let (id, trav_reqid, srvid) =
                    (r.u32().unwrap(), r.u32().unwrap(), r.u64().unwrap());
                let with_empty = c.opcode == ctrl::TRAVERSE_START_EXT && r.u8().unwrap() != 0;
                let Some(d) = self.find_db(id) else {
                    return status(-1);
                };
                if let Some(why) = &d.unhealthy {
                    if st.tunables.get("AllowUnhealthyDBRead").unwrap_or(0) == 0 {
                        log_err!("db({}) unhealthy in traverse start: {}", d.name, why);
                        return status(-1);
                    }
                }
                let tag = self.new_tag();
                let (sink, stream) = db::traverse::stream_pair();
                if self
                    .db_tx
                    .send(Job::Op {
                        id,
                        tag,
                        op: Op::Traverse { with_empty, sink },
                    })
                    .is_err()
                {
                    return fail("database thread gone");
                }
                self.pending.insert(
                    tag,
                    Pending::Traverse {
                        srvid,
                        trav_reqid,
                        db_id: id,
                        stream,
                        records: 0,
                    },
                );
                status(0)
            }
            ctrl::SCHEDULE_FOR_DELETION => {
                // ctdb_key_data: db_id u32, pad u32, ltdb header, keylen u32, key.
                let mut r = p::Reader::new(&c.data);
                let id = r.u32();
                let header = r
                    .bytes(4)
                    .and_then(|_| r.bytes(crate::ltdb::HEADER_LEN))
                    .and_then(crate::ltdb::Header::decode);
                let key = r.u32().and_then(|l| r.bytes(l as usize));
                let (Some(id), Some(header), Some(key)) = (id, header, key) else {
                    return fail("bad schedule_for_deletion data");
                };
                match self.find_db(id) {
                    // The record goes on the db's delete queue, on the helper
                    // thread; the next vacuum run deletes it if it is still
                    // empty and unchanged.
                    Some(d) if d.kind() == crate::ltdb::Kind::Volatile => {
                        let tag = self.new_tag();
                        let _ = self.db_tx.send(Job::Op {
                            id,
                            tag,
                            op: Op::ScheduleForDeletion {
                                key: key.to_vec(),
                                header,
                            },
                        });
                        status(0)
                    }
                    _ => status(-1),
                }
            }
            ctrl::DB_VACUUM => {
                // ctdb_db_vacuum: db_id u32, full_vacuum_run u8.
                if c.data.len() != 5 {
                    return bad_size("DB_VACUUM", c.data.len());
                }
                let mut r = p::Reader::new(&c.data);
                let (id, full) = (r.u32().unwrap(), r.u8().unwrap() != 0);
                let Some(d) = self.find_db(id) else {
                    log_err!("Unknown db id 0x{:08x}", id);
                    return status(-1);
                };
                if d.kind() != crate::ltdb::Kind::Volatile {
                    // Samba has no vacuum handle for these and would not
                    // survive the run's end; refuse instead.
                    log_err!("Vacuuming is disabled for non-volatile database {}", d.name);
                    return status(-1);
                }
                match self.start_vacuum(
                    id,
                    full,
                    false,
                    Some(Waiting {
                        token,
                        reqid: hdr.reqid,
                    }),
                ) {
                    Ok(()) => Outcome::Later,
                    Err(true) => {
                        log_warn!("Vacuuming collision");
                        status(-1)
                    }
                    Err(false) => {
                        log_err!("Temporary vacuuming failure");
                        status(-1)
                    }
                }
            }
            ctrl::DB_FREEZE => match self.db_id_arg(&c.data) {
                Some(id) => {
                    let d = self.dbs.iter_mut().find(|d| d.id == id).unwrap();
                    if !d.frozen {
                        // Samba takes the whole-db lock in a helper process
                        // here and counts it; our freeze holds back calls in
                        // the loop and takes no lock, so the wait is zero.
                        d.stats.locks.record(std::time::Duration::ZERO, true);
                        self.stats.locks.record(std::time::Duration::ZERO, true);
                    }
                    d.frozen = true;
                    log_notice!("Freeze db: {}", d.name);
                    status(0)
                }
                None => status(-1),
            },
            ctrl::DB_THAW => match self.db_id_arg(&c.data) {
                Some(id) => {
                    self.thaw(id);
                    status(0)
                }
                None => status(-1),
            },
            ctrl::DB_SET_HEALTHY => match self.db_id_arg(&c.data) {
                Some(id) => {
                    self.dbs.iter_mut().find(|d| d.id == id).unwrap().unhealthy = None;
                    status(0)
                }
                None => status(-1),
            },
            ctrl::DB_TRANSACTION_START | ctrl::WIPE_DATABASE | ctrl::DB_TRANSACTION_COMMIT => {
                // ctdb_transdb: db_id u32, tid u32.
                let mut r = p::Reader::new(&c.data);
                let (Some(id), Some(tid)) = (r.u32(), r.u32()) else {
                    return fail("bad transdb data");
                };
                let Some(d) = self.find_db(id) else {
                    log_err!("Transaction control for unknown dbid 0x{:08x}", id);
                    return status(-1);
                };
                if !d.frozen {
                    log_err!(
                        "Database {} not frozen, cannot run transaction control {}",
                        d.name,
                        c.opcode
                    );
                    return status(-1);
                }
                let (op, after) = match c.opcode {
                    ctrl::DB_TRANSACTION_START => (
                        Op::TransactionStart,
                        After::TransactionStarted { db_id: id, tid },
                    ),
                    _ => {
                        if d.transaction != Some(tid) {
                            log_err!("Transaction 0x{:08x} not started on {}", tid, d.name);
                            return status(-1);
                        }
                        if c.opcode == ctrl::WIPE_DATABASE {
                            (Op::Wipe, After::Nothing)
                        } else {
                            (Op::TransactionCommit, After::TransactionEnded { db_id: id })
                        }
                    }
                };
                self.db_op(token, hdr.reqid, c.flags, id, op, after)
            }
            ctrl::DB_TRANSACTION_CANCEL => match self.db_id_arg(&c.data) {
                Some(id) => self.db_op(
                    token,
                    hdr.reqid,
                    c.flags,
                    id,
                    Op::TransactionCancel,
                    After::TransactionEnded { db_id: id },
                ),
                None => status(-1),
            },
            ctrl::TRANS3_COMMIT => {
                if st.recmode != p::RECOVERY_NORMAL {
                    log_info!("rejecting ctdb_control_trans3_commit when recovery active");
                    return status(-1);
                }
                let Some((id, raw)) = p::parse_rec_buffer(&c.data) else {
                    return fail("bad marshall buffer");
                };
                let Some(d) = self.find_db(id) else {
                    log_err!(
                        "ctdb_control_trans3_commit: Unknown database db_id[0x{:08x}]",
                        id
                    );
                    return status(-1);
                };
                if d.kind() == crate::ltdb::Kind::Volatile {
                    return status(-1);
                }
                let mut recs = Vec::with_capacity(raw.len());
                for (k, v) in raw {
                    let Some(h) = crate::ltdb::Header::decode(&v) else {
                        return fail("record without header");
                    };
                    recs.push((k, h, v[crate::ltdb::HEADER_LEN..].to_vec()));
                }
                // Every active node in the vnn map applies the records; that is
                // only this node.
                self.stats.childwrite_calls += 1;
                self.stats.pending_childwrite_calls += 1;
                self.db_op(
                    token,
                    hdr.reqid,
                    c.flags,
                    id,
                    Op::PersistentStore { recs },
                    After::Childwrite {
                        started: Instant::now(),
                    },
                )
            }
            ctrl::SET_DB_READONLY | ctrl::SET_DB_STICKY => {
                let Some(id) = self.db_id_arg(&c.data) else {
                    return status(-1);
                };
                let d = self.find_db(id).unwrap();
                let (bit, what) = if c.opcode == ctrl::SET_DB_READONLY {
                    (p::DB_FLAGS_READONLY, "Readonly")
                } else {
                    (p::DB_FLAGS_STICKY, "Sticky")
                };
                if d.flags & bit != 0 {
                    return status(0);
                }
                if d.kind() != crate::ltdb::Kind::Volatile {
                    log_err!(
                        "Non-volatile databases do not support {} flag",
                        what.to_lowercase()
                    );
                    return status(-1);
                }
                let name = d.name.clone();
                if c.opcode == ctrl::SET_DB_READONLY {
                    let mut ro = d.path.clone().into_os_string();
                    ro.push(".RO");
                    let op = Op::OpenTracking {
                        path: ro.into(),
                        hash_size: st.tunables.database_hash_size(),
                    };
                    self.db_op(
                        token,
                        hdr.reqid,
                        c.flags,
                        id,
                        op,
                        After::SetFlag { db_id: id, bit },
                    )
                } else {
                    self.dbs.iter_mut().find(|d| d.id == id).unwrap().flags |= bit;
                    log_notice!("{} property set on DB {}", what, name);
                    status(0)
                }
            }
            ctrl::DB_DETACH => {
                let Some(id) = p::Reader::new(&c.data).u32() else {
                    return fail("missing database id");
                };
                let Some(d) = self.find_db(id) else {
                    log_err!("Invalid dbid 0x{:08x} in DB detach", id);
                    return status(-1);
                };
                if st.tunables.allow_client_db_attach() == 1 {
                    log_err!("DB detach from database {} denied. Clients are allowed access to databases (AllowClientDBAccess == 1)", d.name);
                    return status(-1);
                }
                if d.kind() != crate::ltdb::Kind::Volatile {
                    log_err!("Detaching non-volatile database {} denied", d.name);
                    return status(-1);
                }
                if st.recmode == p::RECOVERY_ACTIVE {
                    log_err!("DB detach denied while in recovery");
                    return status(-1);
                }
                // Samba's daemon broadcasts the control to every connected node
                // and each detaches; here that is this node alone.
                let name = d.name.clone();
                self.dbs.retain(|d| d.id != id);
                let tag = self.new_tag();
                let _ = self.db_tx.send(Job::Op {
                    id,
                    tag,
                    op: Op::Close,
                });
                self.pending
                    .retain(|_, p| !matches!(p, Pending::Traverse { db_id, .. } if *db_id == id));
                log_notice!("Detached from database '{}'", name);
                status(0)
            }
            ctrl::DB_PUSH_START => {
                // ctdb_pulldb_ext: db_id u32, lmaster u32, srvid u64.
                let mut r = p::Reader::new(&c.data);
                let (Some(id), Some(_lmaster), Some(srvid)) = (r.u32(), r.u32(), r.u64()) else {
                    return fail("bad pulldb data");
                };
                let Some(d) = self.dbs.iter_mut().find(|d| d.id == id && d.ready) else {
                    log_err!("Unknown db 0x{:08x}", id);
                    return status(-1);
                };
                if !d.frozen {
                    log_err!("rejecting ctdb_control_db_push_start when not frozen");
                    return status(-1);
                }
                if d.push.is_some() {
                    log_warn!("DB push already started for {}", d.name);
                }
                d.push = Some(PushState {
                    srvid,
                    ..Default::default()
                });
                status(0)
            }
            ctrl::DB_PUSH_CONFIRM => {
                let Some(id) = p::Reader::new(&c.data).u32() else {
                    return fail("missing database id");
                };
                let Some(d) = self.find_db(id) else {
                    log_err!("Unknown db 0x{:08x}", id);
                    return status(-1);
                };
                if !d.frozen {
                    log_err!("rejecting ctdb_control_db_push_confirm when not frozen");
                    return status(-1);
                }
                if d.push.is_none() {
                    log_err!("DB push not started");
                    return status(-1);
                }
                // The reply waits for the stores queued before it.
                self.db_op(
                    token,
                    hdr.reqid,
                    c.flags,
                    id,
                    Op::Barrier,
                    After::PushConfirm { db_id: id },
                )
            }
            ctrl::STATISTICS => {
                let snap = crate::stats::Snapshot {
                    num_clients: self.clients.values().filter(|c| !c.closing).count() as u32,
                    // Samba's flag is the whole-node freeze of a recovery,
                    // not DB_FREEZE of single databases; no recovery here
                    // freezes the node.
                    frozen: false,
                    recovering: st.recmode == p::RECOVERY_ACTIVE,
                    memory_used: self.memory_used(),
                };
                ok(self.stats.encode(&snap))
            }
            ctrl::STATISTICS_RESET => {
                self.stats.reset();
                for d in &mut self.dbs {
                    d.stats = Default::default();
                }
                status(0)
            }
            ctrl::GET_DB_STATISTICS => match self.db_from_data(&c.data) {
                Ok(d) => ok(d.stats.encode()),
                Err(_) => status(-1),
            },
            ctrl::SHUTDOWN => Outcome::Exit,
            op => {
                log_err!(
                    "Unknown control {} from client pid:{}",
                    op,
                    self.clients.get(&token).map(|c| c.pid).unwrap_or(-1)
                );
                fail("unknown control")
            }
        }
    }

    /// What STATISTICS reports as memory_used: the bytes the loop holds for
    /// clients (queued input and output) and the catalogue's pending work.
    fn memory_used(&self) -> u32 {
        let bufs: usize = self
            .clients
            .values()
            .map(|c| c.rbuf.capacity() + c.wbuf.capacity())
            .sum();
        let deferred: usize = self
            .dbs
            .iter()
            .flat_map(|d| d.deferred.iter())
            .map(|(_, p)| p.len())
            .sum();
        (bufs + deferred).min(u32::MAX as usize) as u32
    }

    fn new_tag(&mut self) -> u64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }

    /// The attached database named by a leading u32 db_id, if any.
    fn db_id_arg(&self, data: &[u8]) -> Option<u32> {
        let id = p::Reader::new(data).u32()?;
        match self.find_db(id) {
            Some(_) => Some(id),
            None => {
                log_err!("Unknown db_id 0x{:08x}", id);
                None
            }
        }
    }

    /// Hands an operation to the helper thread; the control's reply goes out
    /// when it finishes.
    fn db_op(
        &mut self,
        token: Token,
        reqid: u32,
        flags: u32,
        id: u32,
        op: Op,
        after: After,
    ) -> Outcome {
        let tag = self.new_tag();
        if self.db_tx.send(Job::Op { id, tag, op }).is_err() {
            return fail("database thread gone");
        }
        self.pending.insert(
            tag,
            Pending::Control {
                token,
                reqid,
                noreply: flags & p::CTRL_FLAG_NOREPLY != 0,
                after,
            },
        );
        Outcome::Later
    }

    fn thaw(&mut self, id: u32) {
        let Some(d) = self.dbs.iter_mut().find(|d| d.id == id) else {
            return;
        };
        log_notice!("Thaw db: {} generation {}", d.name, self.state.generation);
        if d.transaction.take().is_some() {
            let tag = self.next_tag;
            self.next_tag += 1;
            let _ = self.db_tx.send(Job::Op {
                id,
                tag,
                op: Op::TransactionCancel,
            });
        }
        d.frozen = false;
        let deferred = std::mem::take(&mut d.deferred);
        for (tok, pkt) in deferred {
            let t = Token(tok);
            if self.clients.get(&t).is_some_and(|c| !c.closing) {
                let _ = self.client_packet(t, &pkt);
            }
        }
    }

    /// REQ_CALL from a client.  This node is the only one in the vnn map, so
    /// it is lmaster and dmaster of every record: the call runs locally (on
    /// the helper thread, under the record's chain lock) and the reply goes
    /// straight back.  Calls on a frozen database wait for the thaw.
    fn request_call(&mut self, token: Token, hdr: Header, c: ReqCall, pkt: &[u8]) {
        let Some(d) = self.dbs.iter_mut().find(|d| d.id == c.db_id && d.ready) else {
            log_err!("Unknown database in request. db_id==0x{:08x}", c.db_id);
            return;
        };
        if d.frozen {
            d.deferred.push((token.0, pkt.to_vec()));
            return;
        }
        let tag = self.new_tag();
        if self
            .db_tx
            .send(Job::Op {
                id: c.db_id,
                tag,
                op: Op::Call {
                    key: c.key,
                    callid: c.callid,
                },
            })
            .is_ok()
        {
            self.stats.total_calls += 1;
            self.stats.pending_calls += 1;
            self.pending.insert(
                tag,
                Pending::Call {
                    token,
                    reqid: hdr.reqid,
                    started: Instant::now(),
                },
            );
        }
    }

    fn op_done(&mut self, tag: u64, reply: Reply) {
        let Some(pending) = self.pending.remove(&tag) else {
            return;
        };
        match pending {
            Pending::Call {
                token,
                reqid,
                started,
            } => {
                self.stats.call_done(started);
                let (st, data) = match reply {
                    Reply::Call { status, data } => (status, data),
                    Reply::Failed(why) => {
                        log_err!("Record call failed: {}", why);
                        (-1, Vec::new())
                    }
                    _ => (-1, Vec::new()),
                };
                let h = Header {
                    generation: self.state.generation,
                    operation: p::REPLY_CALL,
                    destnode: self.state.pnn,
                    srcnode: self.state.pnn,
                    reqid,
                    ..Default::default()
                };
                let pkt = p::build_packet(h, &p::reply_call_body(st, &data));
                self.send(token, &pkt);
            }
            Pending::Control {
                token,
                reqid,
                noreply,
                after,
            } => {
                let (mut st, mut data) = match reply {
                    Reply::Ok => (0, Vec::new()),
                    Reply::Seqnum(n) => (0, n.to_le_bytes().to_vec()),
                    Reply::Failed(why) => {
                        log_err!("{}", why);
                        (-1, Vec::new())
                    }
                    _ => (-1, Vec::new()),
                };
                if let After::Childwrite { started } = after {
                    self.stats.pending_childwrite_calls =
                        self.stats.pending_childwrite_calls.saturating_sub(1);
                    if st == 0 {
                        self.stats
                            .childwrite_latency
                            .update(started.elapsed().as_secs_f64());
                    }
                }
                if st == 0 {
                    match after {
                        After::Childwrite { .. } => {}
                        After::Nothing => {}
                        After::TransactionStarted { db_id, tid } => {
                            if let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id) {
                                d.transaction = Some(tid);
                            }
                        }
                        After::TransactionEnded { db_id } => {
                            if let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id) {
                                d.transaction = None;
                            }
                        }
                        After::SetFlag { db_id, bit } => {
                            if let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id) {
                                d.flags |= bit;
                                log_notice!("Readonly property set on DB {}", d.name);
                            }
                        }
                        After::PushConfirm { db_id } => {
                            match self
                                .dbs
                                .iter_mut()
                                .find(|d| d.id == db_id)
                                .and_then(|d| d.push.take())
                            {
                                Some(ps) if !ps.failed => {
                                    data = ps.num_records.to_le_bytes().to_vec()
                                }
                                _ => st = -1,
                            }
                        }
                    }
                }
                if !noreply {
                    self.reply(token, reqid, st, &data, None);
                }
            }
            Pending::Vacuum {
                db_id,
                started,
                scheduled,
                control,
            } => self.vacuum_done(db_id, started, scheduled, control, reply),
            Pending::Push { db_id } => {
                if let Reply::Failed(why) = reply {
                    log_err!("{}", why);
                    if let Some(ps) = self
                        .dbs
                        .iter_mut()
                        .find(|d| d.id == db_id)
                        .and_then(|d| d.push.as_mut())
                    {
                        ps.failed = true;
                    }
                }
            }
            // Traverses end through their stream (pump_traverses), never here.
            Pending::Traverse { .. } => {}
        }
    }

    /// Forwards what the traverses' workers streamed, as REQ_MESSAGEs to
    /// their srvids, while the receiving clients keep up: a traverse whose
    /// clients have more than TRAVERSE_BACKLOG bytes unsent waits until they
    /// read (its walk pauses when its bounded stream is full; the worker
    /// serves the database's other work meanwhile).
    fn pump_traverses(&mut self) {
        let tags: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Traverse { .. }))
            .map(|(t, _)| *t)
            .collect();
        for tag in tags {
            self.pump_traverse(tag);
        }
    }

    fn pump_traverse(&mut self, tag: u64) {
        loop {
            let Some(Pending::Traverse {
                srvid,
                stream,
                trav_reqid,
                ..
            }) = self.pending.get(&tag)
            else {
                return;
            };
            let (srvid, trav_reqid) = (*srvid, *trav_reqid);
            if self.srvid_backlog(srvid) > TRAVERSE_BACKLOG {
                return;
            }
            match stream.try_next() {
                None => return,
                Some(TraverseItem::Batch(recs)) => {
                    if let Some(Pending::Traverse { records, .. }) = self.pending.get_mut(&tag) {
                        *records += recs.len() as u32;
                    }
                    for (k, v) in recs {
                        let mut w = Writer::new();
                        p::rec_data(&mut w, trav_reqid, &k, &v);
                        self.deliver_message(srvid, &w.buf);
                    }
                }
                Some(TraverseItem::End(result)) => {
                    let Some(Pending::Traverse { db_id, records, .. }) = self.pending.remove(&tag)
                    else {
                        return;
                    };
                    if let Err(why) = result {
                        log_err!("Traverse of db 0x{:08x} failed: {}", db_id, why);
                    }
                    let mut w = Writer::new();
                    p::rec_data(&mut w, trav_reqid, &[], &[]);
                    self.deliver_message(srvid, &w.buf);
                    let name = self
                        .dbs
                        .iter()
                        .find(|d| d.id == db_id)
                        .map(|d| d.name.clone())
                        .unwrap_or_default();
                    log_notice!(
                        "Ending traverse on DB {} (id {}), records {}",
                        name,
                        trav_reqid,
                        records
                    );
                    return;
                }
            }
        }
    }

    /// The most bytes any client that gets `srvid` messages has not yet
    /// written out.
    fn srvid_backlog(&self, srvid: u64) -> usize {
        self.clients
            .values()
            .filter(|c| {
                !c.closing
                    && (c.srvids.contains_key(&srvid) || c.srvids.contains_key(&p::SRVID_ALL))
            })
            .map(|c| c.wbuf.len())
            .max()
            .unwrap_or(0)
    }

    fn attach(&mut self, token: Token, reqid: u32, c: &ReqControl, flags: u8) -> Outcome {
        let Some(name) = p::parse_cstring(&c.data).filter(|n| !n.is_empty()) else {
            return fail("missing database name");
        };
        if self.state.tunables.allow_client_db_attach() == 0 {
            log_err!(
                "DB Attach to database {} denied by tunable AllowClientDBAttach == 0",
                name
            );
            return status(-1);
        }
        if let Some(d) = self.dbs.iter().find(|d| d.name == name) {
            if d.flags & flags != flags {
                log_err!(
                    "Error: Failed to re-attach with 0x{:x} flags, database has 0x{:x} flags",
                    flags,
                    d.flags
                );
                return status(-1);
            }
            if !d.ready {
                let id = d.id;
                self.attach_waiters
                    .entry(id)
                    .or_default()
                    .push(Waiting { token, reqid });
                return Outcome::Later;
            }
            let mut w = Writer::new();
            w.u32(d.id);
            return ok(w.buf);
        }
        let id = db::db_id(&name);
        if let Some(other) = self.dbs.iter().find(|d| d.id == id) {
            log_err!(
                "db_id 0x{:x} hash collision. name1='{}' name2='{}'",
                id,
                name,
                other.name
            );
            return status(-1);
        }
        let dir = if flags & p::DB_FLAGS_PERSISTENT != 0 {
            &self.state.config.persistent_dir
        } else {
            &self.state.config.volatile_dir
        };
        let path = dir.join(format!("{}.{}", name, self.state.pnn));
        let tdb_flags = db::tdb_flags(flags, self.state.config.tdb_mutexes);
        self.dbs.insert(
            0,
            DbInfo {
                id,
                name,
                flags,
                path: path.clone(),
                tdb_flags,
                ready: false,
                unhealthy: None,
                frozen: false,
                transaction: None,
                deferred: Vec::new(),
                push: None,
                stats: Default::default(),
                vacuum: Default::default(),
            },
        );
        let job = Job::Open {
            id,
            path,
            hash_size: self.state.tunables.database_hash_size(),
            tdb_flags,
            max_dead: self.state.tunables.database_max_dead(),
            kind: db::kind_of(flags),
        };
        if let Err(db::Refused(Job::Open { id, .. })) = self.db_tx.send(job) {
            self.dbs.retain(|d| d.id != id);
            return fail("database worker not started");
        }
        self.attach_waiters
            .entry(id)
            .or_default()
            .push(Waiting { token, reqid });
        Outcome::Later
    }

    fn drain_db_replies(&mut self) {
        while let Ok(done) = self.db_rx.try_recv() {
            match done {
                Done::Op { tag, reply } => self.op_done(tag, reply),
                Done::Unhealthy { id, reason } => {
                    if let Some(d) = self.dbs.iter_mut().find(|d| d.id == id) {
                        log_err!("Database {} is unhealthy: {}", d.name, reason);
                        d.unhealthy = Some(reason);
                    }
                }
                Done::Opened { id, result } => {
                    let waiters = self.attach_waiters.remove(&id).unwrap_or_default();
                    match result {
                        Ok(()) => {
                            let interval = self.vacuum_interval();
                            let d = self
                                .dbs
                                .iter_mut()
                                .find(|d| d.id == id)
                                .expect("db in catalogue");
                            d.ready = true;
                            log_notice!(
                                "Attached to database '{}' with flags 0x{:x}",
                                d.path.display(),
                                d.tdb_flags
                            );
                            if d.kind() == crate::ltdb::Kind::Volatile {
                                d.vacuum = db::VacuumTimer::default();
                                d.vacuum.arm(Instant::now(), interval);
                            } else {
                                log_err!(
                                    "Vacuuming is disabled for non-volatile database {}",
                                    d.name
                                );
                            }
                            let mut w = Writer::new();
                            w.u32(id);
                            for wt in waiters {
                                self.reply(wt.token, wt.reqid, 0, &w.buf, None);
                            }
                        }
                        Err(e) => {
                            log_err!("{}", e);
                            self.dbs.retain(|d| d.id != id);
                            for wt in waiters {
                                self.reply(wt.token, wt.reqid, -1, &[], None);
                            }
                        }
                    }
                }
            }
        }
    }

    fn pending_leader_to(&mut self, token: Token) {
        if self.state.capabilities & p::CAP_RECMASTER == 0 {
            return;
        }
        let pkt = self.message_packet(p::SRVID_LEADER, &self.state.pnn.to_le_bytes());
        self.send(token, &pkt);
    }

    /// The leader (this node, while it is alone and leader-capable) announces
    /// itself periodically, as the recovery daemon does.
    fn broadcast_leader(&mut self) {
        if self.state.capabilities & p::CAP_RECMASTER == 0 {
            return;
        }
        let pnn = self.state.pnn;
        self.deliver_message(p::SRVID_LEADER, &pnn.to_le_bytes());
    }

    /// A message to the srvid of a DB_PUSH_START: its record buffer goes to
    /// the helper thread to be stored in the database.
    fn push_message(&mut self, srvid: u64, data: &[u8]) {
        let Some(d) = self
            .dbs
            .iter_mut()
            .find(|d| d.push.as_ref().is_some_and(|ps| ps.srvid == srvid))
        else {
            return;
        };
        let ps = d.push.as_mut().unwrap();
        if ps.failed {
            return;
        }
        let db_id = d.id;
        let mut recs = Vec::new();
        match p::parse_rec_buffer(data) {
            Some((_, raw)) => {
                for (k, v) in raw {
                    match crate::ltdb::Header::decode(&v) {
                        Some(h) => recs.push((k, h, v[crate::ltdb::HEADER_LEN..].to_vec())),
                        None => {
                            log_err!("bad ltdb record in push for db 0x{:08x}", db_id);
                            ps.failed = true;
                            return;
                        }
                    }
                }
            }
            None => {
                log_err!("bad record buffer in push for db 0x{:08x}", db_id);
                ps.failed = true;
                return;
            }
        }
        log_info!(
            "starting push of {} records for dbid 0x{:08x}",
            recs.len(),
            db_id
        );
        ps.num_records += recs.len() as u32;
        let tag = self.new_tag();
        if self
            .db_tx
            .send(Job::Op {
                id: db_id,
                tag,
                op: Op::PushStore { recs },
            })
            .is_ok()
        {
            self.pending.insert(tag, Pending::Push { db_id });
        }
    }

    fn message_packet(&self, srvid: u64, data: &[u8]) -> Vec<u8> {
        let h = Header {
            generation: self.state.generation,
            operation: p::REQ_MESSAGE,
            destnode: self.state.pnn,
            srcnode: self.state.pnn,
            reqid: 0,
            ..Default::default()
        };
        p::build_packet(
            h,
            &ReqMessage {
                srvid,
                data: data.to_vec(),
            }
            .encode(),
        )
    }

    /// Sends a message to every local client registered for srvid (or for
    /// all srvids).
    fn deliver_message(&mut self, srvid: u64, data: &[u8]) {
        let pkt = self.message_packet(srvid, data);
        // One copy per registration of srvid, then one per registration of
        // SRVID_ALL, as Samba's srvid dispatch does.
        let mut targets: Vec<(Token, u32)> = Vec::new();
        for (t, c) in &self.clients {
            if c.closing {
                continue;
            }
            let n = c.srvids.get(&srvid).copied().unwrap_or(0)
                + c.srvids.get(&p::SRVID_ALL).copied().unwrap_or(0);
            if n > 0 {
                targets.push((*t, n));
            }
        }
        for (t, n) in targets {
            for _ in 0..n {
                self.send(t, &pkt);
            }
        }
    }

    pub fn shutdown(mut self) {
        self.state.runstate = RunState::Shutdown;
        log_notice!("Shutdown sequence complete, exiting.");
        // Dropping the traverse streams ends their walks.
        self.pending.clear();
        let _ = self.db_tx.send(Job::Stop);
        // Samba's daemon leaves its socket file behind when the SHUTDOWN
        // control stops it (the next start removes a stale one); on a signal
        // we remove it.
        if !self.shutdown_by_control {
            let _ = std::fs::remove_file(self.state.paths.socket());
        }
        log_notice!("CTDB daemon shutting down");
    }
}
