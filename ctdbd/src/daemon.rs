//! The daemon's state: what the node knows about itself, the database
//! catalogue, the clients' registrations, the statistics, and the loop's
//! machinery (transport, timers, request tracker, outbox).  Start-up and
//! shutdown live here; the loop is in `event_loop`, packet handling in
//! `dispatch`, and each concern's controls under `control/`.

use crate::actions::{Action, Outbox};
use crate::config::{Config, Paths};
use crate::control::databases::ActiveTraverse;
use crate::control::Registry;
use crate::db::{self, DbInfo, Done, Job, Reply};
use crate::messages::Registrations;
use crate::nodes::Node;
use crate::requests::{Completion, RequestTracker, Tag};
use crate::signals::SignalPipe;
use crate::timers::{TimerEvent, TimerQueue};
use crate::transport::{ClientId, Origin, Transport};
use crate::tunables::Tunables;
use crate::{log_err, log_notice};
use crossbeam_channel::Receiver;
use ctdb_protocol::types::{RunState, RECOVERY_ACTIVE, RECOVERY_NORMAL};
use ctdb_protocol::wire::Timeval;
use ctdb_protocol::Generation;
use mio::{Poll, Token, Waker};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Poll token of the database side's waker.
pub const WAKER: Token = Token(1);

/// Everything the node knows about itself and the cluster.
pub struct NodeState {
    /// This node's pnn.
    pub pnn: u32,
    /// The nodes file, by pnn.
    pub nodes: Vec<Node>,
    /// The current generation (set by the start-up recovery).
    pub generation: u32,
    /// RECOVERY_NORMAL or RECOVERY_ACTIVE.
    pub recmode: u32,
    /// Where start-up (or shutdown) has got to.
    pub runstate: RunState,
    /// When the daemon started.
    pub start_time: Timeval,
    /// When the last recovery started.
    pub last_recovery_started: Timeval,
    /// When the last recovery finished.
    pub last_recovery_finished: Timeval,
    /// The tunables, as loaded and set.
    pub tunables: Tunables,
    /// CAP_* bits.
    pub capabilities: u32,
    /// This node's NODE_FLAGS_* bits.
    pub flags: u32,
    /// ctdb.conf.
    pub config: Config,
    /// The etc, run and var directories.
    pub paths: Paths,
    /// Interfaces named in public_addresses, in file order.
    pub public_ifaces: Vec<String>,
    /// Addresses listed in public_addresses.  This node never hosts them
    /// (there is no IP takeover yet), so they are all unassigned.
    pub public_ips: Vec<PublicIp>,
}

/// One line of public_addresses.
pub struct PublicIp {
    /// The address.
    pub ip: std::net::IpAddr,
    /// Its interfaces, in the order of the line.
    pub ifaces: Vec<String>,
}

/// Where a reply to a request goes: the requester and its reqid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// Who asked.
    pub origin: Origin,
    /// The request's reqid, echoed in the reply.
    pub reqid: u32,
}

/// The answer the database side gives to tracked work.
pub type DbContinuation = crate::requests::Continuation<Daemon, Reply>;

