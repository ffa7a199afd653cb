//! Leader election and the cluster lock, after Samba's recovery daemon.
//!
//! Without a cluster lock, a node that stops hearing the leader's broadcast
//! forces an election: it broadcasts an unknown leader and its election
//! data; every node that would win by Samba's rules (see [`Election::wins`])
//! answers with its own data, the others take the sender as leader; the
//! period ends ElectionTimeout after the last election message. With a
//! cluster lock there are no election messages: the unknown-leader
//! broadcast makes every node that may lead try the lock, and the one that
//! holds it is the leader. A node that cannot take the lock, or loses it,
//! does not lead.

use super::{log, Action, Level, LockOutcome, Time, Timer};
use ctdb_protocol::messages::ElectionMessage;
use ctdb_protocol::types::NODE_FLAGS_INACTIVE;
use ctdb_protocol::wire::Timeval;
use ctdb_protocol::{Layout, Pnn, Srvid};

/// How long a node that would win waits before answering an election.
const RESEND_DELAY_MS: u64 = 500;

/// What this node is, as the election needs it (from its own nodemap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// Nodes this node is connected to (itself included).
    pub num_connected: u32,
    /// This node's flags.
    pub node_flags: u32,
    /// Whether this node may lead (leader capability, not inactive).
    pub can_lead: bool,
}

/// The state of this node's hold on the cluster lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Not held, no attempt running.
    Free,
    /// An attempt is running.
    Taking,
    /// Held.
    Held,
}

/// One node's view of the election and the cluster lock.
#[derive(Debug)]
pub struct Election {
    pnn: Pnn,
    lock_enabled: bool,
    priority_time: Timeval,
    start_wall: Timeval,
    election_timeout_ms: u64,
    leader_timeout_ms: u64,
    leader: Pnn,
    in_progress: bool,
    epoch: u32,
    resend_epoch: u32,
    resend_pending: bool,
    lock: LockState,
    timeout_epoch: u32,
    timeout_active: bool,
}

fn wall(start: Timeval, now: Time) -> Timeval {
    let usec = start.usec + (now.0 % 1000) as i64 * 1000;
    Timeval {
        sec: start.sec + (now.0 / 1000) as i64 + usec / 1_000_000,
        usec: usec % 1_000_000,
    }
}

impl Election {
    /// A node that knows no leader. `start_wall` is the wall clock at
    /// `Time(0)` and the node's priority time (earlier wins).
    pub fn new(
        pnn: Pnn,
        lock_enabled: bool,
        start_wall: Timeval,
        election_timeout_ms: u64,
        leader_timeout_ms: u64,
    ) -> Election {
        Election {
            pnn,
            lock_enabled,
            priority_time: start_wall,
            start_wall,
            election_timeout_ms,
            leader_timeout_ms,
            leader: Pnn::UNKNOWN,
            in_progress: false,
            epoch: 0,
            resend_epoch: 0,
            resend_pending: false,
            lock: LockState::Free,
            timeout_epoch: 0,
            timeout_active: false,
        }
    }

    /// The leader this node believes in (`Pnn::UNKNOWN` if none).
    pub fn leader(&self) -> Pnn {
        self.leader
    }

    /// True when this node believes it leads.
    pub fn is_leader(&self) -> bool {
        self.leader == self.pnn
    }

    /// True while an election runs.
    pub fn in_progress(&self) -> bool {
        self.in_progress
    }

    /// True when this node may act as leader: it leads and, with a cluster
    /// lock, holds it.
    pub fn leads_with_lock(&self) -> bool {
        self.is_leader() && (!self.lock_enabled || self.lock == LockState::Held)
    }

    /// This node became inactive: it should win elections less easily
    /// later (its priority time becomes now).
    pub fn demote(&mut self, now: Time) {
        self.priority_time = wall(self.start_wall, now);
    }

    /// This node's election data.
    pub fn data(&self, now: Time, s: &Standing) -> ElectionMessage {
        if !s.can_lead {
            return ElectionMessage {
                num_connected: 0,
                priority_time: wall(self.start_wall, now),
                pnn: self.pnn,
                node_flags: s.node_flags,
            };
        }
        ElectionMessage {
            num_connected: s.num_connected,
            priority_time: self.priority_time,
            pnn: self.pnn,
            node_flags: s.node_flags,
        }
    }

