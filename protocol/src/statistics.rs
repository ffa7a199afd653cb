//! The statistics layouts: `ctdb_statistics` (STATISTICS, 488 bytes),
//! `ctdb_db_statistics` (GET_DB_STATISTICS) and `ctdb_statistics_list`
//! (GET_STAT_HISTORY).  Latency counters are {i32 num, 4 bytes padding,
//! f64 min, f64 max, f64 total} (32 bytes).

use crate::error::DecodeError;
use crate::wire::{Layout, Reader, Timeval, Writer};

/// Buckets of the lock-wait and hop-count histograms.
pub const MAX_COUNT_BUCKETS: usize = 16;
/// Hot keys a database reports.
pub const MAX_HOT_KEYS: usize = 10;
/// Size of `ctdb_statistics`.
pub const STATISTICS_LEN: usize = 488;
/// Size of the fixed part of `ctdb_db_statistics` (the hot keys' bytes
/// follow it).
pub const DB_STATISTICS_FIXED_LEN: usize = 464;

/// `ctdb_latency_counter`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyCounter {
    /// Samples taken.
    pub num: i32,
    /// Shortest, in seconds.
    pub min: f64,
    /// Longest, in seconds.
    pub max: f64,
    /// Sum, in seconds.
    pub total: f64,
}

impl LatencyCounter {
    /// Adds one sample of `secs` seconds.
    pub fn update(&mut self, secs: f64) {
        if secs > self.max {
            self.max = secs;
        }
        if self.num == 0 || secs < self.min {
            self.min = secs;
        }
        self.total += secs;
        self.num = self.num.saturating_add(1);
    }
}

impl Layout for LatencyCounter {
    const NAME: &'static str = "ctdb_latency_counter";
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.num)
            .padding(4)
            .f64(self.min)
            .f64(self.max)
            .f64(self.total);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let num = r.i32(Self::NAME)?;
        r.padding(4)?;
        Ok(LatencyCounter {
            num,
            min: r.f64(Self::NAME)?,
            max: r.f64(Self::NAME)?,
            total: r.f64(Self::NAME)?,
        })
    }
}

fn write_u32s(w: &mut Writer<'_>, v: &[u32]) {
    for x in v {
        w.u32(*x);
    }
}

fn read_u32s<const N: usize>(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<[u32; N], DecodeError> {
    let mut a = [0u32; N];
    for x in &mut a {
        *x = r.u32(what)?;
    }
    Ok(a)
}

/// The lock counters, per daemon and per database.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LockStatistics {
    /// Lock requests.
    pub num_calls: u32,
    /// Locks held now.
    pub num_current: u32,
    /// Lock requests waiting now.
    pub num_pending: u32,
    /// Lock requests that failed.
    pub num_failed: u32,
    /// Wait times.
    pub latency: LatencyCounter,
    /// Wait-time histogram.
    pub buckets: [u32; MAX_COUNT_BUCKETS],
}

impl Layout for LockStatistics {
    const NAME: &'static str = "lock statistics";
    fn write(&self, w: &mut Writer<'_>) {
        write_u32s(
            w,
            &[
                self.num_calls,
                self.num_current,
                self.num_pending,
                self.num_failed,
            ],
        );
        self.latency.write(w);
        write_u32s(w, &self.buckets);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [num_calls, num_current, num_pending, num_failed] = read_u32s(r, Self::NAME)?;
        Ok(LockStatistics {
            num_calls,
            num_current,
            num_pending,
            num_failed,
            latency: LatencyCounter::read(r)?,
            buckets: read_u32s(r, Self::NAME)?,
        })
    }
}

/// Packet counts by operation for packets between nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodePacketCounts {
    /// REQ_CALL.
    pub req_call: u32,
    /// REPLY_CALL.
    pub reply_call: u32,
    /// REQ_DMASTER.
    pub req_dmaster: u32,
    /// REPLY_DMASTER.
    pub reply_dmaster: u32,
    /// REPLY_ERROR.
    pub reply_error: u32,
    /// REQ_MESSAGE.
    pub req_message: u32,
    /// REQ_CONTROL.
    pub req_control: u32,
    /// REPLY_CONTROL.
    pub reply_control: u32,
    /// REQ_TUNNEL.
    pub req_tunnel: u32,
}

