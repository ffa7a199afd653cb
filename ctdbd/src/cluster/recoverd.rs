//! One node's recovery daemon as a state machine: the election, the main
//! loop's monitoring rounds, the recovery runs and the takeover runs, fed
//! by [`Event`]s and answering with [`Action`]s.

use super::banning::{BanCredits, RECOVERY_FAILURES};
use super::batch::{Batch, Request, Tags};
use super::election::{Election, Standing};
use super::monitor::{self, NodeReport};
use super::recovery::{Progress, RecoveryRun, RunSettings};
use super::takeover::{TakeoverEnd, TakeoverRun, TakeoverSettings};
use super::{log, Action, ControlAnswer, Event, Level, Tag, Time, Timer};
use ctdb_protocol::messages::{DisableMessage, ElectionMessage, SrvidMessage};
use ctdb_protocol::packet::CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE;
use ctdb_protocol::types::{
    BanState, NodeMap, PublicIp, VnnMap, CAP_RECMASTER, NODE_FLAGS_DISCONNECTED,
    NODE_FLAGS_INACTIVE, RECOVERY_ACTIVE, RECOVERY_NORMAL,
};
use ctdb_protocol::wire::Timeval;
use ctdb_protocol::{ControlReply, ControlRequest, Generation, Layout, Pnn, Srvid};
use std::collections::BTreeMap;

/// What the recovery daemon of one node is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node.
    pub pnn: Pnn,
    /// Whether a cluster lock is configured.
    pub cluster_lock: bool,
    /// This node's capabilities (`CAP_RECMASTER` lets it lead).
    pub capabilities: u32,
    /// The wall clock at `Time(0)`: the node's election priority time.
    pub start_wall: Timeval,
    /// RecoverInterval.
    pub recover_interval_ms: u64,
    /// ElectionTimeout.
    pub election_timeout_ms: u64,
    /// `[cluster] leader timeout`.
    pub leader_timeout_ms: u64,
    /// The leader broadcast interval (one second in Samba).
    pub leader_broadcast_ms: u64,
    /// RecoverTimeout: how long a batch of controls may take.
    pub recover_timeout_ms: u64,
    /// RerecoveryTimeout: no new recovery this soon after one finished.
    pub rerecovery_timeout_ms: u64,
    /// RecBufferSizeLimit.
    pub buffer_limit: usize,
    /// Record buffers pushed per step.
    pub buffers_per_step: usize,
    /// RecoveryBanPeriod: how long a misbehaving node is banned.
    pub ban_period_s: u32,
    /// RecoveryGracePeriod: credits older than this are forgiven.
    pub grace_period_ms: u64,
    /// Seed of the generation numbers.
    pub seed: u64,
    /// `[failover] disabled`: takeover runs only send IPREALLOCATED and
    /// nodes do not check their addresses.
    pub failover_disabled: bool,
}

impl Settings {
    /// Takes the timers and limits from the node's tunables as they are now
    /// (a zero interval counts as one second, as at start).
    pub fn apply_tunables(&mut self, t: &ctdb_protocol::tunables::TunableList) {
        let ms = |name: &str| t.get(name).map(|v| u64::from(v.max(1)) * 1000);
        if let Some(v) = ms("RecoverInterval") {
            self.recover_interval_ms = v;
        }
        if let Some(v) = ms("ElectionTimeout") {
            self.election_timeout_ms = v;
        }
        if let Some(v) = ms("RecoverTimeout") {
            self.recover_timeout_ms = v;
        }
        if let Some(v) = t.get("RerecoveryTimeout") {
            self.rerecovery_timeout_ms = u64::from(v) * 1000;
        }
        if let Some(v) = t.get("RecBufferSizeLimit") {
            self.buffer_limit = v as usize;
        }
        if let Some(v) = t.get("RecoveryBanPeriod") {
            self.ban_period_s = v;
        }
        if let Some(v) = t.get("RecoveryGracePeriod") {
            self.grace_period_ms = u64::from(v) * 1000;
        }
    }
}

/// The replies of one node in a monitoring round, as they arrive.
#[derive(Default)]
struct PartialReport {
    nodemap: Option<NodeMap>,
    recmode: Option<u32>,
    vnnmap: Option<VnnMap>,
    caps: Option<u32>,
}

/// How long a takeover run disables takeover runs (and so address checks)
/// on the other nodes, as Samba's leader does.
const TAKEOVER_RUN_DISABLE_S: u32 = 60;

/// The work of the main loop under way.
enum Round {
    Idle,
    Local(Batch),
    Remote { batch: Batch, local: NodeMap },
    Recovery(Box<RecoveryRun>),
    Takeover(Box<TakeoverRun>),
}

