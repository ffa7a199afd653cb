//! The daemon's state: what the node knows about itself, the database
//! catalogue, the clients' registrations, the statistics, and the loop's
//! machinery (transport, timers, request tracker, outbox).  Start-up and
//! shutdown live here; the loop is in `event_loop`, packet handling in
//! `dispatch`, and each concern's controls under `control/`.

use crate::actions::{Action, Outbox};
use crate::config::{Config, Paths};
use crate::control::Registry;
use crate::db::{self, DbInfo, Done, Job, Reply};
use crate::eventscript::{Event, EventStatus};
use crate::forward::RemoteControls;
use crate::messages::Registrations;
use crate::node_link::NodeLinks;
use crate::nodes::Node;
use crate::requests::{Completion, RequestTracker, Tag};
use crate::signals::SignalPipe;
use crate::timers::{TimerEvent, TimerQueue};
use crate::transport::{ClientId, Origin, Transport};
use crate::tunables::Tunables;
use crate::{log_err, log_notice};
use crossbeam_channel::Receiver;
use ctdb_protocol::types::{
    RunState, NODE_FLAGS_DELETED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_UNHEALTHY, RECOVERY_ACTIVE,
};
use ctdb_protocol::wire::Timeval;
use ctdb_protocol::{Generation, Pnn};
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
    /// The vnn map's generation: INVALID until a recovery sets it
    /// (SETVNNMAP, or the single-node start-up recovery).
    pub generation: Generation,
    /// The vnn map: the pnns that are lmasters, in hash-slot order.
    pub vnn_map: Vec<Pnn>,
    /// RECOVERY_NORMAL or RECOVERY_ACTIVE; a node starts ACTIVE.
    pub recmode: u32,
    /// Every database frozen by the whole-node FREEZE control (Samba's
    /// freeze_mode FROZEN); SET_RECMODE NORMAL thaws them.
    pub all_frozen: bool,
    /// Where start-up (or shutdown) has got to.
    pub runstate: RunState,
    /// When the daemon started.
    pub start_time: Timeval,
    /// When the last recovery started.
    pub last_recovery_started: Timeval,
    /// When the last recovery finished.
    pub last_recovery_finished: Timeval,
    /// END_RECOVERY came while in FIRST_RECOVERY: the first recovery is
    /// over, its "recovered" event (after which the run state moves on)
    /// may still be running.
    pub first_recovery_ending: bool,
    /// The tunables, as loaded and set.
    pub tunables: Tunables,
    /// CAP_* bits.
    pub capabilities: u32,
    /// NODE_FLAGS_* bits of every node, by pnn (this node's own included):
    /// others start DISCONNECTED until the node transport connects them.
    pub node_flags: Vec<u32>,
    /// ctdb.conf.
    pub config: Config,
    /// The etc, run and var directories.
    pub paths: Paths,
    /// The public addresses, their believed holders and interfaces.
    pub public: crate::public_addresses::PublicAddresses,
}

impl NodeState {
    /// Samba's vnn map before any recovery: every node not deleted, in pnn
    /// order.
    pub fn initial_vnn_map(nodes: &[Node]) -> Vec<Pnn> {
        nodes
            .iter()
            .filter(|n| !n.deleted)
            .map(|n| Pnn(n.pnn))
            .collect()
    }

    /// The node flags at start-up, as Samba sets them: `own` for this node,
    /// DELETED and DISCONNECTED for deleted nodes, DISCONNECTED and
    /// UNHEALTHY for every other node (until it connects and the leader
    /// says how it is).
    pub fn initial_node_flags(nodes: &[Node], pnn: u32, own: u32) -> Vec<u32> {
        nodes
            .iter()
            .map(|n| {
                if n.deleted {
                    NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED
                } else if n.pnn == pnn {
                    // Unhealthy until its first good monitor event.
                    own | NODE_FLAGS_UNHEALTHY
                } else {
                    NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY
                }
            })
            .collect()
    }

