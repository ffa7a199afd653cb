//! Storing many records at once (`store_batch`): the records whose key is
//! new go into one space taken from the freelist in a single allocation and
//! are written in one piece, instead of one freelist walk and half a dozen
//! small writes per record. Meant for filling a database that was just
//! wiped (a recovery's push), where every key is new; any other record is
//! stored the ordinary way. After a wipe inside a transaction, while only
//! batches write, the transaction remembers the hashes of the keys stored
//! ([`Refill`]): a key whose hash is not among them is new without a walk
//! of its chain.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, ALIGNMENT, OFF_SIZE, RECORD_SIZE};
use crate::lock::LockKind;
use crate::open::DebugLevel;
use crate::tdb::{StoreFlag, Tdb};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A hasher for values that are hashes or offsets already (a record's tdb
/// hash, a chain head's offset): one multiply and fold spread them.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(u32::from(*b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Spreading = BuildHasherDefault<Spread>;

/// A key of the batch with its tdb hash, hashed by that hash alone.
#[derive(PartialEq, Eq)]
struct HashedKey<'a> {
    hash: u32,
    key: &'a [u8],
}

impl Hash for HashedKey<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u32(self.hash);
    }
}

/// A first batch after a wipe at least this long is taken for the start of
/// a bulk refill (a recovery's push), sized for in advance.
const REFILL_BULK: usize = 1024;

/// What a transaction knows from the moment it wiped the database for as
/// long as nothing but batches writes: every key in the database was
/// stored by a batch, so a key whose hash is not in `hashes` is absent.
/// Any other write of the transaction ends it.
#[derive(Default)]
pub(crate) struct Refill {
    /// The hashes of the keys stored since the wipe.
    hashes: HashSet<u32, Spreading>,
    /// A batch is writing: its writes keep this knowledge.
    pub(crate) writing: bool,
}

/// One record of [`Tdb::store_batch`]: its key and its value, given in two
/// parts that are stored one after the other (a header and the rest, say).
#[derive(Clone, Copy, Debug)]
pub struct BatchRecord<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value, in two parts stored back to back.
    pub parts: [&'a [u8]; 2],
}

/// A record of the batch that goes into the shared space.
struct Placed {
    /// Its place in the batch.
    index: usize,
    /// Its key's hash.
    hash: u32,
    /// Its value's length.
    data_len: u32,
    /// Bytes after its record header (key, value, padding, tailer).
    rec_len: u32,
    /// The first record of its chain when the batch began.
    head: Offset,
}