/// One node's recovery daemon.
pub struct Recoverd {
    s: Settings,
    tags: Tags,
    election: Election,
    round: Round,
    nodemap: Option<NodeMap>,
    need_recovery: bool,
    recovery_allowed_at: Time,
    /// The time a MonitorNow is armed for, so that a recovery held back by
    /// RerecoveryTimeout starts when it may, not at the next interval.
    recovery_wake: Option<Time>,
    takeover_waiters: Vec<SrvidMessage>,
    /// The requests the takeover run under way answers (those that came
    /// during it wait for the next run, as in Samba).
    run_waiters: Vec<SrvidMessage>,
    need_takeover: bool,
    /// A client set some node's recovery mode ACTIVE during a monitoring or
    /// takeover round: run another round as soon as this one ends.
    monitor_soon: bool,
    rng: u64,
    recoveries: u32,
    /// Credits for the problems the monitoring rounds blamed on nodes.
    culprits: BanCredits,
    /// Failed recovery runs blamed on nodes.
    recovery_failures: BanCredits,
    /// Recoveries are disabled until then (DISABLE_RECOVERIES, as
    /// `ctdb reloadnodes` sends).
    recoveries_disabled_until: Option<Time>,
    /// Takeover runs (and this node's address check) are disabled until
    /// then (DISABLE_TAKEOVER_RUNS, DISABLE_IP_CHECK).
    takeover_runs_disabled_until: Option<Time>,
    /// Nodes that got new addresses (REBALANCE_NODE): LCP2 may move
    /// addresses onto them in the next takeover run.
    force_rebalance: Vec<Pnn>,
}

impl Recoverd {
    /// A recovery daemon that knows no leader yet; send it [`Event::Start`].
    pub fn new(s: Settings) -> Recoverd {
        let election = Election::new(
            s.pnn,
            s.cluster_lock,
            s.start_wall,
            s.election_timeout_ms,
            s.leader_timeout_ms,
        );
        Recoverd {
            rng: s.seed ^ 0x9e37_79b9_7f4a_7c15,
            s,
            tags: Tags::default(),
            election,
            round: Round::Idle,
            nodemap: None,
            need_recovery: false,
            recovery_allowed_at: Time(0),
            recovery_wake: None,
            takeover_waiters: Vec::new(),
            run_waiters: Vec::new(),
            need_takeover: false,
            monitor_soon: false,
            recoveries: 0,
            culprits: BanCredits::default(),
            recovery_failures: BanCredits::default(),
            recoveries_disabled_until: None,
            takeover_runs_disabled_until: None,
            force_rebalance: Vec::new(),
        }
    }

    /// The leader this node believes in.
    pub fn leader(&self) -> Pnn {
        self.election.leader()
    }