    /// This node's NODE_FLAGS_* bits.
    pub fn own_flags(&self) -> u32 {
        self.node_flags.get(self.pnn as usize).copied().unwrap_or(0)
    }

    /// The flags of node `pnn`; None for a pnn not in the nodes file.
    pub fn flags_of(&self, pnn: Pnn) -> Option<u32> {
        self.node_flags.get(pnn.0 as usize).copied()
    }

    /// Marks another node disconnected (and unhealthy) as Samba's
    /// ctdb_node_dead does; this node's own flags are never touched.
    pub fn mark_disconnected(&mut self, pnn: Pnn) {
        if pnn.0 == self.pnn {
            return;
        }
        if let Some(f) = self.node_flags.get_mut(pnn.0 as usize) {
            *f |= NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY;
        }
    }

    /// Clears another node's DISCONNECTED flag as Samba's
    /// ctdb_node_connected does; the rest waits for the recovery daemon.
    pub fn mark_connected(&mut self, pnn: Pnn) {
        if pnn.0 == self.pnn {
            return;
        }
        if let Some(f) = self.node_flags.get_mut(pnn.0 as usize) {
            *f &= !NODE_FLAGS_DISCONNECTED;
        }
    }

    /// Sets this node's NODE_FLAGS_* bits.
    pub fn set_own_flags(&mut self, flags: u32) {
        let pnn = self.pnn as usize;
        if let Some(f) = self.node_flags.get_mut(pnn) {
            *f = flags;
        }
    }
}

/// Where a reply to a request goes: the requester and its reqid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// Who asked.
    pub origin: Origin,
    /// The request's reqid, echoed in the reply.
    pub reqid: u32,
    /// The requester asked for no reply (CTRL_FLAG_NOREPLY).
    pub noreply: bool,
}

/// The answer the database side gives to tracked work.
pub type DbContinuation = crate::requests::Continuation<Daemon, Reply>;

