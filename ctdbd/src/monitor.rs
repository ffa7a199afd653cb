//! The node's run states after the first recovery and its health, as
//! Samba's ctdb_monitor: the "startup" event once the first recovery is
//! over (retried until it succeeds), then RUNNING and a "monitor" event
//! every MonitorInterval.  A failing monitor makes the node UNHEALTHY, a
//! good one healthy again; either change is pushed to every node and the
//! leader is asked for a takeover run, so the node's addresses follow.
//!
//! Unlike Samba's node, ours does not wait RerecoveryTimeout + 3 seconds
//! after a recovery before its "startup" event, and runs its first monitor
//! as soon as "startup" succeeded: a node is serving seconds earlier, and
//! the order of events is the same.

use crate::daemon::Daemon;
use crate::eventscript::{Event, EventStatus};
use crate::timers::TimerEvent;
use crate::{log_err, log_notice};
use ctdb_protocol::messages::SrvidMessage;
use ctdb_protocol::types::{NodeFlagChange, RunState, NODE_FLAGS_INACTIVE, NODE_FLAGS_UNHEALTHY};
use ctdb_protocol::{ControlOpcode, Generation, Layout, Pnn, Srvid};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Seconds until the next monitor after a change of health.
const AFTER_CHANGE: u32 = 5;
/// Seconds between tries of "startup" while the node is not ready for it.
const STARTUP_WAIT: u64 = 1;
/// Seconds until "startup" is tried again after it failed.
const STARTUP_RETRY: u64 = 5;

/// The monitor's state.
#[derive(Debug, Default)]
pub struct Monitor {
    /// Seconds until the next monitor event (doubles up to MonitorInterval).
    next_interval: u32,
    /// Monitor events in a row that timed out.
    timeouts: u32,
    /// Monitoring was stopped (shutdown): no more events.
    stopped: bool,
}

impl Daemon {
    /// The first recovery is over (END_RECOVERY's "recovered" event ran):
    /// the node goes to STARTUP and its "startup" event is tried.
    pub(crate) fn first_recovery_done(&mut self) {
        self.set_runstate(RunState::Startup);
        self.arm_timer(Instant::now(), TimerEvent::Startup);
    }

    fn arm_in(&mut self, secs: u64, event: TimerEvent) {
        self.arm_timer(Instant::now() + Duration::from_secs(secs), event);
    }

    /// Runs "startup" once the node is out of recovery with a generation.
    pub(crate) fn startup_timer(&mut self) {
        if self.monitor.stopped || self.state.runstate != RunState::Startup {
            return;
        }
        if self.state.generation == Generation::INVALID || self.in_recovery() {
            self.arm_in(STARTUP_WAIT, TimerEvent::Startup);
            return;
        }
        log_notice!("Running the \"startup\" event.");
        let run = self.run_event(Event::Startup, "", Box::new(Daemon::startup_done));
        if let Err(e) = run {
            log_err!("{}", e);
            log_err!("Unable to launch startup event script");
            self.arm_in(STARTUP_RETRY, TimerEvent::Startup);
        }
    }

    fn startup_done(&mut self, status: EventStatus) {
        if !status.ok() {
            log_err!("startup event failed");
            self.arm_in(STARTUP_RETRY, TimerEvent::Startup);
            return;
        }
        log_notice!("startup event OK - enabling monitoring");
        self.set_runstate(RunState::Running);
        self.monitor.next_interval = 2;
        self.notify("startup");
        // The other nodes drop what they kept about this node's connections.
        self.tell_connected_nodes(ControlOpcode::Startup, Vec::new());
        self.arm_timer(Instant::now(), TimerEvent::Monitor);
    }

    /// Runs "monitor" unless the node is in recovery, inactive, not
    /// running or frozen; then (or when it could not start) waits.
    pub(crate) fn monitor_timer(&mut self) {
        if self.monitor.stopped {
            return;
        }
        let skip = self.in_recovery()
            || self.state.own_flags() & NODE_FLAGS_INACTIVE != 0
            || self.state.runstate != RunState::Running;
        if skip || self.state.all_frozen {
            if !skip {
                log_err!("Skip monitoring since databases are frozen");
            }
            let next = u64::from(self.monitor.next_interval);
            self.arm_in(next, TimerEvent::Monitor);
            return;
        }
        if let Err(e) = self.run_event(Event::Monitor, "", Box::new(Daemon::monitor_done)) {
            log_err!("{}", e);
            log_err!("Unable to launch monitor event script");
            self.monitor.next_interval = AFTER_CHANGE;
            self.arm_in(u64::from(AFTER_CHANGE), TimerEvent::Monitor);
        }
    }

