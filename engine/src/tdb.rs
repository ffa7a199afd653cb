//! The database handle and its record operations: fetch, parse, exists, store,
//! append, delete, dead-record handling, wipe, repack and the sequence number.

use crate::error::{Result, TdbError};
use crate::format::{self, ByteOrder, Offset, Record, FREELIST_TOP, RECORD_SIZE, SEQNUM_OFS};
use crate::guard::{Held, Release};
use crate::hash::HashFunction;
use crate::io::Storage;
use crate::lock::{AllRecordLock, LockKind, NestedLock};
use crate::mutex::MutexArea;
use crate::open::{DebugLevel, Logger};
use crate::transaction::Transaction;
use crate::traverse::TraverseLock;
use std::ffi::CString;
use std::fs::File;
use std::sync::Arc;

/// How `store` treats an existing or missing key (TDB_REPLACE, TDB_INSERT, TDB_MODIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFlag {
    /// Insert or overwrite.
    Replace = 1,
    /// Fail with `TdbError::Exists` if the key is present.
    Insert = 2,
    /// Fail with `TdbError::NoExist` if the key is absent.
    Modify = 3,
}

impl StoreFlag {
    /// Maps the C flag value; anything else is treated as TDB_REPLACE, as Samba does.
    pub fn from_c(flag: i32) -> StoreFlag {
        match flag {
            2 => StoreFlag::Insert,
            3 => StoreFlag::Modify,
            _ => StoreFlag::Replace,
        }
    }
}

/// An open tdb database.
pub struct Tdb {
    pub(crate) name: CString,
    pub(crate) file: Option<File>,
    pub(crate) storage: Storage,
    /// Bytes of the database (after any mutex area) currently known and mapped.
    pub(crate) map_size: u32,
    /// Size of the mutex area in front of the database, or 0.
    pub(crate) hdr_ofs: u32,
    pub(crate) read_only: bool,
    pub(crate) traverse_read: u32,
    pub(crate) traverse_write: u32,
    pub(crate) allrecord: AllRecordLock,
    pub(crate) lockrecs: Vec<NestedLock>,
    pub(crate) mutexes: Option<MutexArea>,
    /// Code of the last error (0 = none yet).
    pub(crate) ecode: i32,
    pub(crate) hash_size: u32,
    pub(crate) feature_flags: u32,
    pub(crate) flags: u32,
    /// Positions of record walks: [0] is the firstkey/nextkey walk, then one per
    /// traversal in progress.
    pub(crate) travlocks: Vec<TraverseLock>,
    pub(crate) device: u64,
    pub(crate) inode: u64,
    pub(crate) logger: Option<Arc<dyn Logger>>,
    pub(crate) hash: HashFunction,
    pub(crate) open_flags: i32,
    /// The open transaction: while it is set, reads and writes go through it.
    pub(crate) transaction: Option<Box<Transaction>>,
    /// A transaction is taking its locks: they count as the transaction's, but
    /// I/O (including a crash recovery those locks may run) still goes to the file.
    pub(crate) transaction_starting: bool,
    pub(crate) page_size: u32,
    pub(crate) max_dead: i32,
    pub(crate) interrupt: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    pub(crate) order: ByteOrder,
    /// A buffer reused by writes assembled before they go out (a batch's
    /// records, pieces of recovery data): warm memory instead of a fresh
    /// allocation each time; never holds more than `SCRATCH_KEPT` between uses.
    pub(crate) scratch: Vec<u8>,
}

/// The most capacity `Tdb::scratch` keeps between uses.
pub(crate) const SCRATCH_KEPT: usize = 512 << 10;

impl Tdb {
    /// The scratch buffer, empty, lent for one assembled write.
    pub(crate) fn take_scratch(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        b
    }

    /// Takes the scratch buffer back, unless it grew past `SCRATCH_KEPT`.
    pub(crate) fn put_scratch(&mut self, b: Vec<u8>) {
        if b.capacity() <= SCRATCH_KEPT {
            self.scratch = b;
        }
    }
}

/// Detects a loop in a chain being walked (Brent's algorithm: remember a pointer,
/// compare each next pointer with it, and move it forward at doubling intervals),
/// without reading anything beyond the walk itself.
pub(crate) struct ChainWalk {
    saved: Offset,
    power: u32,
    steps: u32,
}

impl ChainWalk {
    /// Starts a walk whose first pointer is `start`.
    #[inline]
    pub(crate) fn new(start: Offset) -> ChainWalk {
        ChainWalk {
            saved: start,
            power: 1,
            steps: 0,
        }
    }