/// The single-node daemon.
pub struct Daemon {
    /// The loop's poll.
    pub(crate) poll: Poll,
    /// Client connections and the unix listener.
    pub(crate) transport: Transport,
    /// The node listener and the connections to and from other nodes.
    pub(crate) links: NodeLinks,
    /// Controls sent to nodes and awaiting their replies.
    pub(crate) remote: RemoteControls,
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
    /// Traverses in flight: this node's walks and the collections for its
    /// clients.
    pub(crate) traverses: crate::control::traverse::Traverses,
    /// TRANS3_COMMITs waiting for the nodes' answers.
    pub(crate) commits: crate::control::persistent::Commits,
    /// The tdb sequence numbers watched since ENABLE_SEQNUM.
    pub(crate) seqnums: crate::control::persistent::SeqnumWatch,
    /// DB_PULLs in flight, streamed from their database's worker.
    pub(crate) pulls: HashMap<Tag, crate::control::pull::ActivePull>,
    /// Local clients' attaches held back until recovery ends (their tracked
    /// requests, oldest first).
    pub(crate) deferred_attaches: Vec<Tag>,
    /// Packets from nodes held while a database a node attached is opening.
    pub(crate) attach_gate: crate::control::cluster_attach::AttachGate,
    /// The ban in force on this node, if any (SET_BAN_STATE).
    pub(crate) ban: Option<crate::control::flags::Ban>,
    /// The cluster lock file SET_RECMODE probes, kept open.
    pub(crate) reclock_probe: crate::control::recmode::ReclockProbe,
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
    /// Record calls in flight between nodes (call.rs).
    pub(crate) calls: crate::call::Calls,
    /// The recovery daemon thread (a client of this daemon's socket).
    pub(crate) recoverd: Option<crate::recoverd::Handle>,
    /// The event daemon that runs the event scripts (None in unit tests).
    pub(crate) eventd: Option<crate::eventscript::EventDaemon>,
    /// The health monitor's state (Samba's ctdb_monitor).
    pub(crate) monitor: crate::monitor::Monitor,
    /// Addresses being announced after their takeover.
    pub(crate) announcements: crate::announce::Announcements,
    /// The TCP connections each local client registered.
    pub(crate) client_connections: crate::client_tcp::ClientConnections,
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
        let transport = Transport::new(poll.registry().try_clone()?, listener)?;
        let links = NodeLinks::new(
            poll.registry().try_clone()?,
            node_listener,
            &state.nodes,
            ctdb_protocol::Pnn(state.pnn),
        )?;
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
            links,
            remote: RemoteControls::default(),
            signals,
            db_tx,
            db_rx,
            dbs: Vec::new(),
            attach_waiters: HashMap::new(),
            requests: RequestTracker::default(),
            traverses: Default::default(),
            commits: Default::default(),
            seqnums: Default::default(),
            pulls: HashMap::new(),
            deferred_attaches: Vec::new(),
            attach_gate: Default::default(),
            reclock_probe: Default::default(),
            ban: None,
            timers: TimerQueue::default(),
            announcements: Default::default(),
            client_connections: Default::default(),
            outbox: Outbox::default(),
            controls: Registry::with_every_concern(),
            registrations: Registrations::default(),
            state,
            vacuuming: None,
            exit_requested: false,
            shutdown_by_control: false,
            stats: Default::default(),
            calls: Default::default(),
            recoverd: None,
            eventd: None,
            monitor: Default::default(),
        })
    }

    /// Moves to run state `rs`, logged as Samba logs it.
    pub(crate) fn set_runstate(&mut self, rs: RunState) {
        self.state.runstate = rs;
        log_notice!("Set runstate to {} ({})", rs.name(), rs as u32);
    }

    /// Start-up as Samba's daemon: the event daemon starts and the "init"
    /// event runs (waited for; the daemon exits when either fails); the
    /// node is in recovery mode, with generation INVALID and a vnn map of
    /// every node of the nodes file; then the "setup" event runs, and when
    /// it has succeeded the recovery daemon starts and the node waits in
    /// FIRST_RECOVERY for its leader's first recovery.
    pub(crate) fn startup(&mut self) {
        self.state.recmode = RECOVERY_ACTIVE;
        if let Err(e) = self.start_eventd() {
            log_err!("{}", e);
            log_err!("Failed to start event daemon");
            std::process::exit(1);
        }
        self.set_runstate(RunState::Init);
        if !self.run_event_and_wait(Event::Init).ok() {
            log_err!("Failed to run init event");
            std::process::exit(1);
        }
        self.notify("init");
        self.state.generation = Generation::INVALID;
        self.state.vnn_map = self
            .state
            .nodes
            .iter()
            .filter(|n| !n.deleted)
            .map(|n| Pnn(n.pnn))
            .collect();
        self.attach_persistent_at_start();
        self.set_runstate(RunState::Setup);
        if let Err(e) = self.run_event(Event::Setup, "", Box::new(Daemon::setup_done)) {
            log_err!("{}", e);
            log_err!("Failed to set up 'setup' event");
            std::process::exit(1);
        }
    }

    /// The "setup" event ended: the recovery daemon starts and the node
    /// waits for its first recovery (Samba's node dies when setup failed).
    fn setup_done(&mut self, status: EventStatus) {
        if !status.ok() {
            log_err!("Failed to run setup event");
            std::process::exit(1);
        }
        self.notify("setup");
        self.start_recoverd();
        self.set_runstate(RunState::FirstRecovery);
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
        log_err!("Shutdown sequence commencing.");
        self.set_runstate(RunState::Shutdown);
        if let Some(r) = self.recoverd.take() {
            r.stop();
        }
        self.stop_monitoring();
        self.run_event_and_wait(Event::Shutdown);
        self.stop_eventd();
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