/// The single-node daemon.
pub struct Daemon {
    /// The loop's poll.
    pub(crate) poll: Poll,
    /// Client connections and listeners.
    pub(crate) transport: Transport,
    /// SIGTERM/SIGINT as poll events.
    pub(crate) signals: SignalPipe,
    /// The database workers (one thread per open database).
    pub(crate) db_tx: db::Workers,
    /// Answers from the database side.
    pub(crate) db_rx: Receiver<Done>,
    /// Newest first, as `ctdb getdbmap` lists them.
    pub(crate) dbs: Vec<DbInfo>,
    /// Attaches waiting for a database to open, by db id.
    pub(crate) attach_waiters: HashMap<u32, Vec<ReplyTo>>,
    /// Work in flight and what finishes it.
    pub(crate) requests: RequestTracker<Daemon, Reply>,
    /// Traverses in flight, streamed from their database's worker.
    pub(crate) traverses: HashMap<Tag, ActiveTraverse>,
    /// Armed timers.
    pub(crate) timers: TimerQueue<TimerEvent>,
    /// Actions queued by handlers, executed by the loop.
    pub(crate) outbox: Outbox,
    /// Control opcode → handler.
    pub(crate) controls: Registry,
    /// Srvid registrations and notifications per client.
    pub(crate) registrations: Registrations,
    /// What the node knows about itself.
    pub(crate) state: NodeState,
    /// The database being vacuumed: one run at a time, as Samba allows one
    /// vacuum child.
    pub(crate) vacuuming: Option<u32>,
    /// A signal or SHUTDOWN asked the loop to stop.
    pub(crate) exit_requested: bool,
    /// The exit came from the SHUTDOWN control (not a signal).
    pub(crate) shutdown_by_control: bool,
    /// The daemon-wide statistics.
    pub(crate) stats: crate::stats::Stats,
    /// The recovery daemon thread (a client of this daemon's socket).
    pub(crate) recoverd: Option<crate::recoverd::Handle>,
}

/// Four bytes from the kernel's random source, or None when it cannot be read.
fn random_bytes() -> Option<[u8; 4]> {
    use std::io::Read;
    let mut b = [0u8; 4];
    let mut f = std::fs::File::open("/dev/urandom").ok()?;
    f.read_exact(&mut b).ok()?;
    Some(b)
}

/// A random generation number that is never INVALID_GENERATION.
pub fn new_generation() -> u32 {
    loop {
        let g = if let Some(b) = random_bytes() {
            u32::from_le_bytes(b)
        } else {
            (Timeval::now().usec as u32).wrapping_mul(2654435761)
        };
        if g != Generation::INVALID.0 && g != 0 {
            return g;
        }
    }
}

impl Daemon {
    /// Sets up the poll, the transport, the signal pipe and the database
    /// side; nothing runs until `run`.
    pub fn new(
        listener: std::os::unix::net::UnixListener,
        node_listener: Option<std::net::TcpListener>,
        state: NodeState,
    ) -> std::io::Result<Daemon> {
        let poll = Poll::new()?;
        let transport = Transport::new(poll.registry().try_clone()?, listener, node_listener)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let signals = SignalPipe::install(poll.registry())?;
        let w = waker.clone();
        let (db_tx, db_rx) = db::spawn(
            state.pnn,
            Arc::new(move || {
                let _ = w.wake();
            }),
        );
        Ok(Daemon {
            poll,
            transport,
            signals,
            db_tx,
            db_rx,
            dbs: Vec::new(),
            attach_waiters: HashMap::new(),
            requests: RequestTracker::default(),
            traverses: HashMap::new(),
            timers: TimerQueue::default(),
            outbox: Outbox::default(),
            controls: Registry::with_every_concern(),
            registrations: Registrations::default(),
            state,
            vacuuming: None,
            exit_requested: false,
            shutdown_by_control: false,
            stats: Default::default(),
            recoverd: None,
        })
    }

    fn set_runstate(&mut self, rs: RunState) {
        self.state.runstate = rs;
        log_notice!("Set runstate to {} ({})", rs.name(), rs as u32);
    }

    /// Single-node start-up: there is nobody to recover with, so the first
    /// recovery is just a new generation.  The first leader announcement is
    /// due at once.
    pub(crate) fn startup(&mut self) {
        self.set_runstate(RunState::Init);
        self.set_runstate(RunState::Setup);
        self.set_runstate(RunState::FirstRecovery);
        self.state.last_recovery_started = Timeval::now();
        self.state.recmode = RECOVERY_ACTIVE;
        self.state.generation = new_generation();
        self.state.recmode = RECOVERY_NORMAL;
        self.state.last_recovery_finished = Timeval::now();
        self.stats.num_recoveries += 1;
        log_notice!("Recovery complete, generation {}", self.state.generation);
        self.set_runstate(RunState::Startup);
        self.set_runstate(RunState::Running);
        self.arm_timer(Instant::now(), TimerEvent::LeaderBroadcast);
        self.start_recoverd();
    }