    /// Checks the next pointer; Corrupt when the chain loops.
    #[inline]
    pub(crate) fn check(&mut self, tdb: &mut Tdb, next: Offset) -> Result<()> {
        if next != 0 && next == self.saved {
            tdb.ecode = TdbError::Corrupt.code();
            tdb.log(DebugLevel::Error, "tdb_chainwalk_check: circular chain\n");
            return Err(TdbError::Corrupt);
        }
        self.steps += 1;
        if self.steps == self.power {
            self.saved = next;
            self.power = self.power.saturating_mul(2);
            self.steps = 0;
        }
        Ok(())
    }
}

/// Bounds a walk by the number of records the database can hold, so that a
/// damaged list that loops in a way the walk itself cannot see ends in an error
/// instead of running forever.
pub(crate) struct WalkLimit(u32);

impl WalkLimit {
    /// A limit for walking `tdb` as it is now.
    pub(crate) fn new(tdb: &Tdb) -> WalkLimit {
        WalkLimit(tdb.map_size / RECORD_SIZE + 1)
    }

    /// Counts one step; Corrupt (logged as `what`) once there were too many.
    pub(crate) fn step(&mut self, tdb: &mut Tdb, what: &str) -> Result<()> {
        if self.0 == 0 {
            tdb.ecode = TdbError::Corrupt.code();
            tdb.log(DebugLevel::Error, &format!("{}: loop detected\n", what));
            return Err(TdbError::Corrupt);
        }
        self.0 -= 1;
        Ok(())
    }
}

impl Tdb {
    /// Sends a message to the logger, if any.
    pub(crate) fn log(&self, level: DebugLevel, message: &str) {
        if let Some(logger) = &self.logger {
            logger.log(self, level, message);
        }
    }

    /// Records `e` as the last error and returns it.
    pub(crate) fn fail<T>(&mut self, e: TdbError) -> Result<T> {
        self.ecode = e.code();
        Err(e)
    }

    /// Records `e` as the last error, logs `message` at `level` and returns `e`.
    #[cold]
    pub(crate) fn fail_logged<T>(
        &mut self,
        e: TdbError,
        level: DebugLevel,
        message: std::fmt::Arguments<'_>,
    ) -> Result<T> {
        self.ecode = e.code();
        self.log(level, &message.to_string());
        Err(e)
    }

