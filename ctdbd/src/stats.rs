//! Daemon and per-database statistics, and their wire layouts (the STATISTICS
//! and GET_DB_STATISTICS control replies).
//!
//! The layouts are the x86-64 C layouts of Samba's structures: u32 counters,
//! latency counters of {i32 num, 4 bytes padding, f64 min, f64 max, f64
//! total} (32 bytes), timevals of two i64 (16 bytes).  See docs/ctdbd.md.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const MAX_COUNT_BUCKETS: usize = 16;
pub const MAX_HOT_KEYS: usize = 10;
pub const NODE_REQ_MESSAGE: usize = 5;
pub const NODE_REQ_CONTROL: usize = 6;
pub const NODE_REPLY_CONTROL: usize = 7;
/// Index of the traverse counter in `Stats::timeouts` (call, control, traverse).
pub const TIMEOUT_TRAVERSE: usize = 2;
/// Size of the STATISTICS reply.
pub const STATISTICS_LEN: usize = 488;
/// Size of the fixed part of the GET_DB_STATISTICS reply (the hot-key key
/// bytes follow it).
pub const DB_STATISTICS_FIXED_LEN: usize = 464;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub num: i32,
    pub min: f64,
    pub max: f64,
    pub total: f64,
}

impl Latency {
    pub fn update(&mut self, secs: f64) {
        if secs > self.max {
            self.max = secs;
        }
        if self.num == 0 || secs < self.min {
            self.min = secs;
        }
        self.total += secs;
        self.num += 1;
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.num.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        out.extend_from_slice(&self.total.to_le_bytes());
    }
}

/// Lock counters, kept both per daemon and per database.
#[derive(Clone, Debug, Default)]
pub struct Locks {
    pub num_calls: u32,
    pub num_current: u32,
    pub num_pending: u32,
    pub num_failed: u32,
    pub latency: Latency,
    pub buckets: [u32; MAX_COUNT_BUCKETS],
}

impl Locks {
    /// A lock taken (or, with `ok` false, refused) after `waited`.
    pub fn record(&mut self, waited: Duration, ok: bool) {
        self.num_calls += 1;
        if ok {
            let t = waited.as_secs_f64();
            self.buckets[lock_bucket(t)] += 1;
            self.latency.update(t);
        } else {
            self.num_failed += 1;
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.num_calls,
            self.num_current,
            self.num_pending,
            self.num_failed,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        self.latency.encode(out);
        u32s(out, &self.buckets);
    }
}

/// The bucket of a lock wait: under 1 ms, 10 ms, 100 ms, 1 s, then doubling
/// up to 64 s, then the last one.
pub fn lock_bucket(secs: f64) -> usize {
    const LIMITS: [f64; 10] = [0.001, 0.01, 0.1, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    LIMITS.iter().position(|l| secs < *l).unwrap_or(10)
}

fn u32s(out: &mut Vec<u8>, v: &[u32]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn timeval(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&(d.as_secs() as i64).to_le_bytes());
    out.extend_from_slice(&(d.subsec_micros() as i64).to_le_bytes());
}

/// The daemon-wide counters.  Fields that a single node never changes (node
/// packets, keepalives, hop counts, reclock, childwrite) stay zero.
#[derive(Clone, Debug)]
pub struct Stats {
    pub client_packets_sent: u32,
    pub client_packets_recv: u32,
    /// Samba hands a client's control or message for its own node to the
    /// node-packet path (request and reply are "node packets" sent to
    /// itself); these count the same way.
    pub node_packets_sent: u32,
    /// node.req_call, reply_call, req_dmaster, reply_dmaster, reply_error,
    /// req_message, req_control, reply_control, req_tunnel.
    pub node: [u32; 9],
    /// client.req_call, req_message, req_control, req_tunnel.
    pub client_req: [u32; 4],
    pub timeouts: [u32; 3],
    pub locks: Locks,
    pub total_calls: u32,
    pub pending_calls: u32,
    /// Persistent-record writes (Samba runs UPDATE_RECORD for each node of a
    /// TRANS3_COMMIT in a child process; here the helper thread's store).
    pub childwrite_calls: u32,
    pub pending_childwrite_calls: u32,
    pub childwrite_latency: Latency,
    pub max_hop_count: u32,
    pub hop_count_bucket: [u32; MAX_COUNT_BUCKETS],
    pub call_latency: Latency,
    pub num_recoveries: u32,
    pub start_time: SystemTime,
    pub total_ro_delegations: u32,
    pub total_ro_revokes: u32,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            client_packets_sent: 0,
            client_packets_recv: 0,
            node_packets_sent: 0,
            node: [0; 9],
            client_req: [0; 4],
            timeouts: [0; 3],
            locks: Locks::default(),
            total_calls: 0,
            pending_calls: 0,
            childwrite_calls: 0,
            pending_childwrite_calls: 0,
            childwrite_latency: Latency::default(),
            max_hop_count: 0,
            hop_count_bucket: [0; MAX_COUNT_BUCKETS],
            call_latency: Latency::default(),
            num_recoveries: 0,
            start_time: SystemTime::now(),
            total_ro_delegations: 0,
            total_ro_revokes: 0,
        }
    }
}