    /// True when this node beats the candidate `em` (Samba's rules: a node
    /// that may not lead never wins; an inactive candidate always loses;
    /// then the earlier priority time wins; then the higher pnn).
    pub fn wins(&self, now: Time, s: &Standing, em: &ElectionMessage) -> bool {
        if !s.can_lead {
            return false;
        }
        if em.node_flags & NODE_FLAGS_INACTIVE != 0 {
            return true;
        }
        let mine = self.data(now, s);
        match em.priority_time.cmp(&mine.priority_time) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => mine.pnn > em.pnn,
        }
    }

    fn send_request(&mut self, now: Time, s: &Standing, out: &mut Vec<Action>) {
        self.leader = self.pnn;
        out.push(Action::Message {
            to: Pnn::BROADCAST_ALL,
            srvid: Srvid::ELECTION,
            data: self.data(now, s).to_bytes(),
        });
    }

    fn arm_election_end(&mut self, now: Time, out: &mut Vec<Action>) {
        self.epoch = self.epoch.wrapping_add(1);
        out.push(Action::Timer {
            at: now.after_ms(self.election_timeout_ms),
            timer: Timer::ElectionEnd(self.epoch),
        });
    }

    fn release(&mut self, out: &mut Vec<Action>) {
        if self.lock != LockState::Free {
            log(out, Level::Notice, "Releasing cluster lock".into());
            out.push(Action::ReleaseLock);
            self.lock = LockState::Free;
        }
    }

    /// Starts an election (the caller has set recovery mode active on the
    /// nodes it sees): announce an unknown leader, then try the lock or
    /// send this node's election data.
    pub fn force(&mut self, now: Time, s: &Standing, out: &mut Vec<Action>) {
        log(out, Level::Error, "Start election".into());
        self.in_progress = true;
        self.cancel_leader_timeout();
        out.push(Action::Message {
            to: Pnn::BROADCAST_CONNECTED,
            srvid: Srvid::LEADER,
            data: Pnn::UNKNOWN.to_bytes(),
        });
        if self.lock_enabled {
            self.lock_election(s, out);
            return;
        }
        self.arm_election_end(now, out);
        self.send_request(now, s, out);
    }

    /// The cluster lock election: hold the lock to lead.
    fn lock_election(&mut self, s: &Standing, out: &mut Vec<Action>) {
        if !s.can_lead {
            self.release(out);
            self.in_progress = false;
            return;
        }
        match self.lock {
            LockState::Held => self.in_progress = false,
            LockState::Taking => {}
            LockState::Free => {
                self.leader = Pnn::UNKNOWN;
                self.lock = LockState::Taking;
                log(out, Level::Notice, "Attempting to take cluster lock".into());
                out.push(Action::TakeLock);
            }
        }
    }

    /// Another node's election data arrived.
    pub fn on_election(
        &mut self,
        now: Time,
        s: &Standing,
        em: &ElectionMessage,
        out: &mut Vec<Action>,
    ) {
        if em.pnn == self.pnn {
            return;
        }
        self.in_progress = true;
        self.arm_election_end(now, out);
        if self.wins(now, s, em) {
            if !self.resend_pending {
                self.resend_pending = true;
                self.resend_epoch = self.resend_epoch.wrapping_add(1);
                out.push(Action::Timer {
                    at: now.after_ms(RESEND_DELAY_MS),
                    timer: Timer::ElectionResend(self.resend_epoch),
                });
            }
            return;
        }
        self.resend_pending = false;
        self.release(out);
        self.leader = em.pnn;
    }

    /// A leader broadcast arrived (`Pnn::UNKNOWN`: an election started).
    pub fn on_leader(&mut self, now: Time, s: &Standing, pnn: Pnn, out: &mut Vec<Action>) {
        self.cancel_leader_timeout();
        if pnn == Pnn::UNKNOWN {
            let was = self.in_progress;
            self.in_progress = true;
            if self.lock_enabled && !was {
                self.lock_election(s, out);
            }
            return;
        }
        if pnn != self.leader {
            log(
                out,
                Level::Notice,
                format!("Received leader broadcast, leader={pnn}"),
            );
            self.leader = pnn;
        }
        self.start_leader_timeout(now, out);
    }

    fn cancel_leader_timeout(&mut self) {
        self.timeout_active = false;
        self.timeout_epoch = self.timeout_epoch.wrapping_add(1);
    }

    fn start_leader_timeout(&mut self, now: Time, out: &mut Vec<Action>) {
        self.arm_leader_timeout(now, self.leader_timeout_ms, out);
    }

    /// Arms the leader broadcast timeout `ms` from now.
    pub fn arm_leader_timeout(&mut self, now: Time, ms: u64, out: &mut Vec<Action>) {
        self.cancel_leader_timeout();
        self.timeout_active = true;
        out.push(Action::Timer {
            at: now.after_ms(ms),
            timer: Timer::LeaderTimeout(self.timeout_epoch),
        });
    }

    /// The main loop's tick: outside an election, the leader timeout runs.
    pub fn main_loop_tick(&mut self, now: Time, out: &mut Vec<Action>) {
        if !self.in_progress && !self.timeout_active {
            self.start_leader_timeout(now, out);
        }
    }

    /// The leader broadcast tick (every second): a node that may not lead
    /// gives up leadership and the lock; the leader announces itself.
    pub fn broadcast_tick(&mut self, s: &Standing, out: &mut Vec<Action>) {
        if !s.can_lead {
            if self.is_leader() {
                self.leader = Pnn::UNKNOWN;
            }
            self.release(out);
            return;
        }
        if self.is_leader() && !self.in_progress {
            out.push(Action::Message {
                to: Pnn::BROADCAST_CONNECTED,
                srvid: Srvid::LEADER,
                data: self.pnn.to_bytes(),
            });
        }
    }

    /// An election timer fired. Returns true when the leader timeout
    /// expired and an election should be forced.
    pub fn on_timer(&mut self, now: Time, s: &Standing, t: Timer, out: &mut Vec<Action>) -> bool {
        match t {
            Timer::LeaderTimeout(e) if e == self.timeout_epoch && self.timeout_active => {
                self.timeout_active = false;
                log(out, Level::Notice, "Leader broadcast timeout".into());
                true
            }
            Timer::ElectionEnd(e) if e == self.epoch && self.in_progress => {
                self.in_progress = false;
                log(
                    out,
                    Level::Warning,
                    format!("Election period ended, leader={}", self.leader),
                );
                if self.is_leader() && self.lock_enabled && self.lock == LockState::Free {
                    self.lock = LockState::Taking;
                    out.push(Action::TakeLock);
                }
                false
            }
            Timer::ElectionResend(e) if e == self.resend_epoch && self.resend_pending => {
                self.resend_pending = false;
                self.send_request(now, s, out);
                false
            }
            _ => false,
        }
    }

    /// The cluster lock attempt answered.
    pub fn on_lock(&mut self, outcome: LockOutcome, out: &mut Vec<Action>) {
        if self.lock != LockState::Taking {
            if outcome == LockOutcome::Held {
                out.push(Action::ReleaseLock);
            }
            return;
        }
        if outcome == LockOutcome::Held {
            self.lock = LockState::Held;
            self.leader = self.pnn;
            self.in_progress = false;
            log(
                out,
                Level::Warning,
                format!("Took cluster lock, leader={}", self.pnn),
            );
            return;
        }
        self.lock = LockState::Free;
        log(
            out,
            Level::Error,
            format!("Unable to take cluster lock: {outcome:?}"),
        );
        if self.is_leader() {
            self.leader = Pnn::UNKNOWN;
        }
        self.in_progress = false;
    }

    /// The held lock was lost. Returns true when an election should be
    /// forced (this node may lead).
    pub fn on_lock_lost(&mut self, s: &Standing, out: &mut Vec<Action>) -> bool {
        if self.lock == LockState::Free {
            return false;
        }
        log(out, Level::Error, "Cluster lock helper terminated".into());
        self.lock = LockState::Free;
        if self.is_leader() {
            self.leader = Pnn::UNKNOWN;
        }
        s.can_lead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Standing = Standing {
        num_connected: 3,
        node_flags: 0,
        can_lead: true,
    };

    fn tv(sec: i64) -> Timeval {
        Timeval { sec, usec: 0 }
    }

    fn em(pnn: u32, sec: i64, flags: u32) -> ElectionMessage {
        ElectionMessage {
            num_connected: 3,
            priority_time: tv(sec),
            pnn: Pnn(pnn),
            node_flags: flags,
        }
    }

    #[test]
    fn win_rules() {
        let e = Election::new(Pnn(1), false, tv(100), 3000, 5000);
        assert!(e.wins(Time(0), &S, &em(2, 200, 0)), "older node wins");
        assert!(!e.wins(Time(0), &S, &em(2, 50, 0)), "younger node loses");
        assert!(
            e.wins(Time(0), &S, &em(0, 100, 0)),
            "same time: higher pnn wins"
        );
        assert!(!e.wins(Time(0), &S, &em(2, 100, 0)));
        assert!(
            e.wins(Time(0), &S, &em(2, 50, NODE_FLAGS_INACTIVE)),
            "inactive loses"
        );
        let weak = Standing {
            can_lead: false,
            ..S
        };
        assert!(!e.wins(Time(0), &weak, &em(2, 200, NODE_FLAGS_INACTIVE)));
        assert_eq!(e.data(Time(5000), &weak).num_connected, 0);
    }

    #[test]
    fn election_without_lock_ends_with_the_winner() {
        let mut e = Election::new(Pnn(1), false, tv(100), 3000, 5000);
        let mut out = Vec::new();
        e.force(Time(0), &S, &mut out);
        assert!(e.in_progress() && e.is_leader());
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Message { srvid, .. } if *srvid == Srvid::ELECTION)));
        // A stronger candidate (older) arrives: it becomes leader.
        out.clear();
        e.on_election(Time(10), &S, &em(2, 50, 0), &mut out);
        assert_eq!(e.leader(), Pnn(2));
        // The period ends 3 s after the last message.
        assert!(!e.on_timer(Time(3010), &S, Timer::ElectionEnd(2), &mut out));
        assert!(!e.in_progress());
        assert_eq!(e.leader(), Pnn(2));
    }

    #[test]
    fn a_weaker_candidate_makes_this_node_answer() {
        let mut e = Election::new(Pnn(1), false, tv(100), 3000, 5000);
        let mut out = Vec::new();
        e.on_election(Time(0), &S, &em(2, 300, 0), &mut out);
        assert!(out.contains(&Action::Timer {
            at: Time(500),
            timer: Timer::ElectionResend(1)
        }));
        out.clear();
        e.on_timer(Time(500), &S, Timer::ElectionResend(1), &mut out);
        assert!(e.is_leader());
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Message { srvid, .. } if *srvid == Srvid::ELECTION)));
    }

    #[test]
    fn with_a_lock_the_holder_leads_and_losing_it_stops_leading() {
        let mut e = Election::new(Pnn(0), true, tv(100), 3000, 5000);
        let mut out = Vec::new();
        e.force(Time(0), &S, &mut out);
        assert!(out.contains(&Action::TakeLock));
        assert!(!e.is_leader());
        e.on_lock(LockOutcome::Held, &mut out);
        assert!(e.leads_with_lock() && !e.in_progress());
        assert!(e.on_lock_lost(&S, &mut out));
        assert!(!e.is_leader());

        let mut other = Election::new(Pnn(1), true, tv(100), 3000, 5000);
        let mut out = Vec::new();
        other.on_leader(Time(0), &S, Pnn::UNKNOWN, &mut out);
        assert!(out.contains(&Action::TakeLock));
        other.on_lock(LockOutcome::Contended, &mut out);
        assert_eq!(other.leader(), Pnn::UNKNOWN);
        assert!(!other.in_progress());
        other.on_leader(Time(10), &S, Pnn(0), &mut out);
        assert_eq!(other.leader(), Pnn(0));
    }

    #[test]
    fn leader_timeout_asks_for_an_election() {
        let mut e = Election::new(Pnn(1), false, tv(100), 3000, 5000);
        let mut out = Vec::new();
        e.main_loop_tick(Time(0), &mut out);
        assert!(out.contains(&Action::Timer {
            at: Time(5000),
            timer: Timer::LeaderTimeout(1)
        }));
        e.on_leader(Time(1000), &S, Pnn(2), &mut out);
        assert!(
            !e.on_timer(Time(5000), &S, Timer::LeaderTimeout(1), &mut out),
            "stale"
        );
        assert!(e.on_timer(Time(6000), &S, Timer::LeaderTimeout(3), &mut out));
    }
}