impl Tdb {
    /// Stores every record as `store(key, parts, Replace)` would, in order
    /// (a later record of the same key wins), under one allrecord lock. The
    /// records whose key is absent and whose chain holds no dead record
    /// share one allocation from the freelist and are written in one piece;
    /// the others are stored one by one. On an error inside a transaction
    /// the transaction can only be cancelled, as after a failed `store`.
    pub fn store_batch(&mut self, recs: &[BatchRecord<'_>]) -> Result<()> {
        if self.read_only || self.traverse_read > 0 {
            return self.fail(TdbError::Rdonly);
        }
        if recs.is_empty() {
            return Ok(());
        }
        let mut all = self.hold_allrecord(LockKind::Write)?;
        let r = all.store_batch_locked(recs);
        if all.release().is_err() {
            all.log(DebugLevel::Fatal, "tdb_store_batch: failed to unlock\n");
            if r.is_ok() {
                return Err(TdbError::Lock);
            }
        }
        drop(all);
        self.track(r)
    }

    fn store_batch_locked(&mut self, recs: &[BatchRecord<'_>]) -> Result<()> {
        let later = match self.take_refill() {
            Some(refill) => self.store_refilling(recs, refill)?,
            None => {
                let (placed, later) = self.sort_batch(recs)?;
                if !placed.is_empty() {
                    self.write_placed(recs, &placed)?;
                }
                later
            }
        };
        for &i in &later {
            let r = &recs[i];
            let hash = self.hash.hash(r.key);
            self.store_locked(r.key, &r.parts, StoreFlag::Replace, hash)?;
        }
        Ok(())
    }

    /// The transaction's [`Refill`], taken out of it while a batch uses it.
    fn take_refill(&mut self) -> Option<Refill> {
        self.transaction.as_mut().and_then(|t| t.refill.take())
    }

    /// Places the batch's new keys as `write_placed` does, knowing from
    /// `refill` which keys are new; gives back the indexes of the records
    /// to store one by one (a hash seen before: the same key again, or
    /// another key with the same hash). The transaction keeps `refill`
    /// unless the writes fail.
    fn store_refilling(
        &mut self,
        recs: &[BatchRecord<'_>],
        mut refill: Refill,
    ) -> Result<Vec<usize>> {
        let mut placed = Vec::with_capacity(recs.len());
        let mut later = Vec::new();
        if refill.hashes.is_empty() && recs.len() >= REFILL_BULK {
            // A bulk refill: room for about a key per chain at once, instead
            // of growing (and rehashing) the set step by step.
            refill
                .hashes
                .reserve(recs.len().max(self.hash_size as usize));
        }
        for (index, r) in recs.iter().enumerate() {
            let mut p = self.measure(index, r)?;
            if !refill.hashes.insert(p.hash) {
                later.push(index);
                continue;
            }
            let txn = self.transaction.as_ref().expect("inside a transaction");
            p.head = txn.chain_head(self.bucket(p.hash), self.order);
            placed.push(p);
        }
        refill.writing = true;
        self.transaction
            .as_mut()
            .expect("inside a transaction")
            .refill = Some(refill);
        let r = if placed.is_empty() {
            Ok(())
        } else {
            self.write_placed(recs, &placed)
        };
        let txn = self.transaction.as_mut().expect("inside a transaction");
        match r {
            Ok(()) => {
                if let Some(refill) = txn.refill.as_mut() {
                    refill.writing = false;
                }
                Ok(later)
            }
            Err(e) => {
                txn.refill = None;
                Err(e)
            }
        }
    }

    /// Record `index` of the batch sized and hashed, its chain's head not
    /// set yet; Oom when its sizes do not fit in 32 bits.
    fn measure(&mut self, index: usize, r: &BatchRecord<'_>) -> Result<Placed> {
        let lens = [r.key.len(), r.parts[0].len(), r.parts[1].len()];
        let Some((_, data_len, rec_len)) = record_lengths(lens) else {
            return self.fail(TdbError::Oom);
        };
        Ok(Placed {
            index,
            hash: self.hash.hash(r.key),
            data_len,
            rec_len,
            head: 0,
        })
    }

    /// Splits the batch: records for the shared space (a new key, a chain
    /// without dead records, the first of its key in the batch) and the
    /// indexes of the others.
    fn sort_batch(&mut self, recs: &[BatchRecord<'_>]) -> Result<(Vec<Placed>, Vec<usize>)> {
        let mut placed = Vec::with_capacity(recs.len());
        let mut later = Vec::new();
        let mut seen: HashSet<HashedKey, Spreading> =
            HashSet::with_capacity_and_hasher(recs.len(), Spreading::default());
        for (index, r) in recs.iter().enumerate() {
            let mut p = self.measure(index, r)?;
            let hash = p.hash;
            if !seen.insert(HashedKey { hash, key: r.key }) {
                later.push(index);
                continue;
            }
            let head = self.read_off(format::hash_top(self.bucket(hash)))?;
            if head != 0 {
                let mut saw_dead = false;
                match self.find_noting_dead(r.key, hash, &mut saw_dead) {
                    Err(TdbError::NoExist) if !saw_dead => {}
                    Err(TdbError::NoExist) | Ok(_) => {
                        later.push(index);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            p.head = head;
            placed.push(p);
        }
        // The walks above ended in NoExist; the stores succeed.
        self.ecode = 0;
        Ok((placed, later))
    }

    /// Writes the placed records into space from the freelist, a few
    /// spaces at most: as many records as the largest free record holds go
    /// into it, so free space is used up before the file grows (as record
    /// by record best-fit stores would), then the rest into space the
    /// allocation grows the file by. Each record is linked into its chain.
    fn write_placed(&mut self, recs: &[BatchRecord<'_>], placed: &[Placed]) -> Result<()> {
        let total = placed.iter().try_fold(0u32, |t, p| {
            RECORD_SIZE
                .checked_add(p.rec_len)
                .and_then(|n| t.checked_add(n))
        });
        if total.is_none() {
            return self.fail(TdbError::Oom);
        }
        let mut heads: HashMap<Offset, Offset, Spreading> =
            HashMap::with_capacity_and_hasher(placed.len(), Spreading::default());
        let mut rest = placed;
        while !rest.is_empty() {
            let room = self.largest_free()?;
            let (count, length) = fitting_prefix(rest, room);
            let (start, space) = self.allocate_exact(length)?;
            self.write_space(recs, &rest[..count], start, space.rec_len, &mut heads)?;
            rest = &rest[count..];
        }
        for (top, first) in heads {
            self.write_off(top, first)?;
        }
        for _ in placed {
            self.increment_seqnum();
        }
        Ok(())
    }

    /// The length of the largest record on the freelist (0 when empty).
    fn largest_free(&mut self) -> Result<u32> {
        let mut largest = 0;
        let mut ptr = self.read_off(format::FREELIST_TOP)?;
        let mut walk = crate::tdb::ChainWalk::new(ptr);
        let mut limit = crate::tdb::WalkLimit::new(self);
        while ptr != 0 {
            limit.step(self, "tdb_store_batch")?;
            let rec = self.read_free_rec(ptr)?;
            largest = largest.max(rec.rec_len);
            ptr = rec.next;
            walk.check(self, ptr)?;
        }
        Ok(largest)
    }

    /// Lays `placed` out from `start` in one write of `space` bytes after the
    /// first record header (the last record gets any bytes beyond what they
    /// need); `heads` has the new first record of every chain touched.
    fn write_space(
        &mut self,
        recs: &[BatchRecord<'_>],
        placed: &[Placed],
        start: Offset,
        space: u32,
        heads: &mut HashMap<Offset, Offset, Spreading>,
    ) -> Result<()> {
        let needed: u32 = placed.iter().map(|p| RECORD_SIZE + p.rec_len).sum();
        let extra = (RECORD_SIZE + space) - needed;
        let mut region = self.take_scratch();
        region.reserve((RECORD_SIZE + space) as usize);
        let mut off = start;
        for (n, p) in placed.iter().enumerate() {
            let r = &recs[p.index];
            let rec_len = if n + 1 == placed.len() {
                p.rec_len + extra
            } else {
                p.rec_len
            };
            let top = format::hash_top(self.bucket(p.hash));
            let next = heads.get(&top).copied().unwrap_or(p.head);
            heads.insert(top, off);
            let header = Record {
                next,
                rec_len,
                key_len: r.key.len() as u32,
                data_len: p.data_len,
                full_hash: p.hash,
                magic: format::MAGIC,
            };
            let begin = region.len();
            region.extend_from_slice(&header.encode(self.order));
            region.extend_from_slice(r.key);
            region.extend_from_slice(r.parts[0]);
            region.extend_from_slice(r.parts[1]);
            let end = begin + (RECORD_SIZE + rec_len) as usize;
            region.resize(end - OFF_SIZE as usize, 0);
            region.extend_from_slice(&self.order.put(RECORD_SIZE + rec_len));
            off += RECORD_SIZE + rec_len;
        }
        let r = self.write(start, &region);
        self.put_scratch(region);
        r
    }
}

/// How many of the first records of `placed` go into a free record of
/// `room` bytes, and the length to allocate for them (their sizes minus the
/// first record header); all of them when not even the first one fits (the
/// allocation then grows the file). The caller made sure that their sizes
/// add up within 32 bits.
fn fitting_prefix(placed: &[Placed], room: u32) -> (usize, u32) {
    let mut length = 0u32;
    for (n, p) in placed.iter().enumerate() {
        let add = if n == 0 {
            p.rec_len
        } else {
            RECORD_SIZE + p.rec_len
        };
        if length.saturating_add(add) > room {
            if n > 0 {
                return (n, length);
            }
            break;
        }
        length += add;
    }
    let all = placed.iter().map(|p| RECORD_SIZE + p.rec_len).sum::<u32>() - RECORD_SIZE;
    (placed.len(), all)
}

/// Key length, value length and the bytes a new record needs after its
/// header (key, value and tailer, aligned), or `None` when they do not fit
/// in 32 bits.
fn record_lengths(lens: [usize; 3]) -> Option<(u32, u32, u32)> {
    let key = u32::try_from(lens[0]).ok()?;
    let data = u32::try_from(lens[1])
        .ok()?
        .checked_add(u32::try_from(lens[2]).ok()?)?;
    let raw = key
        .checked_add(data)?
        .checked_add(OFF_SIZE + ALIGNMENT - 1)?;
    Some((key, data, raw & !(ALIGNMENT - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags;
    use crate::open::OpenOptions;

    /// A fresh database file `name` in a directory of this test run.
    fn temp_db(name: &str, hash_size: i32) -> (Box<Tdb>, std::ffi::CString) {
        let dir = std::env::temp_dir().join(format!("tdb-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        (open(&c, hash_size), c)
    }

    fn open(c: &std::ffi::CStr, hash_size: i32) -> Box<Tdb> {
        let opts = OpenOptions {
            hash_size,
            tdb_flags: flags::NOSYNC,
            open_flags: libc::O_RDWR | libc::O_CREAT,
            mode: 0o600,
            ..Default::default()
        };
        Tdb::open(Some(c), opts).unwrap()
    }

    #[test]
    fn lengths_are_aligned_and_checked() {
        assert_eq!(record_lengths([3, 24, 5]), Some((3, 29, 36)));
        assert_eq!(record_lengths([4, 0, 0]), Some((4, 0, 8)));
        assert_eq!(record_lengths([usize::MAX, 0, 0]), None);
        assert_eq!(record_lengths([u32::MAX as usize, 1, 0]), None);
    }

    #[test]
    fn a_batch_reads_back_as_single_stores_would() {
        let (mut t, c) = temp_db("a.tdb", 7);
        t.store(b"old", &[b"1"], StoreFlag::Replace).unwrap();
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("k{i}").into_bytes()).collect();
        let mut recs: Vec<BatchRecord> = keys
            .iter()
            .map(|k| BatchRecord {
                key: k,
                parts: [b"head", k],
            })
            .collect();
        recs.push(BatchRecord {
            key: b"old",
            parts: [b"new", b""],
        });
        recs.push(BatchRecord {
            key: b"k7",
            parts: [b"again", b""],
        });
        t.store_batch(&recs).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let want = if i == 7 {
                b"again".to_vec()
            } else {
                [&b"head"[..], k].concat()
            };
            assert_eq!(t.fetch(k).unwrap(), want, "key {i}");
        }
        assert_eq!(t.fetch(b"old").unwrap(), b"new");
        let mut count = 0;
        let mut visit = |_: &mut Tdb, _: &[u8], _: &[u8]| {
            count += 1;
            false
        };
        t.traverse_read(Some(&mut visit)).unwrap();
        assert_eq!(count, 51);
        // The file is consistent: deleting and storing again still works.
        t.check(None).unwrap();
        t.delete(b"k3").unwrap();
        t.store(b"k3", &[b"x"], StoreFlag::Insert).unwrap();
        assert_eq!(t.fetch(b"k3").unwrap(), b"x");
        t.check(None).unwrap();
        t.close().unwrap();
        let _ = std::fs::remove_file(c.to_str().unwrap());
    }

    /// Keys and values as a push would send them.
    fn records<'a>(keys: &'a [Vec<u8>], value: &'static [u8]) -> Vec<BatchRecord<'a>> {
        keys.iter()
            .map(|k| BatchRecord {
                key: k,
                parts: [value, k],
            })
            .collect()
    }

    fn count(t: &mut Tdb) -> usize {
        let mut n = 0;
        let mut visit = |_: &mut Tdb, _: &[u8], _: &[u8]| {
            n += 1;
            false
        };
        t.traverse_read(Some(&mut visit)).unwrap();
        n
    }

    #[test]
    fn after_a_wipe_batches_replace_keys_stored_before_them() {
        let (mut t, c) = temp_db("c.tdb", 13);
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("k{i}").into_bytes()).collect();
        t.store(b"k5", &[b"before"], StoreFlag::Replace).unwrap();
        t.transaction_start().unwrap();
        t.wipe_all().unwrap();
        assert!(t.transaction.as_ref().unwrap().refill.is_some());
        t.store_batch(&records(&keys[..50], b"one")).unwrap();
        t.store_batch(&records(&keys[50..100], b"one")).unwrap();
        assert!(t.transaction.as_ref().unwrap().refill.is_some());
        // A later batch with keys of an earlier one replaces them (one by
        // one, which ends what the batches knew).
        t.store_batch(&records(&keys[50..150], b"two")).unwrap();
        assert!(t.transaction.as_ref().unwrap().refill.is_none());
        t.wipe_all().unwrap();
        t.store_batch(&records(&keys[..100], b"one")).unwrap();
        t.store_batch(&records(&keys[100..150], b"two")).unwrap();
        // A store outside a batch ends it too...
        t.store(b"k170", &[b"single"], StoreFlag::Replace).unwrap();
        t.store_batch(&records(&keys[50..100], b"two")).unwrap();
        t.delete(b"k0").unwrap();
        assert!(t.transaction.as_ref().unwrap().refill.is_none());
        // ...so the next batch finds that key and replaces it.
        t.store_batch(&records(&keys[160..200], b"three")).unwrap();
        t.transaction_commit().unwrap();
        assert_eq!(count(&mut t), 189);
        for (i, k) in keys.iter().enumerate() {
            let want: &[u8] = match i {
                0 => {
                    assert!(matches!(t.fetch(k), Err(TdbError::NoExist)));
                    continue;
                }
                1..=49 => b"one",
                50..=149 => b"two",
                150..=159 => {
                    assert!(matches!(t.fetch(k), Err(TdbError::NoExist)));
                    continue;
                }
                _ => b"three",
            };
            assert_eq!(t.fetch(k).unwrap(), [want, k].concat(), "key {i}");
        }
        t.check(None).unwrap();
        t.close().unwrap();
        let _ = std::fs::remove_file(c.to_str().unwrap());
    }

    #[test]
    fn a_wiped_file_refilled_in_a_transaction_survives_reopening() {
        let (mut t, c) = temp_db("b.tdb", 131);
        for i in 0..300u32 {
            let k = format!("before{i}");
            t.store(k.as_bytes(), &[&[1u8; 40]], StoreFlag::Replace)
                .unwrap();
        }
        let keys: Vec<Vec<u8>> = (0..2000)
            .map(|i| format!("after{i}").into_bytes())
            .collect();
        t.transaction_start().unwrap();
        t.wipe_all().unwrap();
        for chunk in keys.chunks(300) {
            let recs: Vec<BatchRecord> = chunk
                .iter()
                .map(|k| BatchRecord {
                    key: k,
                    parts: [&[9u8; 24], k],
                })
                .collect();
            t.store_batch(&recs).unwrap();
        }
        t.transaction_commit().unwrap();
        t.close().unwrap();
        let mut t = open(&c, 131);
        t.check(None).unwrap();
        assert!(matches!(t.fetch(b"before3"), Err(TdbError::NoExist)));
        for k in &keys {
            assert_eq!(t.fetch(k).unwrap(), [&[9u8; 24][..], k].concat());
        }
        t.close().unwrap();
        let _ = std::fs::remove_file(c.to_str().unwrap());
    }
}
