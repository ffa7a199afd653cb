//! The event loop: it polls, hands each event to its owner, fires due
//! timers and executes the actions the handlers queued.  It decides nothing
//! itself.

use crate::actions::Action;
use crate::daemon::{Daemon, WAKER};
use crate::log_warn;
use crate::signals::SIGNALS;
use crate::timers::TimerEvent;
use crate::transport::{ClientId, Origin, LISTENER, NODE_LISTENER};
use mio::Events;
use std::io::ErrorKind;
use std::time::Instant;

impl Daemon {
    /// Runs the daemon until a signal or the SHUTDOWN control stops it.
    pub fn run(&mut self) -> std::io::Result<()> {
        self.startup();
        self.execute_actions();
        let mut events = Events::with_capacity(256);
        while !self.exit_requested {
            let timeout = self
                .timers
                .next_deadline()
                .map(|t| t.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.transport.accept_clients(),
                    NODE_LISTENER => self.transport.refuse_nodes(),
                    WAKER => self.drain_db_replies(),
                    SIGNALS => self.exit_requested |= self.signals.stop_requested(),
                    t => {
                        let Some(id) = ClientId::from_token(t) else {
                            continue;
                        };
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.client_readable(id);
                        }
                        if ev.is_writable() {
                            self.transport.flush(id);
                        }
                    }
                }
                self.execute_actions();
            }
            self.fire_timers();
            self.reap_closed();
            // Writes may have drained a traverse's clients: let it go on.
            self.pump_traverses();
            self.pump_pulls();
            self.execute_actions();
        }
        Ok(())
    }

    /// Handles every timer that is due now.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(ev) = self.timers.pop_due(now) {
            match ev {
                TimerEvent::LeaderBroadcast => self.leader_timer(now),
                TimerEvent::Vacuum { db_id } => self.vacuum_timer(db_id, now),
                TimerEvent::RequestExpired(tag) => self.expire(tag),
            }
            self.execute_actions();
        }
    }

    /// Executes the queued actions, oldest first, until none is left (an
    /// action may queue more, e.g. when database work cannot be handed over
    /// and its waiter is answered at once).
    pub(crate) fn execute_actions(&mut self) {
        while !self.outbox.is_empty() {
            for a in self.outbox.take() {
                match a {
                    Action::Send { to, packet } => self.deliver(to, &packet),
                    Action::ArmTimer { at, event } => self.timers.arm(at, event),
                    Action::Database(job) => self.submit_job(job),
                }
            }
        }
    }

    fn deliver(&mut self, to: Origin, packet: &[u8]) {
        match to {
            Origin::Client(id) => {
                if self.transport.send(id, packet) {
                    self.stats.client_packets_sent += 1;
                }
            }
            Origin::Node(pnn) => {
                log_warn!(
                    "Dropping packet for node {} (node transport not implemented)",
                    pnn.0
                );
            }
        }
    }
}