    /// True when this node leads and (with a cluster lock) holds the lock.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn leads_with_lock(&self) -> bool {
        self.election.leads_with_lock()
    }

    /// Recoveries this node completed as leader.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn recoveries(&self) -> u32 {
        self.recoveries
    }

    /// A one-line summary of the machine's state, for traces.
    #[cfg(test)]
    pub fn summary(&self) -> String {
        let round = match &self.round {
            Round::Idle => "idle",
            Round::Local(_) => "local",
            Round::Remote { .. } => "remote",
            Round::Recovery(_) => "recovery",
            Round::Takeover(_) => "takeover",
        };
        format!(
            "leader={} leads={} election={} round={round} need_recovery={} standing={:?}",
            self.leader(),
            self.election.leads_with_lock(),
            self.election.in_progress(),
            self.need_recovery,
            self.standing()
        )
    }

    fn standing(&self) -> Standing {
        let (flags, connected) = match &self.nodemap {
            Some(m) => (
                m.0.iter()
                    .find(|n| n.pnn == self.s.pnn)
                    .map_or(0, |n| n.flags),
                monitor::connected_nodes(m).len() as u32,
            ),
            None => (0, 1),
        };
        Standing {
            num_connected: connected,
            node_flags: flags,
            can_lead: self.s.capabilities & CAP_RECMASTER != 0 && flags & NODE_FLAGS_INACTIVE == 0,
        }
    }

    fn next_generation(&mut self) -> Generation {
        loop {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let g = (z ^ (z >> 31)) as u32;
            if g != Generation::INVALID.0 && g != 0 {
                return Generation(g);
            }
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, now: Time, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let led = self.election.leads_with_lock();
        match ev {
            Event::Start => self.start(now, &mut out),
            Event::Timer(t) => self.on_timer(now, t, &mut out),
            Event::Message { srvid, data } => self.on_message(now, srvid, &data, &mut out),
            Event::Reply { tag, answer } => self.on_reply(now, tag, &answer, &mut out),
            Event::Lock(o) => self.election.on_lock(o, &mut out),
            Event::LockLost => {
                let s = self.standing();
                if self.election.on_lock_lost(&s, &mut out) {
                    self.force_election(now, &mut out);
                }
            }
            Event::Continue => {
                if let Round::Recovery(run) = &mut self.round {
                    let p = run.on_continue(now, &mut self.tags, &mut out);
                    self.recovery_progress(now, p, &mut out);
                }
            }
        }
        if matches!(self.round, Round::Recovery(_)) && !self.election.leads_with_lock() {
            if let Round::Recovery(run) = &mut self.round {
                run.abort(&mut out);
            }
            log(
                &mut out,
                Level::Notice,
                format!("Leader changed to {}, aborting recovery", self.leader()),
            );
            self.round = Round::Idle;
        }
        if !led && self.election.leads_with_lock() {
            // A new leader checks the cluster at once rather than at the
            // next interval.
            out.push(Action::Timer {
                at: now,
                timer: Timer::MonitorNow,
            });
        }
        out
    }

    fn start(&mut self, now: Time, out: &mut Vec<Action>) {
        for srvid in [
            Srvid::ELECTION,
            Srvid::LEADER,
            Srvid::TAKEOVER_RUN,
            Srvid::RECMODE_ACTIVE_BY_CLIENT,
            Srvid::DISABLE_RECOVERIES,
            Srvid::BANNING,
            Srvid::DISABLE_TAKEOVER_RUNS,
            Srvid::DISABLE_IP_CHECK,
            Srvid::REBALANCE_NODE,
        ] {
            out.push(Action::Register(srvid));
        }
        out.push(Action::Timer {
            at: now,
            timer: Timer::MainLoop,
        });
        out.push(Action::Timer {
            at: now.after_ms(self.s.leader_broadcast_ms),
            timer: Timer::LeaderBroadcast,
        });
        // Fast start: a running cluster's leader broadcasts every second.
        let first = self.s.leader_timeout_ms.min(2 * self.s.leader_broadcast_ms);
        self.election.arm_leader_timeout(now, first, out);
    }

    fn on_timer(&mut self, now: Time, t: Timer, out: &mut Vec<Action>) {
        match t {
            Timer::MainLoop => {
                out.push(Action::Timer {
                    at: now.after_ms(self.s.recover_interval_ms),
                    timer: Timer::MainLoop,
                });
                self.main_loop(now, out);
            }
            Timer::MonitorNow => self.main_loop(now, out),
            Timer::LeaderBroadcast => {
                out.push(Action::Timer {
                    at: now.after_ms(self.s.leader_broadcast_ms),
                    timer: Timer::LeaderBroadcast,
                });
                let s = self.standing();
                self.election.broadcast_tick(&s, out);
            }
            Timer::BatchDeadline(id) => self.on_deadline(now, id, out),
            _ => {
                let s = self.standing();
                if self.election.on_timer(now, &s, t, out) {
                    self.force_election(now, out);
                }
            }
        }
    }

    fn on_message(&mut self, now: Time, srvid: Srvid, data: &[u8], out: &mut Vec<Action>) {
        let s = self.standing();
        match srvid {
            Srvid::ELECTION => match ElectionMessage::decode(data) {
                Ok(em) => self.election.on_election(now, &s, &em, out),
                Err(e) => log(out, Level::Error, format!("Bad election message: {e}")),
            },
            Srvid::LEADER => match Pnn::decode(data) {
                Ok(p) => self.election.on_leader(now, &s, p, out),
                Err(e) => log(
                    out,
                    Level::Warning,
                    format!("Unable to parse leader broadcast: {e}"),
                ),
            },
            Srvid::TAKEOVER_RUN => match SrvidMessage::decode(data) {
                Ok(m) => self.takeover_waiters.push(m),
                Err(_) => log(out, Level::Error, "Wrong size of return address".into()),
            },
            Srvid::RECMODE_ACTIVE_BY_CLIENT => self.on_recmode_by_client(now, out),
            Srvid::DISABLE_RECOVERIES => match DisableMessage::decode(data) {
                Ok(m) => self.disable_recoveries(now, m, out),
                Err(e) => log(out, Level::Error, format!("Wrong size for data: {e}")),
            },
            Srvid::DISABLE_TAKEOVER_RUNS => match DisableMessage::decode(data) {
                Ok(m) => self.disable_takeover_runs(now, m, out),
                Err(e) => log(out, Level::Error, format!("Wrong size for data: {e}")),
            },
            Srvid::DISABLE_IP_CHECK => match u32::decode(data) {
                Ok(timeout) => {
                    let m = DisableMessage {
                        pnn: self.s.pnn,
                        srvid: Srvid(0),
                        timeout,
                    };
                    self.disable_takeover_runs(now, m, out)
                }
                Err(e) => log(out, Level::Error, format!("Wrong size for data: {e}")),
            },
            Srvid::REBALANCE_NODE => match Pnn::decode(data) {
                Ok(p) if self.election.is_leader() => {
                    log(
                        out,
                        Level::Notice,
                        format!("Setting up rebalance of IPs to node {p}"),
                    );
                    self.force_rebalance.push(p);
                }
                Ok(_) => {}
                Err(e) => log(
                    out,
                    Level::Error,
                    format!("Incorrect size of node rebalance message: {e}"),
                ),
            },
            Srvid::BANNING => match Pnn::decode(data) {
                // Credits enough for a ban at the next main loop.
                Ok(p) if self.election.is_leader() => {
                    let nodes = self.nodemap.as_ref().map_or(1, |m| m.0.len()) as u32;
                    self.blame(now, p, nodes);
                }
                Ok(_) => {}
                Err(e) => log(out, Level::Error, format!("invalid data size: {e}")),
            },
            _ => {
                if let Round::Recovery(run) = &mut self.round {
                    run.on_message(srvid, data);
                }
            }
        }
    }

    /// A client put a node into recovery mode ACTIVE: the leader looks at
    /// the cluster now (or right after the round under way); a recovery
    /// under way covers it, and other nodes ignore it.
    fn on_recmode_by_client(&mut self, now: Time, out: &mut Vec<Action>) {
        if !self.election.leads_with_lock() {
            return;
        }
        match self.round {
            Round::Idle => out.push(Action::Timer {
                at: now,
                timer: Timer::MonitorNow,
            }),
            Round::Recovery(_) => {}
            _ => self.monitor_soon = true,
        }
    }

    /// DISABLE_RECOVERIES: no recovery starts for `m.timeout` seconds (0
    /// enables them again); refused with -EAGAIN while one runs.  The
    /// answer (this node's pnn on success) goes to `m.srvid` on `m.pnn`.
    fn disable_recoveries(&mut self, now: Time, m: DisableMessage, out: &mut Vec<Action>) {
        let busy = matches!(self.round, Round::Recovery(_));
        let pnn = self.s.pnn;
        let until = &mut self.recoveries_disabled_until;
        let answer = disable_for(until, busy, "recoveries", true, now, &m, pnn, out);
        answer_disable(&m, answer, out);
    }

    /// DISABLE_TAKEOVER_RUNS: no takeover run (nor address check) for
    /// `m.timeout` seconds (0 enables them again); refused with -EAGAIN
    /// while one runs. The answer goes to `m.srvid` on `m.pnn`.
    fn disable_takeover_runs(&mut self, now: Time, m: DisableMessage, out: &mut Vec<Action>) {
        let busy = matches!(self.round, Round::Takeover(_));
        let pnn = self.s.pnn;
        let until = &mut self.takeover_runs_disabled_until;
        let answer = disable_for(until, busy, "takeover runs", false, now, &m, pnn, out);
        answer_disable(&m, answer, out);
    }

    /// True while takeover runs are disabled (the timeout lapses here).
    fn takeover_runs_disabled(&mut self, now: Time) -> bool {
        match self.takeover_runs_disabled_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.takeover_runs_disabled_until = None;
                false
            }
            None => false,
        }
    }

    /// True (and logged) while recoveries are disabled.
    fn recoveries_disabled(&mut self, now: Time, out: &mut Vec<Action>) -> bool {
        match self.recoveries_disabled_until {
            Some(t) if now < t => {
                log(
                    out,
                    Level::Notice,
                    "Unable to begin - recoveries are disabled".into(),
                );
                true
            }
            Some(_) => {
                log(
                    out,
                    Level::Notice,
                    "Reenabling recoveries after timeout".into(),
                );
                self.recoveries_disabled_until = None;
                false
            }
            None => false,
        }
    }

    /// Sends a control whose reply nobody waits for.
    fn fire(&mut self, to: Pnn, request: ControlRequest, out: &mut Vec<Action>) {
        out.push(Action::Control {
            tag: self.tags.tag(),
            to,
            request,
            srvid: Srvid(0),
            flags: 0,
        });
    }

    fn force_election(&mut self, now: Time, out: &mut Vec<Action>) {
        let targets = match &self.nodemap {
            Some(m) => monitor::active_nodes(m),
            None => vec![self.s.pnn],
        };
        for p in targets {
            self.fire(p, ControlRequest::SetRecmode(RECOVERY_ACTIVE), out);
        }
        let s = self.standing();
        self.election.force(now, &s, out);
    }

    fn main_loop(&mut self, now: Time, out: &mut Vec<Action>) {
        self.election.main_loop_tick(now, out);
        if self.election.in_progress() || !matches!(self.round, Round::Idle) {
            return;
        }
        let me = self.s.pnn;
        let reqs = vec![
            Request::new(me, ControlRequest::GetNodeMap),
            Request::new(me, ControlRequest::GetRecmode),
            Request::new(me, ControlRequest::GetVnnMap),
            Request::new(me, ControlRequest::GetCapabilities),
            Request::new(me, ControlRequest::GetAllTunables),
            Request {
                flags: CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE,
                ..Request::new(me, ControlRequest::GetPublicIps)
            },
        ];
        self.round = Round::Local(Batch::send(
            &mut self.tags,
            now,
            self.s.recover_timeout_ms,
            reqs,
            out,
        ));
    }

    fn on_reply(&mut self, now: Time, tag: Tag, a: &ControlAnswer, out: &mut Vec<Action>) {
        let done = match &mut self.round {
            Round::Idle => false,
            Round::Local(b) | Round::Remote { batch: b, .. } => b.answer(tag, a) && b.is_complete(),
            Round::Takeover(run) => {
                if let Some(end) = run.on_reply(now, &mut self.tags, tag, a, out) {
                    self.round = Round::Idle;
                    self.takeover_done(now, end, out);
                }
                false
            }
            Round::Recovery(run) => {
                if let Some(p) = run.on_reply(now, &mut self.tags, tag, a, out) {
                    self.recovery_progress(now, p, out);
                }
                false
            }
        };
        if done {
            self.round_done(now, out);
        }
    }

    fn on_deadline(&mut self, now: Time, id: u32, out: &mut Vec<Action>) {
        let done = match &mut self.round {
            Round::Idle => false,
            Round::Local(b) | Round::Remote { batch: b, .. } => b.deadline(id),
            Round::Takeover(run) => {
                if let Some(end) = run.on_deadline(now, &mut self.tags, id, out) {
                    self.round = Round::Idle;
                    self.takeover_done(now, end, out);
                }
                false
            }
            Round::Recovery(run) => {
                if let Some(p) = run.on_deadline(now, &mut self.tags, id, out) {
                    self.recovery_progress(now, p, out);
                }
                false
            }
        };
        if done {
            self.round_done(now, out);
        }
    }

    fn round_done(&mut self, now: Time, out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.round, Round::Idle) {
            Round::Local(b) => self.local_done(now, b, out),
            Round::Remote { batch, local } => self.remote_done(now, batch, local, out),
            Round::Idle | Round::Recovery(_) | Round::Takeover(_) => {}
        }
        if self.monitor_soon && matches!(self.round, Round::Idle) {
            self.monitor_soon = false;
            out.push(Action::Timer {
                at: now,
                timer: Timer::MonitorNow,
            });
        }
    }

    fn local_done(&mut self, now: Time, b: Batch, out: &mut Vec<Action>) {
        if let Some(e) = b.failure {
            log(
                out,
                Level::Error,
                format!("Monitoring the local node failed: {e}"),
            );
            return;
        }
        let mut recmode = RECOVERY_ACTIVE;
        let mut available = Vec::new();
        for a in b.replies {
            match a.reply {
                ControlReply::GetNodeMap(m) => self.nodemap = Some(m),
                // SET_RECMASTERROLE / SET_LMASTERROLE change these at run time.
                ControlReply::GetCapabilities(c) => self.s.capabilities = c,
                // As Samba's main loop: tunables set at run time take effect.
                ControlReply::GetAllTunables(t) => self.s.apply_tunables(&t),
                ControlReply::Empty if a.pnn == self.s.pnn => recmode = a.status as u32,
                ControlReply::GetPublicIps(l) => available = l.0,
                _ => {}
            }
        }
        if self.ban_misbehaving_nodes(out) {
            log(
                out,
                Level::Notice,
                "This node was banned, restart main_loop".into(),
            );
            return;
        }
        let s = self.standing();
        if s.node_flags & NODE_FLAGS_INACTIVE != 0 {
            self.election.demote(now);
            if recmode == RECOVERY_NORMAL {
                log(
                    out,
                    Level::Error,
                    "Node is stopped or banned but recovery mode is not active".into(),
                );
                self.fire(self.s.pnn, ControlRequest::SetRecmode(RECOVERY_ACTIVE), out);
            }
            return;
        }
        if recmode == RECOVERY_NORMAL {
            self.check_local_addresses(now, s.node_flags, &available, out);
        }
        if !self.election.is_leader() {
            return;
        }
        if !self.election.leads_with_lock() {
            // A leader without the lock (it was told it leads by a
            // broadcast, or lost the lock unnoticed) must not recover:
            // an election makes the lock decide again.
            log(out, Level::Error, "Failed cluster lock sanity check".into());
            self.force_election(now, out);
            return;
        }
        if self.need_recovery {
            log(
                out,
                Level::Notice,
                format!("Recovery needed: {}", monitor::Reason::Unfinished),
            );
            self.start_recovery(now, out);
            return;
        }
        let Some(map) = self.nodemap.clone() else {
            return;
        };
        let mut reqs = Vec::new();
        for p in monitor::connected_nodes(&map) {
            reqs.push(Request::new(p, ControlRequest::GetNodeMap));
        }
        for p in monitor::active_nodes(&map) {
            for r in [
                ControlRequest::GetRecmode,
                ControlRequest::GetVnnMap,
                ControlRequest::GetCapabilities,
            ] {
                reqs.push(Request::new(p, r));
            }
        }
        let batch = Batch::send(&mut self.tags, now, self.s.recover_timeout_ms, reqs, out);
        self.round = Round::Remote { batch, local: map };
    }

    /// Samba's local address check: a non-leader forgets takeover requests
    /// and rebalance targets; an address this healthy node could host but
    /// nobody holds asks the leader for a takeover run.
    fn check_local_addresses(
        &mut self,
        now: Time,
        flags: u32,
        available: &[PublicIp],
        out: &mut Vec<Action>,
    ) {
        if !self.election.is_leader() {
            self.takeover_waiters.clear();
            self.force_rebalance.clear();
        }
        if self.s.failover_disabled || self.takeover_runs_disabled(now) {
            return;
        }
        let mut trigger = false;
        for ip in available
            .iter()
            .filter(|ip| ip.pnn == Pnn::UNKNOWN && flags == 0)
        {
            let addr = ip
                .addr
                .to_socket_addr()
                .map_or("?".into(), |a| a.ip().to_string());
            log(
                out,
                Level::Warning,
                format!("Unassigned IP {addr} can be served by this node"),
            );
            trigger = true;
        }
        if trigger {
            log(out, Level::Notice, "Trigger takeoverrun".into());
            let m = SrvidMessage {
                pnn: self.s.pnn,
                srvid: Srvid(0),
            };
            out.push(Action::Message {
                to: Pnn::BROADCAST_CONNECTED,
                srvid: Srvid::TAKEOVER_RUN,
                data: m.to_bytes(),
            });
        }
    }

    fn remote_done(&mut self, now: Time, b: Batch, mut local: NodeMap, out: &mut Vec<Action>) {
        if let Some(e) = b.failure {
            log(out, Level::Error, format!("Monitoring failed: {e}"));
            self.blame(now, e.pnn(), 1);
            return;
        }
        let mut parts: BTreeMap<Pnn, PartialReport> = BTreeMap::new();
        for a in b.replies {
            let e = parts.entry(a.pnn).or_default();
            match a.reply {
                ControlReply::GetNodeMap(m) => e.nodemap = Some(m),
                ControlReply::GetVnnMap(v) => e.vnnmap = Some(v),
                ControlReply::GetCapabilities(c) => e.caps = Some(c),
                ControlReply::Empty => e.recmode = Some(a.status as u32),
                _ => {}
            }
        }
        let nodemaps: BTreeMap<Pnn, NodeMap> = parts
            .iter()
            .filter_map(|(p, r)| Some((*p, r.nodemap.clone()?)))
            .collect();
        let reports: BTreeMap<Pnn, NodeReport> = parts
            .into_iter()
            .filter_map(|(p, r)| {
                Some((
                    p,
                    NodeReport {
                        nodemap: r.nodemap?,
                        recmode: r.recmode?,
                        vnnmap: r.vnnmap?,
                        caps: r.caps?,
                    },
                ))
            })
            .collect();
        let me = self.s.pnn;
        for change in monitor::flag_updates(me, &local, &nodemaps) {
            log(
                out,
                Level::Notice,
                format!(
                    "Pushing updated flags for node {} ({:#x})",
                    change.pnn, change.new_flags
                ),
            );
            for p in monitor::connected_nodes(&local) {
                self.fire(p, ControlRequest::ModifyFlags(change), out);
            }
            // As Samba's update_flags: the checks below see the node's own
            // flags (a node just continued is active, and not yet in the
            // vnn map: a recovery adds it).
            if let Some(n) = local.0.iter_mut().find(|n| n.pnn == change.pnn) {
                n.flags = change.new_flags | (n.flags & NODE_FLAGS_DISCONNECTED);
            }
        }
        if let Some(reason) = monitor::verdict(me, &local, &reports) {
            log(out, Level::Error, format!("Recovery needed: {reason}"));
            if let Some(p) = reason.culprit(me) {
                self.blame(now, p, 1);
            }
            self.start_recovery(now, out);
            return;
        }
        let wanted = !self.takeover_waiters.is_empty() || self.need_takeover;
        if wanted && !self.takeover_runs_disabled(now) {
            self.start_takeover(now, out);
        }
    }

    fn start_recovery(&mut self, now: Time, out: &mut Vec<Action>) {
        self.need_recovery = true;
        if self.recoveries_disabled(now, out) {
            return;
        }
        if now < self.recovery_allowed_at {
            if self.recovery_wake != Some(self.recovery_allowed_at) {
                self.recovery_wake = Some(self.recovery_allowed_at);
                out.push(Action::Timer {
                    at: self.recovery_allowed_at,
                    timer: Timer::MonitorNow,
                });
            }
            return;
        }
        let run = RunSettings {
            leader: self.s.pnn,
            generation: self.next_generation(),
            timeout_ms: self.s.recover_timeout_ms,
            buffer_limit: self.s.buffer_limit,
            buffers_per_step: self.s.buffers_per_step,
        };
        self.round = Round::Recovery(Box::new(RecoveryRun::start(now, &mut self.tags, run, out)));
    }

    fn recovery_progress(&mut self, now: Time, p: Progress, out: &mut Vec<Action>) {
        match p {
            Progress::Running => {}
            Progress::Failed(e) => {
                self.round = Round::Idle;
                self.recovery_failed(now, e.culprit(), out);
            }
            Progress::Done(vnnmap) => {
                self.round = Round::Idle;
                self.need_recovery = false;
                // A completed recovery forgives every node.
                self.culprits.reset();
                self.recovery_failures.reset();
                self.recoveries += 1;
                log(
                    out,
                    Level::Info,
                    format!("Installed vnnmap {:?}", vnnmap.map),
                );
                self.recovery_allowed_at = now.after_ms(self.s.rerecovery_timeout_ms);
                self.start_takeover(now, out);
                out.push(Action::Message {
                    to: Pnn::BROADCAST_CONNECTED,
                    srvid: Srvid::RECONFIGURE,
                    data: Vec::new(),
                });
            }
        }
    }

    /// Gives `count` banning credits to `pnn` (only an active node blames).
    fn blame(&mut self, now: Time, pnn: Pnn, count: u32) {
        if self.standing().node_flags & NODE_FLAGS_INACTIVE != 0 {
            return;
        }
        let grace = self.s.grace_period_ms;
        self.culprits.blame(now, pnn, count, grace);
    }

    /// A recovery run failed because of `culprit`: after RECOVERY_FAILURES
    /// such runs in a row that node is banned.
    fn recovery_failed(&mut self, now: Time, culprit: Option<Pnn>, out: &mut Vec<Action>) {
        let Some(p) = culprit else {
            return;
        };
        self.blame(now, p, 1);
        self.recovery_failures.blame(now, p, 1, u64::MAX);
        for (pnn, _) in self.recovery_failures.take_due(RECOVERY_FAILURES) {
            self.ban(pnn, out);
        }
    }

    /// Bans every node with 2 credits per node in the cluster or more, as
    /// Samba's main loop does; true when this node banned itself.
    fn ban_misbehaving_nodes(&mut self, out: &mut Vec<Action>) -> bool {
        let nodes = self.nodemap.as_ref().map_or(1, |m| m.0.len()) as u32;
        let mut self_ban = false;
        for (pnn, count) in self.culprits.take_due(2 * nodes) {
            log(
                out,
                Level::Notice,
                format!("Node {pnn} reached {count} banning credits"),
            );
            self.ban(pnn, out);
            self_ban |= pnn == self.s.pnn;
        }
        self_ban
    }

    /// SET_BAN_STATE for RecoveryBanPeriod to node `pnn`.
    fn ban(&mut self, pnn: Pnn, out: &mut Vec<Action>) {
        let time = self.s.ban_period_s;
        log(
            out,
            Level::Notice,
            format!("Banning node {pnn} for {time} seconds"),
        );
        self.fire(
            pnn,
            ControlRequest::SetBanState(BanState { pnn, time }),
            out,
        );
    }

    fn start_takeover(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.takeover_runs_disabled(now) {
            log(
                out,
                Level::Notice,
                "Not running takeover run - disabled".into(),
            );
            self.need_takeover = true;
            return;
        }
        let targets = match &self.nodemap {
            Some(m) => monitor::connected_nodes(m),
            None => vec![self.s.pnn],
        };
        self.tell_takeover_runs_disabled(&targets, TAKEOVER_RUN_DISABLE_S, out);
        let settings = TakeoverSettings {
            leader: self.s.pnn,
            failover_disabled: self.s.failover_disabled,
            force_rebalance: self.force_rebalance.clone(),
        };
        self.run_waiters = std::mem::take(&mut self.takeover_waiters);
        let run = TakeoverRun::start(now, &mut self.tags, settings, out);
        self.round = Round::Takeover(Box::new(run));
    }

    /// DISABLE_TAKEOVER_RUNS (no reply wanted) to `targets`: the other
    /// nodes skip their address checks while a run moves addresses.
    fn tell_takeover_runs_disabled(
        &mut self,
        targets: &[Pnn],
        timeout: u32,
        out: &mut Vec<Action>,
    ) {
        let m = DisableMessage {
            pnn: Pnn::UNKNOWN,
            srvid: Srvid(0),
            timeout,
        };
        for &to in targets {
            out.push(Action::Message {
                to,
                srvid: Srvid::DISABLE_TAKEOVER_RUNS,
                data: m.to_bytes(),
            });
        }
    }

    fn takeover_done(&mut self, now: Time, end: TakeoverEnd, out: &mut Vec<Action>) {
        let targets = match &self.nodemap {
            Some(m) => monitor::connected_nodes(m),
            None => vec![self.s.pnn],
        };
        self.tell_takeover_runs_disabled(&targets, 0, out);
        let answer = match end {
            TakeoverEnd::Done => {
                log(
                    out,
                    Level::Notice,
                    "Takeover run completed successfully".into(),
                );
                self.need_takeover = false;
                self.force_rebalance.clear();
                self.s.pnn.0 as i32
            }
            TakeoverEnd::Failed { why, culprit } => {
                log(out, Level::Error, format!("takeover run failed: {why}"));
                log(out, Level::Notice, "Takeover run unsuccessful".into());
                self.need_takeover = true;
                if let Some(p) = culprit {
                    log(
                        out,
                        Level::Warning,
                        format!("Assigning banning credits to node {p}"),
                    );
                    let nodes = self.nodemap.as_ref().map_or(1, |m| m.0.len()) as u32;
                    self.blame(now, p, nodes);
                }
                -1
            }
        };
        for w in std::mem::take(&mut self.run_waiters) {
            if w.srvid.0 != 0 {
                out.push(Action::Message {
                    to: w.pnn,
                    srvid: w.srvid,
                    data: answer.to_bytes(),
                });
            }
        }
        if self.monitor_soon {
            self.monitor_soon = false;
            out.push(Action::Timer {
                at: now,
                timer: Timer::MonitorNow,
            });
        }
    }
}