    /// The health verdict of one monitor event, as Samba's: a cancelled run
    /// changes nothing, timeouts count only from MonitorTimeoutCount on.
    pub(crate) fn monitor_done(&mut self, status: EventStatus) {
        if self.monitor.stopped {
            return;
        }
        let old = self.state.own_flags();
        if status.cancelled() {
            log_err!("Monitoring event was cancelled");
        } else if status.timed_out() && !self.monitor_timeout_counts() {
            // A timeout below the limit counts as success.
        } else {
            if !status.timed_out() {
                self.monitor.timeouts = 0;
            }
            self.set_health(old, status.ok());
        }
        let next = self.monitor.next_interval;
        let cap = self.state.tunables.monitor_interval;
        self.monitor.next_interval = next.saturating_mul(2).min(cap).max(1);
        self.arm_in(u64::from(next), TimerEvent::Monitor);
        let new = self.state.own_flags();
        if new != old {
            self.announce_health(old, new);
        }
    }

    /// Counts a timed-out monitor; true once MonitorTimeoutCount is reached.
    fn monitor_timeout_counts(&mut self) -> bool {
        self.monitor.timeouts += 1;
        let limit = self.state.tunables.monitor_timeout_count;
        if self.monitor.timeouts >= limit {
            log_err!(
                "Maximum monitor timeout count {} reached. Making node unhealthy",
                limit
            );
            return true;
        }
        false
    }

    fn set_health(&mut self, flags: u32, healthy: bool) {
        let unhealthy = flags & NODE_FLAGS_UNHEALTHY != 0;
        if !healthy && !unhealthy {
            log_notice!("monitor event failed - disabling node");
            self.state.set_own_flags(flags | NODE_FLAGS_UNHEALTHY);
            self.monitor.next_interval = AFTER_CHANGE;
            self.notify("unhealthy");
        } else if healthy && unhealthy {
            log_notice!("monitor event OK - node re-enabled");
            self.state.set_own_flags(flags & !NODE_FLAGS_UNHEALTHY);
            self.monitor.next_interval = AFTER_CHANGE;
            self.notify("healthy");
        }
    }

    /// Tells every connected node the new flags (MODIFY_FLAGS, as Samba's
    /// recovery daemon pushes them for its node), then asks the leader for
    /// a takeover run, which sees them, so that the addresses follow.
    fn announce_health(&mut self, old: u32, new: u32) {
        let me = Pnn(self.state.pnn);
        let change = NodeFlagChange {
            pnn: me,
            new_flags: new,
            old_flags: old,
        };
        self.tell_connected_nodes(ControlOpcode::ModifyFlags, change.to_bytes());
        let state = if new & NODE_FLAGS_UNHEALTHY != 0 {
            "UNHEALTHY"
        } else {
            "HEALTHY"
        };
        log_err!(
            "Node became {}. Ask recovery master to reallocate IPs",
            state
        );
        let rd = SrvidMessage {
            pnn: me,
            srvid: Srvid(0),
        };
        for to in self.connected_nodes() {
            self.send_message_to(to, Srvid::TAKEOVER_RUN, rd.to_bytes());
        }
    }

    /// Runs `$CTDB_BASE/notify.sh EVENT` in the background (init, setup,
    /// startup, healthy, unhealthy), as Samba's daemon does; its exit status
    /// is logged when it fails.
    pub(crate) fn notify(&self, event: &'static str) {
        let script = self.state.paths.etcdir.join("notify.sh");
        let mode = match std::fs::metadata(&script) {
            Ok(m) => m.permissions().mode(),
            Err(_) => {
                log_err!(
                    "Could not stat notification script {}. Can not send notifications.",
                    script.display()
                );
                return;
            }
        };
        if mode & 0o100 == 0 {
            log_err!(
                "Notification script {} is not executable.",
                script.display()
            );
            return;
        }
        let spawned = std::process::Command::new(&script).arg(event).spawn();
        let Ok(mut child) = spawned else {
            log_err!("Failed to fork() a notification child process");
            return;
        };
        std::thread::spawn(move || match child.wait() {
            Ok(s) if !s.success() => {
                let code = s.code().unwrap_or(-1);
                log_err!(
                    "Notification script \"{} {}\" failed with error {}",
                    script.display(),
                    event,
                    code
                );
            }
            _ => {}
        });
    }

