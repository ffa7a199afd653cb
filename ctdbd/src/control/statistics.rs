//! Statistics controls: STATISTICS, STATISTICS_RESET and
//! GET_DB_STATISTICS.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use ctdb_protocol::types::RECOVERY_ACTIVE;
use ctdb_protocol::ControlOpcode;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::Statistics, statistics);
    r.add(ControlOpcode::StatisticsReset, reset);
    r.add(ControlOpcode::GetDbStatistics, |d, req| {
        match d.db_from_data(req.data()) {
            Ok(db) => Outcome::value(&db.stats.report()),
            Err(_) => Outcome::status(-1),
        }
    });
}

fn statistics(d: &mut Daemon, _: &Request) -> Outcome {
    let snap = crate::stats::Snapshot {
        num_clients: d.transport.live().count() as u32,
        // Samba's flag is the whole-node freeze of a recovery, not
        // DB_FREEZE of single databases; no recovery here freezes the node.
        frozen: d.state.all_frozen,
        recovering: d.state.recmode == RECOVERY_ACTIVE,
        memory_used: d.memory_used(),
    };
    Outcome::value(&d.stats.report(&snap))
}

fn reset(d: &mut Daemon, _: &Request) -> Outcome {
    d.stats.reset();
    for db in &mut d.dbs {
        db.stats = Default::default();
    }
    Outcome::status(0)
}

impl Daemon {
    /// What STATISTICS reports as memory_used: the bytes the loop holds for
    /// clients (queued input and output) and the calls held back by freezes.
    fn memory_used(&self) -> u32 {
        let deferred: usize = self
            .dbs
            .iter()
            .flat_map(|d| d.deferred.iter())
            .map(|(_, p)| p.len())
            .sum();
        (self.transport.buffered_bytes() + deferred).min(u32::MAX as usize) as u32
    }
}