/// One DISABLE_RECOVERIES / DISABLE_TAKEOVER_RUNS request against the
/// deadline `until` of `what`: timeout 0 clears it ("Reenabling ...",
/// logged always or only when it was set), `busy` (a round of that kind
/// under way) refuses with -EAGAIN, else the deadline moves.  Returns the
/// answer: `pnn` on success.
#[allow(clippy::too_many_arguments)]
fn disable_for(
    until: &mut Option<Time>,
    busy: bool,
    what: &str,
    always_log_reenable: bool,
    now: Time,
    m: &DisableMessage,
    pnn: Pnn,
    out: &mut Vec<Action>,
) -> i32 {
    if m.timeout == 0 {
        if until.take().is_some() || always_log_reenable {
            log(out, Level::Notice, format!("Reenabling {what}"));
        }
        pnn.0 as i32
    } else if busy {
        log(
            out,
            Level::Error,
            format!("Unable to disable {what} - in progress"),
        );
        -libc::EAGAIN
    } else {
        log(
            out,
            Level::Notice,
            format!("Disabling {what} for {} seconds", m.timeout),
        );
        *until = Some(now.after_ms(u64::from(m.timeout) * 1000));
        pnn.0 as i32
    }
}

/// Sends a disable request's answer to its srvid (none for srvid 0).
fn answer_disable(m: &DisableMessage, answer: i32, out: &mut Vec<Action>) {
    if m.srvid.0 != 0 {
        out.push(Action::Message {
            to: m.pnn,
            srvid: m.srvid,
            data: answer.to_bytes(),
        });
    }
}