/// Packet counts by operation for packets from clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientPacketCounts {
    /// REQ_CALL.
    pub req_call: u32,
    /// REQ_MESSAGE.
    pub req_message: u32,
    /// REQ_CONTROL.
    pub req_control: u32,
    /// REQ_TUNNEL.
    pub req_tunnel: u32,
}

/// Timed-out requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeoutCounts {
    /// Calls.
    pub call: u32,
    /// Controls.
    pub control: u32,
    /// Traverses.
    pub traverse: u32,
}

/// `ctdb_statistics`: the daemon-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Statistics {
    /// Connected clients.
    pub num_clients: u32,
    /// 1 while the node is frozen.
    pub frozen: u32,
    /// 1 while a recovery runs.
    pub recovering: u32,
    /// Packets sent to clients.
    pub client_packets_sent: u32,
    /// Packets received from clients.
    pub client_packets_recv: u32,
    /// Packets sent to nodes.
    pub node_packets_sent: u32,
    /// Packets received from nodes.
    pub node_packets_recv: u32,
    /// Keepalives sent.
    pub keepalive_packets_sent: u32,
    /// Keepalives received.
    pub keepalive_packets_recv: u32,
    /// Node packets by operation.
    pub node: NodePacketCounts,
    /// Client packets by operation.
    pub client: ClientPacketCounts,
    /// Timeouts.
    pub timeouts: TimeoutCounts,
    /// Cluster lock latency seen by the daemon.
    pub reclock_ctdbd: LatencyCounter,
    /// Cluster lock latency seen by the recovery daemon.
    pub reclock_recd: LatencyCounter,
    /// Record lock counters.
    pub locks: LockStatistics,
    /// Record calls.
    pub total_calls: u32,
    /// Record calls in progress.
    pub pending_calls: u32,
    /// Child writes (persistent updates).
    pub childwrite_calls: u32,
    /// Child writes in progress.
    pub pending_childwrite_calls: u32,
    /// Memory in use, bytes.
    pub memory_used: u32,
    /// Samba's end-of-counters marker (always 0).
    pub last_counter: u32,
    /// Highest hop count seen.
    pub max_hop_count: u32,
    /// Hop count histogram.
    pub hop_count_bucket: [u32; MAX_COUNT_BUCKETS],
    /// Call latency.
    pub call_latency: LatencyCounter,
    /// Child write latency.
    pub childwrite_latency: LatencyCounter,
    /// Recoveries run.
    pub num_recoveries: u32,
    /// When counting started.
    pub statistics_start_time: Timeval,
    /// When the snapshot was taken.
    pub statistics_current_time: Timeval,
    /// Read-only delegations handed out.
    pub total_ro_delegations: u32,
    /// Read-only delegations revoked.
    pub total_ro_revokes: u32,
}

