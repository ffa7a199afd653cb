//! Salvaging every intact record of a damaged database (tdb_rescue).
//!
//! Every 4-byte-aligned offset is tried as a record header; those that look like
//! live records whose key hashes right are candidates. A candidate reachable from
//! a hash chain wins over others with the same key; otherwise every copy that is
//! not inside free space is reported.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, FREELIST_TOP, OFF_SIZE, RECORD_SIZE};
use crate::open::Logger;
use crate::tdb::Tdb;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A database whose logger is taken away while this lives and put back when it
/// is dropped (also when a callback panics).
struct Silenced<'a> {
    tdb: &'a mut Tdb,
    logger: Option<Arc<dyn Logger>>,
}

impl<'a> Silenced<'a> {
    fn new(tdb: &'a mut Tdb) -> Silenced<'a> {
        let logger = tdb.logger.take();
        Silenced { tdb, logger }
    }
}

impl Deref for Silenced<'_> {
    type Target = Tdb;
    fn deref(&self) -> &Tdb {
        self.tdb
    }
}

impl DerefMut for Silenced<'_> {
    fn deref_mut(&mut self) -> &mut Tdb {
        self.tdb
    }
}

impl Drop for Silenced<'_> {
    fn drop(&mut self) {
        self.tdb.logger = self.logger.take();
    }
}

struct Found {
    head: Offset,
    rec: Record,
    key: Vec<u8>,
    in_hash: bool,
    in_free: bool,
}

impl Tdb {
    /// Calls `f` for every record that looks intact, whatever the state of the chains.
    pub fn rescue(&mut self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<()> {
        self.with_lockall_read(|tdb| {
            let map_size = tdb.map_size;
            let _ = tdb.oob(map_size, 1, true);
            // Damage is expected here: keep the log quiet while probing.
            let r = Silenced::new(tdb).rescue_locked(f);
            if r.is_err() {
                tdb.ecode = TdbError::Oom.code();
                tdb.log(
                    crate::open::DebugLevel::Error,
                    "tdb_rescue: failed allocating\n",
                );
            }
            r
        })
    }

    fn looks_like_record(&mut self, off: Offset, rec: &Record) -> Option<Vec<u8>> {
        if rec.magic != format::MAGIC {
            return None;
        }
        if rec.key_len as u64 + rec.data_len as u64 > rec.rec_len as u64
            || !rec.rec_len.is_multiple_of(format::ALIGNMENT)
        {
            return None;
        }
        if rec.next > 0 && rec.next < format::data_start(self.hash_size) {
            return None;
        }
        if self.oob(rec.next, RECORD_SIZE, true).is_err() {
            return None;
        }
        let key = self.alloc_read(off + RECORD_SIZE, rec.key_len).ok()?;
        (self.hash.hash(&key) == rec.full_hash).then_some(key)
    }

    fn rescue_locked(&mut self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<()> {
        let mut found: Vec<Found> = Vec::new();
        let mut off = format::data_start(self.hash_size);
        while off < self.map_size {
            if let Ok(rec) = self.read_rec_raw(off) {
                if let Some(key) = self.looks_like_record(off, &rec) {
                    found.push(Found {
                        head: off,
                        rec,
                        key,
                        in_hash: false,
                        in_free: false,
                    });
                }
            }
            off = match off.checked_add(format::ALIGNMENT) {
                Some(o) => o,
                None => break,
            };
        }
        // `found` is sorted by offset: mark what chains reach and what lies in free space.
        let find = |found: &Vec<Found>, off: Offset| found.partition_point(|x| x.head < off);
        let mark_free = |found: &mut Vec<Found>, head: Offset, len: u64| {
            let mut i = find(found, head);
            while i < found.len() && (found[i].head as u64) < head as u64 + len {
                found[i].in_free = true;
                i += 1;
            }
        };
        for h in 0..=self.hash_size {
            let mut slow = FREELIST_TOP + h * OFF_SIZE;
            let mut slow_chase = false;
            let mut off = match self.read_off(slow) {
                Ok(o) => o,
                Err(_) => continue,
            };
            while off != 0 && off != slow {
                let rec = match self.read_rec_raw(off) {
                    Ok(r) => r,
                    Err(_) => break,
                };
                if h == 0 {
                    if rec.magic != format::FREE_MAGIC {
                        break;
                    }
                    mark_free(&mut found, off, RECORD_SIZE as u64 + rec.rec_len as u64);
                } else {
                    let i = find(&found, off);
                    if i < found.len() && found[i].head == off {
                        found[i].in_hash = true;
                    }
                }
                off = rec.next;
                if slow_chase {
                    slow = self.read_off(slow).unwrap_or(0);
                }
                slow_chase = !slow_chase;
            }
        }
        // The recovery area holds old copies of records: not candidates.
        if let Ok(head) = self.read_off(format::RECOVERY_HEAD_OFS) {
            if head != 0 {
                if let Ok(rec) = self.read_rec_raw(head) {
                    mark_free(&mut found, head, RECORD_SIZE as u64 + rec.rec_len as u64);
                }
            }
        }
        found.sort_by(|a, b| {
            a.key
                .len()
                .cmp(&b.key.len())
                .then_with(|| a.key.cmp(&b.key))
        });
        let mut i = 0;
        while i < found.len() {
            let n = found[i..]
                .iter()
                .take_while(|x| x.key == found[i].key)
                .count();
            let group = &found[i..i + n];
            let in_hash: Vec<&Found> = group.iter().filter(|x| x.in_hash).collect();
            let chosen: Vec<&Found> = if in_hash.is_empty() {
                group.iter().filter(|x| !x.in_free).collect()
            } else {
                in_hash
            };
            for x in chosen {
                match self.alloc_read(x.head + RECORD_SIZE + x.rec.key_len, x.rec.data_len) {
                    Ok(data) => f(&x.key, &data),
                    Err(TdbError::Oom) => return Err(TdbError::Oom),
                    Err(_) => {}
                }
            }
            i += n;
        }
        Ok(())
    }
}
