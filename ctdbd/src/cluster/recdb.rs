//! The recovery database: the records pulled from the nodes, merged as they
//! stream in (one copy of each key: the one Samba's sequential pull would
//! keep, see `merge::preferred`), then walked once to cut the record
//! buffers of the push.
//!
//! It lives in memory, in one arena of record entries and an open-address
//! index of (hash, entry offset) pairs: a database is held once, in about
//! its own size plus 12 bytes of entry header and at most 32 bytes of index
//! per record. Offsets are 32 bits wide, as a tdb's are, so a database a
//! tdb can hold fits. Pulled buffers are merged straight from the received
//! bytes and push buffers are encoded straight from the arena: no record is
//! copied anywhere else.

use super::merge;
use ctdb_protocol::ltdb::{LtdbHeader, RecBufferRef, RecBufferWriter, LTDB_HEADER_LEN};
use ctdb_protocol::{DbId, Pnn};
use std::fmt;

/// Why the recovery database failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecdbError {
    /// A pulled buffer does not decode.
    BadBuffer(String),
    /// A pulled record is shorter than its record header.
    ShortRecord,
    /// The records pulled do not fit in the 4 GiB a database can have.
    TooBig,
}

impl fmt::Display for RecdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecdbError::BadBuffer(why) => write!(f, "bad pulled record buffer: {why}"),
            RecdbError::ShortRecord => write!(f, "pulled record shorter than its header"),
            RecdbError::TooBig => write!(f, "recovery database larger than 4 GiB"),
        }
    }
}

/// Bytes in front of every entry of the arena: key length, data length,
/// the source (the pulled node's place in the pull order; `DEAD` once a
/// newer copy replaced the entry).
const ENTRY_HEADER: usize = 12;
/// The source of an entry a later copy replaced.
const DEAD: u32 = u32::MAX;

/// One database's records during a recovery.
pub struct RecoveryDb {
    db_id: DbId,
    persistent: bool,
    leader: Pnn,
    /// Entries back to back: header (`ENTRY_HEADER`), key, data.
    arena: Vec<u8>,
    /// (hash of the key, entry offset + 1); offset 0 marks a free slot.
    /// Its length is a power of two, at most half full.
    index: Vec<(u32, u32)>,
    /// Live entries.
    records: usize,
    /// Where the push's walk of the arena stands.
    cursor: usize,
}

impl RecoveryDb {
    /// An empty recovery database for `db_id`. `persistent` databases
    /// (persistent and replicated) are pushed as pulled; `leader` is the
    /// node running the recovery (it decides ties in the merge and becomes
    /// the dmaster of volatile records).
    pub fn new(db_id: DbId, persistent: bool, leader: Pnn) -> RecoveryDb {
        RecoveryDb {
            db_id,
            persistent,
            leader,
            arena: Vec::new(),
            index: vec![(0, 0); 1024],
            records: 0,
            cursor: 0,
        }
    }

    /// Records held.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Merges every record of a pulled record buffer (its bytes as
    /// received) from the node at place `source` of the pull order; returns
    /// how many records it held. A bad record stops the merge there (the
    /// recovery then fails: what was merged is never pushed).
    pub fn add_buffer(&mut self, bytes: &[u8], source: u32) -> Result<(DbId, u32), RecdbError> {
        let buf = RecBufferRef::new(bytes).map_err(|e| RecdbError::BadBuffer(e.to_string()))?;
        let (db_id, count) = (buf.db_id, buf.count);
        for rec in buf {
            let rec = rec.map_err(|e| RecdbError::BadBuffer(e.to_string()))?;
            self.add(rec.key, rec.data, source)?;
        }
        Ok((db_id, count))
    }

    /// Merges one pulled record (`data` with its header) from the node at
    /// place `source` of the pull order; true when it was kept.
    pub fn add(&mut self, key: &[u8], data: &[u8], source: u32) -> Result<bool, RecdbError> {
        let candidate = merge_fields(data).ok_or(RecdbError::ShortRecord)?;
        let hash = tdb_engine::jenkins_hash(key);
        let slot = self.find_slot(hash, key);
        let (_, stored) = self.index[slot];
        if stored != 0 {
            let at = stored as usize - 1;
            let (held, held_source) = self.entry_header(at);
            if !merge::preferred(&held, held_source, &candidate, source, self.leader) {
                return Ok(false);
            }
            let (key_len, data_len) = self.entry_lens(at);
            if data_len == data.len() {
                let start = at + ENTRY_HEADER + key_len;
                self.arena[start..start + data_len].copy_from_slice(data);
                self.arena[at + 8..at + 12].copy_from_slice(&source.to_le_bytes());
                return Ok(true);
            }
            self.arena[at + 8..at + 12].copy_from_slice(&DEAD.to_le_bytes());
            let off = self.append(key, data, source)?;
            self.index[slot] = (hash, off + 1);
            return Ok(true);
        }
        let off = self.append(key, data, source)?;
        self.index[slot] = (hash, off + 1);
        self.records += 1;
        if self.records * 2 > self.index.len() {
            self.grow_index();
        }
        Ok(true)
    }