#[cfg(test)]
mod disable_tests {
    use super::*;

    fn logs(out: &[Action]) -> Vec<String> {
        out.iter()
            .filter_map(|a| match a {
                Action::Log(_, t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn msg(timeout: u32, srvid: u64) -> DisableMessage {
        DisableMessage {
            pnn: Pnn(2),
            srvid: Srvid(srvid),
            timeout,
        }
    }

    #[test]
    fn disable_sets_refuses_while_busy_and_reenables() {
        let mut until = None;
        let mut out = Vec::new();
        let me = Pnn(1);
        let m = msg(30, 0);
        assert_eq!(
            disable_for(&mut until, true, "x", false, Time(0), &m, me, &mut out),
            -libc::EAGAIN
        );
        assert_eq!(until, None);
        assert_eq!(
            disable_for(&mut until, false, "x", false, Time(5), &m, me, &mut out),
            1
        );
        assert_eq!(until, Some(Time(30_005)));
        let off = msg(0, 0);
        assert_eq!(
            disable_for(&mut until, false, "x", false, Time(6), &off, me, &mut out),
            1
        );
        assert_eq!(until, None);
        // Reenabling what was not disabled is logged only when asked.
        disable_for(&mut until, false, "x", false, Time(7), &off, me, &mut out);
        disable_for(&mut until, false, "y", true, Time(8), &off, me, &mut out);
        assert_eq!(
            logs(&out),
            [
                "Unable to disable x - in progress",
                "Disabling x for 30 seconds",
                "Reenabling x",
                "Reenabling y"
            ]
        );
    }

    #[test]
    fn the_answer_goes_to_its_srvid_unless_zero() {
        let mut out = Vec::new();
        answer_disable(&msg(1, 0), 7, &mut out);
        assert!(out.is_empty());
        answer_disable(&msg(1, 0xAB), -11, &mut out);
        assert!(matches!(
            &out[..],
            [Action::Message { to: Pnn(2), srvid: Srvid(0xAB), data }] if *data == (-11i32).to_bytes()
        ));
    }
}