    /// Starts the recovery daemon thread; it connects to this daemon's
    /// socket, which the loop serves from now on.
    fn start_recoverd(&mut self) {
        let st = &self.state;
        let cfg = crate::recoverd::RecoverdConfig {
            socket: st.paths.socket(),
            cluster_lock: st.config.cluster_lock.clone(),
            settings: crate::recoverd::settings(
                ctdb_protocol::Pnn(st.pnn),
                st.capabilities,
                &st.config,
                &st.tunables,
            ),
        };
        match crate::recoverd::spawn(cfg) {
            Ok(h) => self.recoverd = Some(h),
            Err(e) => log_err!("Failed to start the recovery daemon: {e}"),
        }
    }

    /// Queues a packet for a client or a node.
    pub(crate) fn send(&mut self, to: Origin, packet: Vec<u8>) {
        self.outbox.push(Action::Send { to, packet });
    }

    /// Queues a timer.
    pub(crate) fn arm_timer(&mut self, at: Instant, event: TimerEvent) {
        self.outbox.push(Action::ArmTimer { at, event });
    }

    /// Tracks work whose answer comes back later; with a timeout, the
    /// continuation runs as timed out if no answer has come by then.
    pub(crate) fn track(&mut self, then: DbContinuation, timeout: Option<Duration>) -> Tag {
        let tag = self.requests.track(then);
        self.arm_expiry(tag, timeout);
        tag
    }

    /// `track` for a continuation that needs its own tag.
    pub(crate) fn track_with(
        &mut self,
        make: impl FnOnce(Tag) -> DbContinuation,
        timeout: Option<Duration>,
    ) -> Tag {
        let tag = self.requests.track_with(make);
        self.arm_expiry(tag, timeout);
        tag
    }

    fn arm_expiry(&mut self, tag: Tag, timeout: Option<Duration>) {
        if let Some(t) = timeout {
            self.arm_timer(Instant::now() + t, TimerEvent::RequestExpired(tag));
        }
    }

    /// Runs the continuation of a tracked request with its answer.
    pub(crate) fn answer(&mut self, tag: Tag, reply: Reply) {
        RequestTracker::answer(self, |d| &mut d.requests, tag, reply);
    }

    /// Runs the continuation of a tracked request whose time is up.
    pub(crate) fn expire(&mut self, tag: Tag) {
        RequestTracker::expire(self, |d| &mut d.requests, tag);
    }

    /// True when `c` is a connected client that is not closing.
    pub(crate) fn client_is_live(&self, c: ClientId) -> bool {
        self.transport.is_live(c)
    }

    /// Stops the database side, removes the socket (after a signal) and says
    /// goodbye.
    pub fn shutdown(mut self) {
        self.state.runstate = RunState::Shutdown;
        if let Some(r) = self.recoverd.take() {
            r.stop();
        }
        log_notice!("Shutdown sequence complete, exiting.");
        // Dropping the traverse streams releases workers waiting to send.
        self.traverses.clear();
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

/// What a tracked database request's completion means for a control reply:
/// an answer, or a timeout.
pub fn reply_of(done: Completion<Reply>) -> Reply {
    match done {
        Completion::Answered(r) => r,
        Completion::TimedOut => Reply::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_random_and_never_invalid() {
        let gens: std::collections::HashSet<u32> = (0..64).map(|_| new_generation()).collect();
        assert!(gens.len() > 1, "64 draws gave one value: {gens:?}");
        assert!(!gens.contains(&Generation::INVALID.0) && !gens.contains(&0));
    }
}