    /// The next record buffer of the push (its bytes and record count),
    /// walking the entries in order until the buffer passes `max_bytes`;
    /// records that are not pushed (`merge::push_header`) are left out.
    /// `None` once every entry was walked. A buffer may be empty only when
    /// it is the last one.
    pub fn next_buffer(&mut self, max_bytes: usize) -> Option<(Vec<u8>, u32)> {
        if self.cursor >= self.arena.len() {
            return None;
        }
        let mut w = RecBufferWriter::new(self.db_id);
        while self.cursor < self.arena.len() && w.len() <= max_bytes {
            let at = self.cursor;
            let (key_len, data_len) = self.entry_lens(at);
            self.cursor = at + ENTRY_HEADER + key_len + data_len;
            if self.source_of(at) == DEAD {
                continue;
            }
            let key = &self.arena[at + ENTRY_HEADER..at + ENTRY_HEADER + key_len];
            let data = &self.arena[at + ENTRY_HEADER + key_len..self.cursor];
            if let Some(header) = merge::push_header(data, self.persistent, self.leader) {
                w.push(0, key, &[&header, &data[LTDB_HEADER_LEN..]]);
            }
        }
        let count = w.count();
        Some((w.finish(), count))
    }

    /// The slot of `key` in the index: the one holding it, or the free slot
    /// where it goes.
    fn find_slot(&self, hash: u32, key: &[u8]) -> usize {
        let mask = self.index.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let (h, stored) = self.index[slot];
            if stored == 0 {
                return slot;
            }
            if h == hash && self.entry_key(stored as usize - 1) == key {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Doubles the index and places every entry again.
    fn grow_index(&mut self) {
        let doubled = vec![(0, 0); self.index.len() * 2];
        let old = std::mem::replace(&mut self.index, doubled);
        let mask = self.index.len() - 1;
        for (hash, stored) in old.into_iter().filter(|(_, s)| *s != 0) {
            let mut slot = hash as usize & mask;
            while self.index[slot].1 != 0 {
                slot = (slot + 1) & mask;
            }
            self.index[slot] = (hash, stored);
        }
    }

    /// Appends an entry; its offset.
    fn append(&mut self, key: &[u8], data: &[u8], source: u32) -> Result<u32, RecdbError> {
        let off = self.arena.len();
        let end = off + ENTRY_HEADER + key.len() + data.len();
        // The offset + 1 stored in the index must fit in 32 bits too.
        if end >= u32::MAX as usize {
            return Err(RecdbError::TooBig);
        }
        self.arena.reserve(end - off);
        self.arena
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.arena
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.arena.extend_from_slice(&source.to_le_bytes());
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(data);
        Ok(off as u32)
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.arena[at],
            self.arena[at + 1],
            self.arena[at + 2],
            self.arena[at + 3],
        ])
    }

    fn entry_lens(&self, at: usize) -> (usize, usize) {
        (self.word(at) as usize, self.word(at + 4) as usize)
    }

    fn source_of(&self, at: usize) -> u32 {
        self.word(at + 8)
    }

    fn entry_key(&self, at: usize) -> &[u8] {
        let (key_len, _) = self.entry_lens(at);
        &self.arena[at + ENTRY_HEADER..at + ENTRY_HEADER + key_len]
    }

    /// The merge fields of the entry at `at` and its source (its data was
    /// checked to hold a header when it was added).
    fn entry_header(&self, at: usize) -> (LtdbHeader, u32) {
        let (key_len, data_len) = self.entry_lens(at);
        let start = at + ENTRY_HEADER + key_len;
        let header = merge_fields(&self.arena[start..start + data_len]).unwrap_or_default();
        (header, self.source_of(at))
    }
}

