//! Vacuuming: the per-database vacuum timer, one run at a time on the
//! database side, and the DB_VACUUM and SCHEDULE_FOR_DELETION controls.
//! The run itself is `vacuum.rs`.

use super::{Outcome, Registry, Request};
use crate::daemon::reply_of;
use crate::daemon::{Daemon, DbContinuation, ReplyTo};
use crate::db::{Op, Reply};
use crate::ltdb::{self, Kind};
use crate::{log_err, log_info, log_warn};
use ctdb_protocol::types::{KeyData, RECOVERY_NORMAL};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, Layout};
use std::time::{Duration, Instant};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::DbVacuum, db_vacuum);
    r.add(ControlOpcode::ScheduleForDeletion, schedule_for_deletion);
    super::vacuum_nodes::register(r);
}

/// ctdb_db_vacuum: db_id u32, full_vacuum_run u8.
fn db_vacuum(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 5 {
        return Outcome::bad_size("DB_VACUUM", req.data().len());
    }
    // Any non-zero full_vacuum_run byte is true, as for a C bool.
    let mut r = Reader::new(req.data());
    let (Ok(id), Ok(full)) = (r.u32("db_id"), r.u8("full_vacuum_run")) else {
        return Outcome::status(-1);
    };
    let Some(db) = d.find_db(id) else {
        log_err!("Unknown db id 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if db.kind() != Kind::Volatile {
        // Samba has no vacuum handle for these and would not survive the
        // run's end; refuse instead.
        log_err!(
            "Vacuuming is disabled for non-volatile database {}",
            db.name
        );
        return Outcome::status(-1);
    }
    match d.start_vacuum(id, full != 0, false, Some(req.reply_to())) {
        Ok(()) => Outcome::Later,
        Err(VacuumRefused::Busy) => {
            log_warn!("Vacuuming collision");
            Outcome::status(-1)
        }
        Err(VacuumRefused::NotNow) => {
            log_err!("Temporary vacuuming failure");
            Outcome::status(-1)
        }
    }
}

/// ctdb_key_data: db_id u32, pad u32, ltdb header, keylen u32, key.  The
/// record goes on the database's delete queue; the next vacuum run deletes
/// it if it is still empty and unchanged.
fn schedule_for_deletion(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(kd) = KeyData::read(&mut Reader::new(req.data())) else {
        return Outcome::fail("bad schedule_for_deletion data");
    };
    let (id, header, key) = (kd.db_id.0, ltdb::Header::from(kd.header), kd.key);
    match d.find_db(id) {
        Some(db) if db.kind() == Kind::Volatile => {
            d.submit_untracked(id, Op::ScheduleForDeletion { key, header });
            Outcome::status(0)
        }
        _ => Outcome::status(-1),
    }
}

/// Why a vacuum run was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum VacuumRefused {
    /// Another run is under way.
    Busy,
    /// Not now: recovery, frozen, not volatile or not attached.
    NotNow,
}

impl Daemon {
    /// VacuumInterval as a timer length.  Samba would run back to back with
    /// 0; we wait at least a second.
    pub(crate) fn vacuum_interval(&self) -> u32 {
        self.state.tunables.vacuum_interval.max(1)
    }

    /// A vacuum timer fired; it counts only if the database's timer still
    /// says a run is due (a stale timer is ignored).
    pub(crate) fn vacuum_timer(&mut self, db_id: u32, now: Instant) {
        let due = self
            .dbs
            .iter()
            .any(|d| d.id == db_id && d.vacuum.next.is_some_and(|t| t <= now));
        if due {
            self.vacuum_event(db_id, now);
        }
    }

    /// The vacuum timer of a volatile database fired (Samba's
    /// ctdb_vacuum_event).
    fn vacuum_event(&mut self, id: u32, now: Instant) {
        let interval = self.vacuum_interval();
        let fast_max = self.state.tunables.vacuum_fast_path_count;
        let Some(d) = self.db_mut(id) else {
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
            self.arm_vacuum_timer(id);
            return;
        }
        v.interval = interval;
        let mut full = false;
        if v.fast_path_count >= fast_max {
            full = fast_max > 0;
            v.fast_path_count = 0;
        }
        v.next = None;
        if let Err(why) = self.start_vacuum(id, full, true, None) {
            let wait = match why {
                VacuumRefused::Busy => Duration::from_millis(500),
                VacuumRefused::NotNow => Duration::from_secs(interval as u64),
            };
            if let Some(d) = self.db_mut(id) {
                d.vacuum.next = Some(now + wait);
            }
            self.arm_vacuum_timer(id);
        }
    }

    /// Hands a vacuum run to the database side.
    fn start_vacuum(
        &mut self,
        id: u32,
        full: bool,
        scheduled: bool,
        control: Option<ReplyTo>,
    ) -> Result<(), VacuumRefused> {
        let Some(d) = self.find_db(id) else {
            return Err(VacuumRefused::NotNow);
        };
        if d.kind() != Kind::Volatile {
            return Err(VacuumRefused::NotNow);
        }
        if self.state.recmode != RECOVERY_NORMAL || d.frozen {
            log_info!(
                "Not vacuuming {} ({})",
                d.name,
                if d.frozen { "frozen" } else { "in recovery" }
            );
            return Err(VacuumRefused::NotNow);
        }
        if self.vacuuming.is_some() {
            return Err(VacuumRefused::Busy);
        }
        let tun = &self.state.tunables;
        let me = self.state.pnn;
        let routed = self.calls_routed();
        let op = Op::Vacuum {
            name: d.name.clone(),
            full,
            repack_limit: tun.repack_limit,
            max_run: Duration::from_secs(tun.vacuum_max_run_time as u64),
            vnn_map: if routed {
                self.state.vnn_map.clone()
            } else {
                Vec::new()
            },
            alone: !routed || self.active_nodes().iter().all(|p| p.0 == me),
        };
        log_info!(
            "Starting {} vacuum run for db {}",
            if full { "full" } else { "fast" },
            d.name
        );
        let started = Instant::now();
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            d.vacuum_done(id, started, scheduled, control, reply_of(done));
        });
        self.submit(id, op, then, None);
        // After the run's own work on the worker, so that (as in Samba,
        // whose run works on the queue as it was when it began) the records
        // migrated now are deleted by the next run.
        self.start_fetches(id);
        self.vacuuming = Some(id);
        Ok(())
    }

    /// A vacuum run ended (Samba's vacuum child destructor).
    fn vacuum_done(
        &mut self,
        db_id: u32,
        started: Instant,
        scheduled: bool,
        control: Option<ReplyTo>,
        reply: Reply,
    ) {
        self.vacuuming = None;
        let interval = self.vacuum_interval();
        let secs = started.elapsed().as_secs_f64();
        let timed_out = reply == Reply::TimedOut;
        let ok = match reply {
            Reply::Ok => true,
            Reply::Vacuumed(rest) => {
                self.vacuum_for_nodes(db_id, rest);
                true
            }
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
        if let Some(d) = self.db_mut(db_id) {
            d.stats.vacuum_latency.update(secs);
            log_info!("Vacuuming took {:.3} seconds for database {}", secs, d.name);
            // A run that ended by itself counts as a fast run, even with an
            // error; one stopped by VacuumMaxRunTime does not.
            if !timed_out {
                d.vacuum.fast_path_count += 1;
            }
            if scheduled {
                d.vacuum.arm(Instant::now(), interval);
                self.arm_vacuum_timer(db_id);
            }
        }
        if let Some(w) = control {
            self.answer_request(w, if ok { 0 } else { -1 }, &[], None);
        }
    }
}
