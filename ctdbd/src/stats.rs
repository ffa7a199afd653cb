//! Daemon and per-database statistics: the counters are the protocol
//! crate's `Statistics` and `DbStatistics` (their layouts are the STATISTICS
//! and GET_DB_STATISTICS replies); this module keeps the rules by which the
//! daemon updates them.  See docs/ctdbd.md, "Statistics".

use ctdb_protocol::statistics::{
    DbStatistics, HotKey, LatencyCounter, LockStatistics, Statistics, MAX_COUNT_BUCKETS,
    MAX_HOT_KEYS,
};
use ctdb_protocol::wire::Timeval;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// Samba's lock accounting on the crate's lock counters.
pub trait LockRecord {
    /// A lock taken (or, with `ok` false, refused) after `waited`.
    fn record(&mut self, waited: Duration, ok: bool);
}

impl LockRecord for LockStatistics {
    fn record(&mut self, waited: Duration, ok: bool) {
        self.num_calls += 1;
        if ok {
            let t = waited.as_secs_f64();
            self.buckets[lock_bucket(t)] += 1;
            self.latency.update(t);
        } else {
            self.num_failed += 1;
        }
    }
}

/// The bucket of a lock wait: under 1 ms, 10 ms, 100 ms, 1 s, then doubling
/// up to 64 s, then the last one.
pub fn lock_bucket(secs: f64) -> usize {
    const LIMITS: [f64; 10] = [0.001, 0.01, 0.1, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    LIMITS.iter().position(|l| secs < *l).unwrap_or(10)
}

/// The daemon-wide counters.  Fields that a single node never changes (node
/// packets received, keepalives, hop counts, reclock) stay zero.  The
/// gauges sampled when STATISTICS is answered come from a `Snapshot`.
#[derive(Clone, Debug)]
pub struct Stats(Statistics);

impl Default for Stats {
    fn default() -> Self {
        Stats(Statistics {
            statistics_start_time: Timeval::now(),
            ..Default::default()
        })
    }
}

impl Deref for Stats {
    type Target = Statistics;
    fn deref(&self) -> &Statistics {
        &self.0
    }
}

impl DerefMut for Stats {
    fn deref_mut(&mut self) -> &mut Statistics {
        &mut self.0
    }
}

/// Values computed when the STATISTICS control is answered.
pub struct Snapshot {
    /// Connected clients.
    pub num_clients: u32,
    /// The whole node is frozen (a recovery).
    pub frozen: bool,
    /// Recovery mode is active.
    pub recovering: bool,
    /// Bytes held for clients and held-back calls.
    pub memory_used: u32,
}

impl Stats {
    /// STATISTICS_RESET: every counter to zero, the start time to now.  The
    /// pending-calls gauge restarts from zero too, as in Samba.
    pub fn reset(&mut self) {
        *self = Stats::default();
    }

    /// A record call finished.
    pub fn call_done(&mut self, started: Instant) {
        self.pending_calls = self.pending_calls.saturating_sub(1);
        self.call_latency.update(started.elapsed().as_secs_f64());
    }

    /// The counters as STATISTICS reports them now.
    pub fn report(&self, s: &Snapshot) -> Statistics {
        Statistics {
            num_clients: s.num_clients,
            frozen: s.frozen as u32,
            recovering: s.recovering as u32,
            memory_used: s.memory_used,
            statistics_current_time: Timeval::now(),
            ..self.0
        }
    }
}

/// Per-database counters.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    /// Whole-database locks (freezes).
    pub locks: LockStatistics,
    /// Every vacuum run.
    pub vacuum_latency: LatencyCounter,
    /// Read-only delegations granted.
    pub ro_delegations: u32,
    /// Read-only delegations revoked.
    pub ro_revokes: u32,
    /// Calls by how often they were forwarded.
    pub hop_count_bucket: [u32; MAX_COUNT_BUCKETS],
    /// (count, key), most migrated last; only records migrated in from
    /// other nodes are counted, so a single node has none.
    pub hot_keys: Vec<(u32, Vec<u8>)>,
}

impl DbStats {
    /// The counters as GET_DB_STATISTICS reports them.  Samba always sends
    /// MAX_HOT_KEYS entries (the tool prints that many); unused ones have
    /// count 0 and an empty key.  A key's pointer is the sender's memory
    /// address, which the receiver ignores: 1 for a key, 0 for none.
    pub fn report(&self) -> DbStatistics {
        let mut hot_keys: [HotKey; MAX_HOT_KEYS] = Default::default();
        for (slot, (count, key)) in hot_keys.iter_mut().zip(&self.hot_keys) {
            *slot = HotKey {
                count: *count,
                key_pointer: u64::from(!key.is_empty()),
                key: key.clone(),
            };
        }
        DbStatistics {
            locks: self.locks,
            vacuum_latency: self.vacuum_latency,
            db_ro_delegations: self.ro_delegations,
            db_ro_revokes: self.ro_revokes,
            hop_count_bucket: self.hop_count_bucket,
            num_hot_keys: MAX_HOT_KEYS as u32,
            hot_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::statistics::{DB_STATISTICS_FIXED_LEN, STATISTICS_LEN};
    use ctdb_protocol::Layout;

    #[test]
    fn reports_carry_the_snapshot_and_the_hot_keys() {
        let mut s = Stats::default();
        s.total_calls += 5;
        let b = s
            .report(&Snapshot {
                num_clients: 3,
                frozen: false,
                recovering: true,
                memory_used: 7,
            })
            .to_bytes();
        assert_eq!(b.len(), STATISTICS_LEN);
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1);
        // memory_used sits after total/pending/childwrite/pending_childwrite.
        assert_eq!(u32::from_le_bytes(b[280..284].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(b[296..300].try_into().unwrap()), 7);
        let d = DbStats {
            hot_keys: vec![(4, b"ab".to_vec())],
            ..Default::default()
        };
        let e = d.report().to_bytes();
        assert_eq!(e.len(), DB_STATISTICS_FIXED_LEN + 2);
        assert_eq!(
            u32::from_le_bytes(e[216..220].try_into().unwrap()),
            MAX_HOT_KEYS as u32
        );
        assert_eq!(u32::from_le_bytes(e[224..228].try_into().unwrap()), 4);
        assert_eq!(u64::from_le_bytes(e[232..240].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(e[256..264].try_into().unwrap()), 0);
        assert_eq!(&e[DB_STATISTICS_FIXED_LEN..], b"ab");
    }

    #[test]
    fn reset_restarts_the_clock_and_zeroes_counters() {
        let mut s = Stats::default();
        s.total_calls += 9;
        s.statistics_start_time.sec -= 100;
        let before = s.statistics_start_time.sec;
        s.reset();
        assert_eq!(s.total_calls, 0);
        assert!(s.statistics_start_time.sec > before);
    }

    #[test]
    fn lock_buckets() {
        assert_eq!(lock_bucket(0.0005), 0);
        assert_eq!(lock_bucket(0.005), 1);
        assert_eq!(lock_bucket(0.5), 3);
        assert_eq!(lock_bucket(3.0), 5);
        assert_eq!(lock_bucket(100.0), 10);
        let mut l = LockStatistics::default();
        l.record(Duration::from_millis(5), true);
        l.record(Duration::ZERO, false);
        assert_eq!((l.num_calls, l.num_failed, l.buckets[1]), (2, 1, 1));
    }
}