/// The fields of a record's header the merge looks at (rsn, dmaster;
/// the rest left default), read in place; `None` when the record is
/// shorter than a header.
fn merge_fields(data: &[u8]) -> Option<LtdbHeader> {
    if data.len() < LTDB_HEADER_LEN {
        return None;
    }
    let mut rsn = [0u8; 8];
    rsn.copy_from_slice(&data[..8]);
    let mut dmaster = [0u8; 4];
    dmaster.copy_from_slice(&data[8..12]);
    Some(LtdbHeader {
        rsn: u64::from_le_bytes(rsn),
        dmaster: Pnn(u32::from_le_bytes(dmaster)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::ltdb::{RecBuffer, RecData, REC_FLAG_MIGRATED_WITH_DATA};
    use ctdb_protocol::Layout;

    fn rec(rsn: u64, dmaster: u32, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        LtdbHeader {
            rsn,
            dmaster: Pnn(dmaster),
            ..Default::default()
        }
        .encode(&mut v);
        v.extend_from_slice(value);
        v
    }

    fn drain(db: &mut RecoveryDb, max: usize) -> Vec<RecBuffer> {
        let mut out = Vec::new();
        while let Some((bytes, count)) = db.next_buffer(max) {
            let buf = RecBuffer::decode(&bytes).unwrap();
            assert_eq!(buf.records.len() as u32, count);
            out.push(buf);
        }
        out
    }

    #[test]
    fn keeps_the_preferred_copy_and_pushes_it_in_bounded_buffers() {
        let mut db = RecoveryDb::new(DbId(7), false, Pnn(0));
        assert!(db.add(b"k", &rec(3, 1, b"old"), 0).unwrap());
        assert!(db.add(b"k", &rec(5, 2, b"newer"), 1).unwrap());
        assert!(!db.add(b"k", &rec(4, 2, b"older"), 2).unwrap());
        assert!(db.add(b"gone", &rec(9, 1, b""), 0).unwrap());
        for i in 0..2000u32 {
            db.add(format!("key{i}").as_bytes(), &rec(1, 1, &[7u8; 100]), 0)
                .unwrap();
        }
        assert_eq!(db.records(), 2002);
        let bufs = drain(&mut db, 20_000);
        assert!(bufs.len() > 5, "{} buffers", bufs.len());
        let all: Vec<&RecData> = bufs.iter().flat_map(|b| b.records.iter()).collect();
        assert_eq!(all.len(), 2001, "the empty record is not pushed");
        let k = all.iter().find(|r| r.key == b"k").unwrap();
        let (h, v) = k.header().unwrap();
        assert_eq!((h.rsn, h.dmaster, v), (5, Pnn(0), &b"newer"[..]));
        assert_ne!(h.flags & REC_FLAG_MIGRATED_WITH_DATA, 0);
        for b in &bufs {
            assert_eq!(b.db_id, DbId(7));
            assert!(b.to_bytes().len() < 20_000 + 200, "buffer too big");
        }
        assert!(db.next_buffer(20_000).is_none());
    }

    #[test]
    fn equal_copies_resolve_as_a_pull_in_node_order_would() {
        // Leader 0. Copies of equal rsn from places 0..3 of the pull order:
        // Samba keeps the first that does not name the leader.
        let arrivals = [
            (2, rec(4, 2, b"c")),
            (0, rec(4, 0, b"a")),
            (1, rec(4, 1, b"b")),
        ];
        let mut db = RecoveryDb::new(DbId(1), false, Pnn(0));
        for (src, data) in &arrivals {
            db.add(b"x", data, *src).unwrap();
        }
        let recs: Vec<RecData> = drain(&mut db, 1 << 20)
            .into_iter()
            .flat_map(|b| b.records)
            .collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].header().unwrap().1, b"b");
    }

    #[test]
    fn pulled_buffers_merge_from_their_bytes() {
        let buf = RecBuffer {
            db_id: DbId(3),
            records: (0..50u32)
                .map(|i| RecData {
                    reqid: 0,
                    key: i.to_le_bytes().to_vec(),
                    data: rec(u64::from(i), 1, b"v"),
                })
                .collect(),
        }
        .to_bytes();
        let mut db = RecoveryDb::new(DbId(3), true, Pnn(2));
        assert_eq!(db.add_buffer(&buf, 0).unwrap(), (DbId(3), 50));
        assert_eq!(db.records(), 50);
        assert!(db.add_buffer(&buf[..buf.len() - 3], 1).is_err());
        assert_eq!(db.records(), 50);
        let recs: Vec<RecData> = drain(&mut db, 1 << 20)
            .into_iter()
            .flat_map(|b| b.records)
            .collect();
        assert_eq!(recs.len(), 50);
        // Persistent records are pushed as pulled.
        assert_eq!(recs[7].data, rec(7, 1, b"v"));
        assert!(db.add(b"short", b"123", 0).is_err());
    }
}