    /// Keeps the last error code of a failed public call.
    pub(crate) fn track<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.ecode = e.code();
        }
        r
    }

    /// Finds the live record of `key` in its chain (caller holds the chain lock).
    #[inline]
    pub(crate) fn find(&mut self, key: &[u8], hash: u32) -> Result<(Offset, Record)> {
        self.find_noting_dead(key, hash, &mut false)
    }

    /// `find`, also setting `saw_dead` when it passes a dead record (so a walk that
    /// ends in NoExist tells whether the chain holds any).
    pub(crate) fn find_noting_dead(
        &mut self,
        key: &[u8],
        hash: u32,
        saw_dead: &mut bool,
    ) -> Result<(Offset, Record)> {
        let top = format::hash_top(self.bucket(hash));
        let mut rec_ptr = self.read_off(top)?;
        let mut walk = ChainWalk::new(rec_ptr);
        while rec_ptr != 0 {
            let rec = self.read_rec(rec_ptr)?;
            if rec.is_dead() {
                *saw_dead = true;
            } else if rec.full_hash == hash && rec.key_len as usize == key.len() {
                let same = self.with_bytes(rec_ptr + RECORD_SIZE, rec.key_len, |k| k == key)?;
                if same {
                    return Ok((rec_ptr, rec));
                }
            }
            rec_ptr = rec.next;
            walk.check(self, rec_ptr)?;
        }
        self.fail(TdbError::NoExist)
    }

    /// Locks the chain of `hash` and finds `key`; on success the guard holding the
    /// chain lock comes back with the record, on failure nothing stays locked.
    pub(crate) fn find_lock_hash(
        &mut self,
        key: &[u8],
        hash: u32,
        kind: LockKind,
    ) -> Result<(Held<'_>, Offset, Record)> {
        let list = self.bucket(hash) as i64;
        let mut chain = self.hold_list(list, kind)?;
        let (off, rec) = chain.find(key, hash)?;
        Ok((chain, off, rec))
    }

    /// Returns a copy of the value stored under `key`, or `NoExist`.
    pub fn fetch(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        let r = self.fetch_inner(key);
        self.track(r)
    }

    fn fetch_inner(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        let hash = self.hash.hash(key);
        let (mut chain, off, rec) = self.find_lock_hash(key, hash, LockKind::Read)?;
        let data_off = chain.data_offset(off, &rec)?;
        chain.alloc_read(data_off, rec.data_len)
    }

    /// Where the value of the record at `off` starts; Corrupt when the record's
    /// key length puts it beyond the 32-bit file.
    #[inline]
    pub(crate) fn data_offset(&mut self, off: Offset, rec: &Record) -> Result<Offset> {
        match off
            .checked_add(RECORD_SIZE)
            .and_then(|o| o.checked_add(rec.key_len))
        {
            Some(o) => Ok(o),
            None => self.fail(TdbError::Corrupt),
        }
    }

    /// Calls `parser` with the value in place (no copy) under a chain read lock.
    pub fn parse_record<R>(&mut self, key: &[u8], parser: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let hash = self.hash.hash(key);
        let r = match self.find_lock_hash(key, hash, LockKind::Read) {
            Ok((mut chain, off, rec)) => chain
                .data_offset(off, &rec)
                .and_then(|data_off| chain.with_bytes(data_off, rec.data_len, parser)),
            Err(_) => Err(TdbError::NoExist),
        };
        self.track(r)
    }

    fn exists_hash(&mut self, key: &[u8], hash: u32) -> bool {
        self.find_lock_hash(key, hash, LockKind::Read).is_ok()
    }

    /// Whether `key` is present.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        let hash = self.hash.hash(key);
        self.exists_hash(key, hash)
    }

    /// Removes `key`; `NoExist` when it was absent.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        let hash = self.hash.hash(key);
        let r = self.delete_hash(key, hash);
        self.track(r)
    }

    /// Marks the record of `key` dead, then trims the chain's dead records.
    fn delete_hash(&mut self, key: &[u8], hash: u32) -> Result<()> {
        if self.read_only || self.traverse_read > 0 {
            return self.fail(TdbError::Rdonly);
        }
        let (mut chain, off, mut rec) = self.find_lock_hash(key, hash, LockKind::Write)?;
        rec.magic = format::DEAD_MAGIC;
        let mut r = chain.write_rec(off, &rec);
        if r.is_ok() {
            chain.increment_seqnum();
            r = chain.trim_dead(hash);
        }
        if chain.release().is_err() {
            chain.log(
                DebugLevel::Warning,
                "tdb_delete: WARNING tdb_unlock failed!\n",
            );
        }
        r
    }

    /// Frees dead records of the chain beyond the max_dead allowance, skipping any
    /// a traversal sits on (tdb_trim_dead).
    pub(crate) fn trim_dead(&mut self, hash: u32) -> Result<()> {
        let mut last_ptr = format::hash_top(self.bucket(hash));
        let mut walk = ChainWalk::new(last_ptr);
        let mut rec_ptr = self.read_off(last_ptr)?;
        // The freelist lock, taken at the first record to free.
        let mut db = Held::empty(self);
        let mut num_dead = 0;
        while rec_ptr != 0 {
            let rec = db.read_rec(rec_ptr)?;
            let next = rec.next;
            let mut deleted = false;
            if rec.is_dead() {
                num_dead += 1;
                if num_dead > db.max_dead {
                    if !db.is_armed() {
                        db.lock(-1, LockKind::Write)?;
                        db.arm(Release::List {
                            list: -1,
                            kind: LockKind::Write,
                        });
                    }
                    deleted = db.del_dead(last_ptr, rec_ptr, rec)?;
                }
            }
            if !deleted {
                last_ptr = rec_ptr;
                walk.check(&mut db, next)?;
            }
            rec_ptr = next;
        }
        Ok(())
    }

    /// Unlinks and frees one dead record unless a traversal holds it.
    fn del_dead(&mut self, last_ptr: Offset, rec_ptr: Offset, rec: Record) -> Result<bool> {
        if self.write_lock_record(rec_ptr).is_err() {
            // Someone is traversing here: leave it dead.
            return Ok(false);
        }
        self.write_unlock_record(rec_ptr)?;
        self.write_off(last_ptr, rec.next)?;
        self.free_record(rec_ptr, rec)?;
        Ok(true)
    }

    /// The best-fitting dead record of the chain for `length` bytes, with the
    /// offset of the pointer to it (tdb_find_dead).
    pub(crate) fn find_dead(
        &mut self,
        hash: u32,
        length: u32,
    ) -> Result<Option<(Offset, Record, Offset)>> {
        let length = length.saturating_add(format::OFF_SIZE);
        let mut last_ptr = format::hash_top(self.bucket(hash));
        let mut rec_ptr = self.read_off(last_ptr)?;
        let mut walk = ChainWalk::new(rec_ptr);
        let mut best: Option<(Offset, Record, Offset)> = None;
        while rec_ptr != 0 {
            let rec = self.read_rec(rec_ptr)?;
            if rec.is_dead()
                && rec.rec_len >= length
                && best.is_none_or(|(_, b, _)| rec.rec_len < b.rec_len)
            {
                best = Some((rec_ptr, rec, last_ptr));
            }
            last_ptr = rec_ptr;
            rec_ptr = rec.next;
            walk.check(self, rec_ptr)?;
        }
        Ok(best)
    }

    /// Overwrites the value of `key` in place when it fits (tdb_update_hash).
    /// `Ok(true)` when done; `Ok(false)` when the record exists but is too small.
    fn update_hash(
        &mut self,
        key: &[u8],
        hash: u32,
        parts: &[&[u8]],
        total: u32,
        saw_dead: &mut bool,
    ) -> Result<bool> {
        let (off, mut rec) = self.find_noting_dead(key, hash, saw_dead)?;
        let data_off = self.data_offset(off, &rec)?;
        if rec.data_len == total {
            // Storing what is already there is common (an ldb reindex): skip the write.
            let same = self.with_bytes(data_off, rec.data_len, |d| {
                let mut pos = 0;
                parts.iter().all(|p| {
                    let ok = d[pos..pos + p.len()] == **p;
                    pos += p.len();
                    ok
                })
            })?;
            if same {
                return Ok(true);
            }
        }
        if (rec.rec_len as u64) < key.len() as u64 + total as u64 + format::OFF_SIZE as u64 {
            return Ok(false);
        }
        // The record holds key and value (checked above), so these offsets fit.
        let mut pos = data_off;
        for p in parts {
            self.write(pos, p)?;
            pos += p.len() as u32;
        }
        if total != rec.data_len {
            rec.data_len = total;
            self.write_rec(off, &rec)?;
        }
        Ok(true)
    }

    /// The store itself, with the chain write lock held (_tdb_storev).
    ///
    /// Walks the chain as few times as the result allows: when a walk has shown
    /// the key absent, the delete that would follow is skipped (it could only find
    /// nothing, and the chain lock is held), and when it has also shown the chain
    /// free of dead records, so is the purge of dead records before allocating.
    pub(crate) fn store_locked(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        flag: StoreFlag,
        hash: u32,
    ) -> Result<()> {
        let mut total: u32 = 0;
        for p in parts {
            total = match u32::try_from(p.len())
                .ok()
                .and_then(|l| total.checked_add(l))
            {
                Some(t) => t,
                None => return self.fail(TdbError::Oom),
            };
        }
        let rec_len = match u32::try_from(key.len())
            .ok()
            .and_then(|k| k.checked_add(total))
        {
            Some(l) => l,
            None => return self.fail(TdbError::Oom),
        };
        let mut saw_dead = false;
        let mut chain_known_clean = false;
        if flag == StoreFlag::Insert {
            match self.find_noting_dead(key, hash, &mut saw_dead) {
                Ok(_) => return self.fail(TdbError::Exists),
                Err(TdbError::NoExist) => chain_known_clean = !saw_dead,
                Err(e) => return Err(e),
            }
            self.ecode = 0;
        } else {
            match self.update_hash(key, hash, parts, total, &mut saw_dead) {
                Ok(true) => {
                    self.increment_seqnum();
                    return Ok(());
                }
                Ok(false) => {
                    // Too small: delete the old record first, which reduces
                    // fragmentation; a missing key is fine.
                    self.ecode = 0;
                    let _ = self.delete_hash(key, hash);
                }
                Err(TdbError::NoExist) if flag == StoreFlag::Modify => {
                    return self.fail(TdbError::NoExist)
                }
                Err(TdbError::NoExist) => {
                    // Samba's store runs its (failing) delete here, which leaves
                    // tdb_error() at NOEXIST even though the store succeeds.
                    chain_known_clean = !saw_dead;
                    self.ecode = TdbError::NoExist.code();
                }
                Err(e) => return Err(e),
            }
        }
        let (rec_ptr, mut rec) = self.allocate(hash, rec_len, chain_known_clean)?;
        let top = format::hash_top(self.bucket(hash));
        rec.next = self.read_off(top)?;
        rec.key_len = key.len() as u32;
        rec.data_len = total;
        rec.full_hash = hash;
        rec.magic = format::MAGIC;
        self.write_rec(rec_ptr, &rec)?;
        let mut pos = rec_ptr + RECORD_SIZE;
        self.write(pos, key)?;
        pos += key.len() as u32;
        for p in parts {
            if !p.is_empty() {
                self.write(pos, p)?;
                pos += p.len() as u32;
            }
        }
        self.write_off(top, rec_ptr)?;
        self.increment_seqnum();
        Ok(())
    }

    /// Stores the concatenation of `parts` under `key` (tdb_storev).
    pub fn store(&mut self, key: &[u8], parts: &[&[u8]], flag: StoreFlag) -> Result<()> {
        if self.read_only || self.traverse_read > 0 {
            return self.fail(TdbError::Rdonly);
        }
        let hash = self.hash.hash(key);
        let list = self.bucket(hash) as i64;
        let r = match self.hold_list(list, LockKind::Write) {
            Ok(mut chain) => chain.store_locked(key, parts, flag, hash),
            Err(e) => return Err(e),
        };
        self.track(r)
    }

    /// Appends `data` to the value of `key` (creating it when absent).
    pub fn append(&mut self, key: &[u8], data: &[u8]) -> Result<()> {
        let hash = self.hash.hash(key);
        let list = self.bucket(hash) as i64;
        let r = match self.hold_list(list, LockKind::Write) {
            Ok(mut chain) => {
                let old = chain.fetch_inner(key).unwrap_or_default();
                chain.store_locked(key, &[&old, data], StoreFlag::Replace, hash)
            }
            Err(e) => return Err(e),
        };
        self.track(r)
    }

    /// Adds `[offset, offset+length)` to the freelist when it can hold a record.
    fn free_region(&mut self, offset: Offset, length: i64) -> Result<()> {
        if length <= RECORD_SIZE as i64 {
            return Ok(());
        }
        if length + offset as i64 > self.map_size as i64 {
            self.log(
                DebugLevel::Fatal,
                "tdb_free_region: adding region beyond end of file\n",
            );
            return Err(TdbError::Io);
        }
        let rec = Record {
            rec_len: (length - RECORD_SIZE as i64) as u32,
            ..Record::default()
        };
        self.free_record(offset, rec).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_free_region: failed to add free record\n",
            );
        })
    }

    /// Deletes every record and returns all space to the freelist.
    pub fn wipe_all(&mut self) -> Result<()> {
        let mut all = self.hold_allrecord(LockKind::Write)?;
        let r = all.wipe_all_locked();
        if r.is_err() {
            drop(all);
            return self.track(r);
        }
        if all.release().is_err() {
            all.log(DebugLevel::Fatal, "tdb_wipe_all: failed to unlock\n");
            return Err(TdbError::Lock);
        }
        drop(all);
        if let Some(t) = self.transaction.as_mut() {
            t.refill = Some(crate::batch::Refill::default());
        }
        Ok(())
    }

    fn wipe_all_locked(&mut self) -> Result<()> {
        // Keep the recovery area: losing it would grow the file at every wipe
        // inside a transaction.
        let recovery_head = self.read_off(format::RECOVERY_HEAD_OFS).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_wipe_all: failed to read recovery head\n",
            );
        })?;
        let mut recovery_size: i64 = 0;
        if recovery_head != 0 {
            let rec = self.read_rec_raw(recovery_head).inspect_err(|_| {
                self.log(
                    DebugLevel::Fatal,
                    "tdb_wipe_all: failed to read recovery record\n",
                );
            })?;
            recovery_size = rec.rec_len as i64 + RECORD_SIZE as i64;
        }
        for i in 0..self.hash_size {
            self.write_off(format::hash_top(i), 0).inspect_err(|_| {
                self.log(
                    DebugLevel::Fatal,
                    &format!("tdb_wipe_all: failed to write hash {}\n", i),
                );
            })?;
        }
        self.write_off(FREELIST_TOP, 0).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_wipe_all: failed to write freelist\n",
            );
        })?;
        let start = format::data_start(self.hash_size);
        if recovery_size == 0 {
            self.free_region(start, self.map_size as i64 - start as i64)?;
        } else {
            self.free_region(start, recovery_head as i64 - start as i64)?;
            let after = recovery_head as i64 + recovery_size;
            self.free_region(after as u32, self.map_size as i64 - after)?;
        }
        self.increment_seqnum_nonblock();
        Ok(())
    }

    /// Rewrites the database compactly through a temporary in-memory copy, in a transaction.
    pub fn repack(&mut self) -> Result<()> {
        if let Err(e) = self.transaction_start() {
            self.log(
                DebugLevel::Fatal,
                "tdb_repack: Failed to start transaction\n",
            );
            return Err(e);
        }
        let options = crate::open::OpenOptions {
            hash_size: self.hash_size as i32,
            tdb_flags: crate::flags::INTERNAL,
            open_flags: libc::O_RDWR | libc::O_CREAT,
            ..Default::default()
        };
        let mut tmp = match Tdb::open(Some(c"tmpdb"), options) {
            Ok(t) => t,
            Err(_) => {
                self.log(DebugLevel::Fatal, "tdb_repack: Failed to create tmp_db\n");
                let _ = self.transaction_cancel();
                return Err(TdbError::Oom);
            }
        };
        let step = |this: &mut Tdb, tmp: &mut Tdb| -> std::result::Result<(), &'static str> {
            let mut failed = false;
            let mut copy_out = |_: &mut Tdb, k: &[u8], v: &[u8]| {
                if tmp.store(k, &[v], StoreFlag::Insert).is_err() {
                    failed = true;
                    return true;
                }
                false
            };
            this.traverse_read(Some(&mut copy_out))
                .map_err(|_| "Failed to traverse copying out")?;
            if failed {
                return Err("Error during traversal");
            }
            this.wipe_all().map_err(|_| "Failed to wipe database")?;
            let mut copy_back = |_: &mut Tdb, k: &[u8], v: &[u8]| {
                if this.store(k, &[v], StoreFlag::Insert).is_err() {
                    failed = true;
                    return true;
                }
                false
            };
            tmp.traverse_read(Some(&mut copy_back))
                .map_err(|_| "Failed to traverse copying back")?;
            if failed {
                return Err("Error during second traversal");
            }
            Ok(())
        };
        if let Err(why) = step(self, &mut tmp) {
            self.log(DebugLevel::Fatal, &format!("tdb_repack: {}\n", why));
            let _ = self.transaction_cancel();
            let _ = tmp.close();
            let e = if self.ecode != 0 {
                self.ecode
            } else {
                TdbError::Io.code()
            };
            return Err(crate::error::from_code(e));
        }
        let _ = tmp.close();
        if let Err(e) = self.transaction_commit() {
            self.log(DebugLevel::Fatal, "tdb_repack: Failed to commit\n");
            return Err(e);
        }
        Ok(())
    }

    /// Turns on TDB_SEQNUM.
    pub fn enable_seqnum(&mut self) {
        self.flags |= crate::flags::SEQNUM;
    }

    /// The sequence number stored in the header.
    pub fn get_seqnum(&mut self) -> i32 {
        // Mapped, the word is read as stored (Samba reads it atomically, unconverted).
        if let Some(b) = self.mapped_bytes(SEQNUM_OFS, 4) {
            return u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as i32;
        }
        self.read_off(SEQNUM_OFS).unwrap_or(0) as i32
    }

    /// Increments the sequence number without taking a lock (tdb_increment_seqnum_nonblock).
    pub fn increment_seqnum_nonblock(&mut self) {
        if self.flags & crate::flags::SEQNUM == 0 {
            return;
        }
        let seqnum = self.read_off(SEQNUM_OFS).unwrap_or(0);
        let _ = self.write_off(SEQNUM_OFS, seqnum.wrapping_add(1));
    }

    /// Increments the sequence number after a change (atomically in the map, or
    /// under the one-byte seqnum lock).
    pub(crate) fn increment_seqnum(&mut self) {
        if self.flags & crate::flags::SEQNUM == 0 {
            return;
        }
        if self.transaction.is_some() {
            self.increment_seqnum_nonblock();
            return;
        }
        if let Storage::Mapped(m) = &self.storage {
            m.atomic_increment(SEQNUM_OFS as usize);
            return;
        }
        if self
            .nest_lock(
                SEQNUM_OFS,
                LockKind::Write,
                crate::lock::LockFlags::WAIT_PROBE,
            )
            .is_err()
        {
            return;
        }
        let mut seqnum = Held::adopt(
            self,
            Release::Nested {
                off: SEQNUM_OFS,
                kind: LockKind::Write,
            },
        );
        seqnum.increment_seqnum_nonblock();
    }
}