    /// Stops monitoring (shutdown).
    pub(crate) fn stop_monitoring(&mut self) {
        self.monitor.stopped = true;
        log_notice!("Monitoring has been stopped");
    }
}

#[cfg(test)]
mod tests {
    use crate::actions::Action;
    use crate::dispatch::tests::daemon;
    use crate::eventscript::EventStatus;
    use crate::timers::TimerEvent;
    use ctdb_protocol::packet::Packet;
    use ctdb_protocol::types::{RunState, NODE_FLAGS_UNHEALTHY, RECOVERY_ACTIVE};
    use ctdb_protocol::Srvid;

    const ETIMEDOUT: EventStatus = EventStatus(nix::libc::ETIMEDOUT);
    const ECANCELED: EventStatus = EventStatus(nix::libc::ECANCELED);
    const ENOEXEC: EventStatus = EventStatus(nix::libc::ENOEXEC);

    /// The srvids of the messages in `actions` (to this node, delivered at
    /// once, or to others).
    fn takeover_requests(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| match a {
                Action::Send { packet, .. } => matches!(
                    Packet::decode(packet),
                    Ok((_, Packet::ReqMessage(m))) if m.srvid == Srvid::TAKEOVER_RUN
                ),
                _ => false,
            })
            .count()
    }

    fn running(tag: &str) -> (crate::daemon::Daemon, std::path::PathBuf) {
        let (mut d, dir) = daemon(tag);
        d.state.runstate = RunState::Running;
        d.state.set_own_flags(NODE_FLAGS_UNHEALTHY);
        d.monitor.next_interval = 2;
        d.node_connected(ctdb_protocol::Pnn(1));
        d.outbox.take();
        (d, dir)
    }

    #[test]
    fn a_good_monitor_heals_a_failed_one_sickens_and_both_ask_for_takeover() {
        let (mut d, dir) = running("monitor-health");
        d.monitor_done(EventStatus(0));
        assert_eq!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        let healed = d.outbox.take();
        assert_eq!(takeover_requests(&healed), 1);
        assert!(healed.iter().any(|a| matches!(
            a,
            Action::ArmTimer {
                event: TimerEvent::Monitor,
                ..
            }
        )));
        // Healthy again: the next monitor in 5 s, then 10, capped.
        assert_eq!(d.monitor.next_interval, 10);
        d.monitor_done(EventStatus(0));
        d.monitor_done(EventStatus(0));
        assert_eq!(d.monitor.next_interval, d.state.tunables.monitor_interval);
        d.outbox.take();
        d.monitor_done(ENOEXEC);
        assert_ne!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        assert_eq!(takeover_requests(&d.outbox.take()), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cancelled_and_early_timeouts_change_nothing() {
        let (mut d, dir) = running("monitor-timeouts");
        d.monitor_done(EventStatus(0));
        d.outbox.take();
        d.monitor_done(ECANCELED);
        assert_eq!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        d.state.tunables.monitor_timeout_count = 3;
        d.monitor_done(ETIMEDOUT);
        d.monitor_done(ETIMEDOUT);
        assert_eq!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        assert_eq!(takeover_requests(&d.outbox.take()), 0);
        d.monitor_done(ETIMEDOUT);
        assert_ne!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_monitor_in_recovery_and_none_after_stop() {
        let (mut d, dir) = running("monitor-skip");
        d.state.recmode = RECOVERY_ACTIVE;
        d.monitor_timer();
        // Skipped: the flags stay, the timer is armed again.
        assert_ne!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        assert!(d.outbox.take().iter().any(|a| matches!(
            a,
            Action::ArmTimer {
                event: TimerEvent::Monitor,
                ..
            }
        )));
        d.stop_monitoring();
        d.monitor_timer();
        d.monitor_done(EventStatus(0));
        assert!(d.outbox.take().is_empty());
        assert_ne!(d.state.own_flags() & NODE_FLAGS_UNHEALTHY, 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