impl Layout for Statistics {
    const NAME: &'static str = "ctdb_statistics";
    fn write(&self, w: &mut Writer<'_>) {
        let n = &self.node;
        let c = &self.client;
        let t = &self.timeouts;
        write_u32s(
            w,
            &[
                self.num_clients,
                self.frozen,
                self.recovering,
                self.client_packets_sent,
                self.client_packets_recv,
                self.node_packets_sent,
                self.node_packets_recv,
                self.keepalive_packets_sent,
                self.keepalive_packets_recv,
                n.req_call,
                n.reply_call,
                n.req_dmaster,
                n.reply_dmaster,
                n.reply_error,
                n.req_message,
                n.req_control,
                n.reply_control,
                n.req_tunnel,
                c.req_call,
                c.req_message,
                c.req_control,
                c.req_tunnel,
                t.call,
                t.control,
                t.traverse,
            ],
        );
        w.padding(4);
        self.reclock_ctdbd.write(w);
        self.reclock_recd.write(w);
        self.locks.write(w);
        write_u32s(
            w,
            &[
                self.total_calls,
                self.pending_calls,
                self.childwrite_calls,
                self.pending_childwrite_calls,
                self.memory_used,
                self.last_counter,
                self.max_hop_count,
            ],
        );
        write_u32s(w, &self.hop_count_bucket);
        w.padding(4);
        self.call_latency.write(w);
        self.childwrite_latency.write(w);
        w.u32(self.num_recoveries).padding(4);
        self.statistics_start_time.write(w);
        self.statistics_current_time.write(w);
        w.u32(self.total_ro_delegations).u32(self.total_ro_revokes);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let what = Self::NAME;
        let h: [u32; 25] = read_u32s(r, what)?;
        r.padding(4)?;
        let reclock_ctdbd = LatencyCounter::read(r)?;
        let reclock_recd = LatencyCounter::read(r)?;
        let locks = LockStatistics::read(r)?;
        let m: [u32; 7] = read_u32s(r, what)?;
        let hop_count_bucket = read_u32s(r, what)?;
        r.padding(4)?;
        let call_latency = LatencyCounter::read(r)?;
        let childwrite_latency = LatencyCounter::read(r)?;
        let num_recoveries = r.u32(what)?;
        r.padding(4)?;
        Ok(Statistics {
            num_clients: h[0],
            frozen: h[1],
            recovering: h[2],
            client_packets_sent: h[3],
            client_packets_recv: h[4],
            node_packets_sent: h[5],
            node_packets_recv: h[6],
            keepalive_packets_sent: h[7],
            keepalive_packets_recv: h[8],
            node: NodePacketCounts {
                req_call: h[9],
                reply_call: h[10],
                req_dmaster: h[11],
                reply_dmaster: h[12],
                reply_error: h[13],
                req_message: h[14],
                req_control: h[15],
                reply_control: h[16],
                req_tunnel: h[17],
            },
            client: ClientPacketCounts {
                req_call: h[18],
                req_message: h[19],
                req_control: h[20],
                req_tunnel: h[21],
            },
            timeouts: TimeoutCounts {
                call: h[22],
                control: h[23],
                traverse: h[24],
            },
            reclock_ctdbd,
            reclock_recd,
            locks,
            total_calls: m[0],
            pending_calls: m[1],
            childwrite_calls: m[2],
            pending_childwrite_calls: m[3],
            memory_used: m[4],
            last_counter: m[5],
            max_hop_count: m[6],
            hop_count_bucket,
            call_latency,
            childwrite_latency,
            num_recoveries,
            statistics_start_time: Timeval::read(r)?,
            statistics_current_time: Timeval::read(r)?,
            total_ro_delegations: r.u32(what)?,
            total_ro_revokes: r.u32(what)?,
        })
    }
}

/// `ctdb_statistics_list` (GET_STAT_HISTORY): num i32, 4 bytes padding,
/// then the snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatisticsList(pub Vec<Statistics>);

impl Layout for StatisticsList {
    const NAME: &'static str = "ctdb_statistics_list";
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(i32::try_from(self.0.len()).unwrap_or(i32::MAX))
            .padding(4);
        for s in &self.0 {
            s.write(w);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let num = r.i32(Self::NAME)?;
        let num = u32::try_from(num).map_err(|_| DecodeError::BadValue {
            what: "ctdb_statistics_list count",
            value: num as u64,
        })?;
        r.padding(4)?;
        let mut v = Vec::new();
        for _ in 0..num {
            v.push(Statistics::read(r)?);
        }
        Ok(StatisticsList(v))
    }
}

/// One hot key of a database: how often it migrated in, and the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HotKey {
    /// Migrations counted.
    pub count: u32,
    /// The pointer word the sender's `TDB_DATA` held: meaningless to the
    /// receiver, kept so that a decoded reply encodes to the same bytes.
    pub key_pointer: u64,
    /// The key.
    pub key: Vec<u8>,
}