/// Values computed when the STATISTICS control is answered.
pub struct Snapshot {
    pub num_clients: u32,
    pub frozen: bool,
    pub recovering: bool,
    pub memory_used: u32,
}

impl Stats {
    /// STATISTICS_RESET: every counter to zero, the start time to now.  The
    /// pending-calls gauge restarts from zero too, as in Samba.
    pub fn reset(&mut self) {
        *self = Stats::default();
    }

    pub fn call_done(&mut self, started: Instant) {
        self.pending_calls = self.pending_calls.saturating_sub(1);
        self.call_latency.update(started.elapsed().as_secs_f64());
    }

    pub fn encode(&self, s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATISTICS_LEN);
        u32s(
            &mut out,
            &[
                s.num_clients,
                s.frozen as u32,
                s.recovering as u32,
                self.client_packets_sent,
                self.client_packets_recv,
                self.node_packets_sent,
                0,
                0,
                0,
            ],
        );
        u32s(&mut out, &self.node);
        u32s(&mut out, &self.client_req);
        u32s(&mut out, &self.timeouts);
        out.extend_from_slice(&[0; 4]);
        // reclock.ctdbd, reclock.recd: no cluster lock.
        Latency::default().encode(&mut out);
        Latency::default().encode(&mut out);
        self.locks.encode(&mut out);
        // total_calls, pending_calls, childwrite_calls,
        // pending_childwrite_calls, memory_used, __last_counter, max_hop_count
        u32s(
            &mut out,
            &[
                self.total_calls,
                self.pending_calls,
                self.childwrite_calls,
                self.pending_childwrite_calls,
                s.memory_used,
                0,
                self.max_hop_count,
            ],
        );
        u32s(&mut out, &self.hop_count_bucket);
        out.extend_from_slice(&[0; 4]);
        self.call_latency.encode(&mut out);
        self.childwrite_latency.encode(&mut out);
        out.extend_from_slice(&self.num_recoveries.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        timeval(&mut out, self.start_time);
        timeval(&mut out, SystemTime::now());
        u32s(
            &mut out,
            &[self.total_ro_delegations, self.total_ro_revokes],
        );
        debug_assert_eq!(out.len(), STATISTICS_LEN);
        out
    }
}

/// Per-database counters.
#[derive(Clone, Debug, Default)]
pub struct DbStats {
    pub locks: Locks,
    pub vacuum_latency: Latency,
    pub ro_delegations: u32,
    pub ro_revokes: u32,
    pub hop_count_bucket: [u32; MAX_COUNT_BUCKETS],
    /// (count, key), most migrated last; only records migrated in from
    /// other nodes are counted, so a single node has none.
    pub hot_keys: Vec<(u32, Vec<u8>)>,
}

impl DbStats {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DB_STATISTICS_FIXED_LEN);
        self.locks.encode(&mut out);
        self.vacuum_latency.encode(&mut out);
        u32s(&mut out, &[self.ro_delegations, self.ro_revokes]);
        u32s(&mut out, &self.hop_count_bucket);
        // Samba always sends MAX_HOT_KEYS entries; unused ones have count 0
        // and an empty key.  (The tool prints that many entries.)
        out.extend_from_slice(&(MAX_HOT_KEYS as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut keys = Vec::new();
        for i in 0..MAX_HOT_KEYS {
            let (count, key) = self
                .hot_keys
                .get(i)
                .map(|(c, k)| (*c, k.as_slice()))
                .unwrap_or((0, &[]));
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            // A TDB_DATA as the sender's memory holds it: pointer, size.  The
            // receiver only uses the size.
            out.extend_from_slice(&(if key.is_empty() { 0u64 } else { 1u64 }).to_le_bytes());
            out.extend_from_slice(&(key.len() as u64).to_le_bytes());
            keys.extend_from_slice(key);
        }
        debug_assert_eq!(out.len(), DB_STATISTICS_FIXED_LEN);
        out.extend_from_slice(&keys);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_samba_sizes() {
        let s = Stats::default();
        let b = s.encode(&Snapshot {
            num_clients: 3,
            frozen: false,
            recovering: true,
            memory_used: 7,
        });
        assert_eq!(b.len(), STATISTICS_LEN);
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1);
        // memory_used sits after total/pending/childwrite/pending_childwrite.
        assert_eq!(u32::from_le_bytes(b[296..300].try_into().unwrap()), 7);
        let d = DbStats {
            hot_keys: vec![(4, b"ab".to_vec())],
            ..Default::default()
        };
        let e = d.encode();
        assert_eq!(e.len(), DB_STATISTICS_FIXED_LEN + 2);
        assert_eq!(
            u32::from_le_bytes(e[216..220].try_into().unwrap()),
            MAX_HOT_KEYS as u32
        );
        assert_eq!(u32::from_le_bytes(e[224..228].try_into().unwrap()), 4);
        assert_eq!(&e[DB_STATISTICS_FIXED_LEN..], b"ab");
    }

    #[test]
    fn lock_buckets() {
        assert_eq!(lock_bucket(0.0005), 0);
        assert_eq!(lock_bucket(0.005), 1);
        assert_eq!(lock_bucket(0.5), 3);
        assert_eq!(lock_bucket(3.0), 5);
        assert_eq!(lock_bucket(100.0), 10);
    }
}
