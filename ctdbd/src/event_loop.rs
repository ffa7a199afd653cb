//! The event loop: it polls, hands each event to its owner, fires due
//! timers and executes the actions the handlers queued.  It decides nothing
//! itself.

use crate::actions::Action;
use crate::daemon::{Daemon, WAKER};
use crate::eventscript::{EVENTD_SOCKET, EVENTD_WATCH};
use crate::node_link::{NodeLinks, NODE_LISTENER};
use crate::signals::SIGNALS;
use crate::timers::TimerEvent;
use crate::transport::{ClientId, Origin, LISTENER};
use mio::Events;
use std::io::ErrorKind;
use std::time::Instant;

impl Daemon {
    /// Runs the daemon until a signal or the SHUTDOWN control stops it.
    pub fn run(&mut self) -> std::io::Result<()> {
        self.startup();
        self.start_links(Instant::now());
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
                    NODE_LISTENER => self.links_accept(),
                    WAKER => self.drain_db_replies(),
                    SIGNALS => self.exit_requested |= self.signals.stop_requested(),
                    EVENTD_SOCKET => self.eventd_ready(),
                    EVENTD_WATCH => self.eventd_gone(),
                    t if NodeLinks::owns(t) => {
                        let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        self.link_ready(t, readable, ev.is_writable());
                    }
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
                TimerEvent::Vacuum { db_id } => self.vacuum_timer(db_id, now),
                TimerEvent::RequestExpired(tag) => self.expire(tag),
                TimerEvent::Link(t) => self.link_timer(t, now),
                TimerEvent::Keepalive => self.keepalive_timer(now),
                TimerEvent::ControlTimeout(reqid) => self.control_timer(reqid, now),
                TimerEvent::TickleUpdate => self.tickle_update_timer(now),
                TimerEvent::Startup => self.startup_timer(),
                TimerEvent::Monitor => self.monitor_timer(),
                TimerEvent::Announce(id) => self.announce_timer(id, now),
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
                    Action::Send { to, packet } => self.deliver(to, packet),
                    Action::ArmTimer { at, event } => self.timers.arm(at, event),
                    Action::Database(job) => self.submit_job(job),
                    Action::AnswerControl { reqid, reply } => self.answer_control(reqid, reply),
                }
            }
        }
    }

    fn deliver(&mut self, to: Origin, mut packet: Vec<u8>) {
        match to {
            Origin::Client(id) => {
                if self.transport.send(id, &packet) {
                    self.stats.client_packets_sent += 1;
                }
            }
            Origin::Node(pnn) if pnn.0 == self.state.pnn => {
                // Samba defers a packet to itself to the next loop turn;
                // here it goes through the dispatch after the actions
                // queued before it.
                self.stats.node_packets_sent += 1;
                if let Err(why) = self.packet(to, &packet) {
                    crate::log_err!("Malformed packet to this node: {}, dropped", why);
                }
            }
            Origin::Node(pnn) => {
                // The destination is the node it goes to (a broadcast is
                // sent as one packet per node, each with its pnn).
                if packet.len() >= 24 {
                    packet[20..24].copy_from_slice(&pnn.0.to_le_bytes());
                }
                self.send_to_node(pnn, &packet);
            }
        }
    }
}