/// `ctdb_db_statistics`: lock counters, vacuum latency, read-only counters,
/// hop histogram, num_hot_keys u32 + 4 padding, ten {count u32, 4 padding,
/// key pointer u64, key size u64}, then the ten keys' bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DbStatistics {
    /// Record lock counters.
    pub locks: LockStatistics,
    /// Vacuum run latency.
    pub vacuum_latency: LatencyCounter,
    /// Read-only delegations handed out.
    pub db_ro_delegations: u32,
    /// Read-only delegations revoked.
    pub db_ro_revokes: u32,
    /// Hop count histogram.
    pub hop_count_bucket: [u32; MAX_COUNT_BUCKETS],
    /// The num_hot_keys field as sent (Samba always sends [`MAX_HOT_KEYS`]).
    pub num_hot_keys: u32,
    /// Exactly [`MAX_HOT_KEYS`] slots; unused ones have count 0 and no key.
    pub hot_keys: [HotKey; MAX_HOT_KEYS],
}

impl Layout for DbStatistics {
    const NAME: &'static str = "ctdb_db_statistics";
    fn write(&self, w: &mut Writer<'_>) {
        self.locks.write(w);
        self.vacuum_latency.write(w);
        w.u32(self.db_ro_delegations).u32(self.db_ro_revokes);
        write_u32s(w, &self.hop_count_bucket);
        w.u32(self.num_hot_keys).padding(4);
        for k in &self.hot_keys {
            w.u32(k.count)
                .padding(4)
                .u64(k.key_pointer)
                .u64(k.key.len() as u64);
        }
        for k in &self.hot_keys {
            w.bytes(&k.key);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let what = Self::NAME;
        let locks = LockStatistics::read(r)?;
        let vacuum_latency = LatencyCounter::read(r)?;
        let db_ro_delegations = r.u32(what)?;
        let db_ro_revokes = r.u32(what)?;
        let hop_count_bucket = read_u32s(r, what)?;
        let num_hot_keys = r.u32(what)?;
        r.padding(4)?;
        let mut sizes = [0u64; MAX_HOT_KEYS];
        let mut hot_keys: [HotKey; MAX_HOT_KEYS] = Default::default();
        for (k, size) in hot_keys.iter_mut().zip(sizes.iter_mut()) {
            k.count = r.u32(what)?;
            r.padding(4)?;
            k.key_pointer = r.u64(what)?;
            *size = r.u64(what)?;
        }
        for (k, size) in hot_keys.iter_mut().zip(sizes) {
            let n = u32::try_from(size).map_err(|_| DecodeError::BadValue {
                what: "hot key size",
                value: size,
            })?;
            k.key = r.blob(n, "hot key")?;
        }
        Ok(DbStatistics {
            locks,
            vacuum_latency,
            db_ro_delegations,
            db_ro_revokes,
            hop_count_bucket,
            num_hot_keys,
            hot_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_samba() {
        assert_eq!(Statistics::default().to_bytes().len(), STATISTICS_LEN);
        let mut d = DbStatistics::default();
        assert_eq!(d.to_bytes().len(), DB_STATISTICS_FIXED_LEN);
        d.hot_keys[0].key = b"ab".to_vec();
        d.hot_keys[0].count = 4;
        d.num_hot_keys = MAX_HOT_KEYS as u32;
        let b = d.to_bytes();
        assert_eq!(b.len(), DB_STATISTICS_FIXED_LEN + 2);
        assert_eq!(&b[216..220], &(MAX_HOT_KEYS as u32).to_le_bytes());
        assert_eq!(&b[224..228], &4u32.to_le_bytes());
        assert_eq!(&b[DB_STATISTICS_FIXED_LEN..], b"ab");
        assert_eq!(DbStatistics::decode(&b).unwrap(), d);
    }

    #[test]
    fn memory_used_offset() {
        let s = Statistics {
            memory_used: 7,
            recovering: 1,
            num_clients: 3,
            ..Default::default()
        };
        let b = s.to_bytes();
        assert_eq!(&b[0..4], &3u32.to_le_bytes());
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[296..300], &7u32.to_le_bytes());
        assert_eq!(Statistics::decode(&b).unwrap(), s);
    }
}
