//! Walking records: traverse (write-locking), traverse_read, traverse_chain,
//! traverse_key_chain, firstkey/nextkey.
//!
//! A walk holds the lock of the chain it is in only while moving; while the
//! caller's function runs it holds a read lock on the record's own offset, so
//! that a delete of that record (by anyone) leaves it dead instead of freeing it.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, RECORD_SIZE};
use crate::guard::{Held, Release};
use crate::lock::{LockFlags, LockKind};
use crate::open::DebugLevel;
use crate::tdb::{ChainWalk, Tdb};

/// A traversal callback: gets the database, key and value; returns true to stop.
pub type TraverseFn<'a> = &'a mut dyn FnMut(&mut Tdb, &[u8], &[u8]) -> bool;

/// Where a walk is: the record it sits on (0 = none yet) and the chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraverseLock {
    pub off: Offset,
    pub list: u32,
    pub kind: LockKind,
    /// Records stepped over so far; more than the file can hold means a loop.
    pub steps: u32,
}

/// The key of the record a firstkey/nextkey step landed on (`rec`, at the
/// walk's position); the step's chain lock is released, a failure to do so
/// logged with `unlock_failed`.
fn walk_key(mut chain: Held<'_>, rec: Record, unlock_failed: &str) -> Result<Vec<u8>> {
    let off = chain.travlocks[0].off;
    let key = chain
        .record_body(off)
        .and_then(|body| chain.alloc_read(body, rec.key_len));
    if chain.release().is_err() {
        chain.log(DebugLevel::Fatal, unlock_failed);
    }
    key
}

impl Tdb {
    /// Moves walk `idx` to the next live record, returning the guard of that
    /// record's chain lock and the record, which is read-locked for the walk;
    /// `Ok(None)` at the end (tdb_next_lock).
    fn next_lock(&mut self, idx: usize) -> Result<Option<(Held<'_>, Record)>> {
        let mut want_next = self.travlocks[idx].off != 0;
        while self.travlocks[idx].list < self.hash_size {
            let t = self.travlocks[idx];
            if t.off == 0 && t.list != 0 {
                // Skip empty chains without locking them (the first chain is always
                // locked, which orders us after other writers).
                let list = self.next_nonempty_chain(t.list);
                self.travlocks[idx].list = list;
                if list == self.hash_size {
                    continue;
                }
            }
            let t = self.travlocks[idx];
            let release = Release::List {
                list: t.list as i64,
                kind: t.kind,
            };
            let found = {
                let mut chain = self.hold_list(t.list as i64, t.kind)?;
                match chain.next_in_chain(idx, want_next) {
                    Ok(Some(rec)) => {
                        // Handed to the caller below, with a guard of its own.
                        let _ = chain.keep();
                        Some(rec)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        chain.travlocks[idx].off = 0;
                        if chain.release().is_err() {
                            chain.log(
                                DebugLevel::Fatal,
                                "tdb_next_lock: On error unlock failed!\n",
                            );
                        }
                        return Err(e);
                    }
                }
            };
            if let Some(rec) = found {
                return Ok(Some((Held::adopt(self, release), rec)));
            }
            want_next = false;
            self.travlocks[idx].list += 1;
        }
        self.ecode = 0;
        Ok(None)
    }

    /// With the chain locked, steps walk `idx` to the next live record in it.
    fn next_in_chain(&mut self, idx: usize, want_next: bool) -> Result<Option<Record>> {
        let t = self.travlocks[idx];
        let mut off = if t.off == 0 {
            self.read_off(format::hash_top(t.list))?
        } else {
            self.unlock_record(t.off)?;
            t.off
        };
        self.travlocks[idx].off = off;
        if want_next {
            let rec = self.read_rec(off)?;
            off = rec.next;
            self.travlocks[idx].off = off;
        }
        while off != 0 {
            // A chain cannot hold more records than the file: more steps than
            // that (over the whole walk) means the chain loops.
            let steps = self.travlocks[idx].steps.saturating_add(1);
            self.travlocks[idx].steps = steps;
            if steps > self.map_size / RECORD_SIZE + 1 {
                self.ecode = TdbError::Corrupt.code();
                self.log(DebugLevel::Fatal, "tdb_next_lock: loop detected.\n");
                return Err(TdbError::Corrupt);
            }
            let rec = self.read_rec(off)?;
            if off == rec.next {
                self.ecode = TdbError::Corrupt.code();
                self.log(DebugLevel::Fatal, "tdb_next_lock: loop detected.\n");
                return Err(TdbError::Corrupt);
            }
            if !rec.is_dead() {
                self.lock_record(off)?;
                return Ok(Some(rec));
            }
            off = rec.next;
            self.travlocks[idx].off = off;
        }
        Ok(None)
    }

    /// The first chain at or after `list` whose head is non-zero (read unlocked),
    /// or hash_size.
    pub(crate) fn next_nonempty_chain(&mut self, list: u32) -> u32 {
        if let Some(t) = &self.transaction {
            return t.next_nonempty_chain(list, self.hash_size);
        }
        let mut h = list;
        while h < self.hash_size {
            match self.read_off(format::hash_top(h)) {
                Ok(0) => h += 1,
                _ => break,
            }
        }
        h
    }

    /// Reads key and value of the record at `off` into `buf` (cleared first),
    /// bounds-checked before anything is allocated.
    fn read_key_and_value(&mut self, off: Offset, rec: &Record, buf: &mut Vec<u8>) -> Result<()> {
        let Some(full) = rec.full_len() else {
            return self.fail(TdbError::Corrupt);
        };
        let body = self.record_body(off)?;
        buf.clear();
        // Bounds first: a damaged length must not turn into a huge allocation.
        self.oob(body, full, false)?;
        if buf.try_reserve(full as usize).is_err() {
            return self.fail(TdbError::Oom);
        }
        buf.resize(full as usize, 0);
        self.read(body, buf)
    }

    /// The offset just after the header of the record at `off`; Corrupt when that
    /// lies beyond the 32-bit file.
    #[inline]
    pub(crate) fn record_body(&mut self, off: Offset) -> Result<Offset> {
        match off.checked_add(RECORD_SIZE) {
            Some(body) => Ok(body),
            None => self.fail(TdbError::Corrupt),
        }
    }

    /// The common body of traverse and traverse_read. The walk's guard drops its
    /// record lock and its `travlocks` entry however the walk ends, a panicking
    /// callback included.
    fn traverse_internal(&mut self, mut f: Option<TraverseFn<'_>>, kind: LockKind) -> Result<i32> {
        self.travlocks.push(TraverseLock {
            off: 0,
            list: 0,
            kind,
            steps: 0,
        });
        let idx = self.travlocks.len() - 1;
        let mut walk = Held::adopt(self, Release::Walk(idx));
        let mut count = 0;
        // One buffer for the whole walk, grown as needed (a private copy: the
        // callback may change the database under it).
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some((mut chain, rec)) = walk.next_lock(idx)? else {
                return Ok(count);
            };
            count += 1;
            let off = chain.travlocks[idx].off;
            chain.read_key_and_value(off, &rec, &mut buf)?;
            chain.unlock()?;
            let Some(func) = f.as_mut() else {
                continue;
            };
            let (key, data) = buf.split_at(rec.key_len as usize);
            if func(&mut walk, key, data) {
                let off = walk.travlocks[idx].off;
                let unlocked = walk.unlock_record(off);
                walk.travlocks[idx].off = 0;
                if unlocked.is_err() {
                    walk.log(DebugLevel::Fatal, "tdb_traverse: unlock_record failed!\n");
                    return Err(TdbError::Lock);
                }
                return Ok(count);
            }
        }
    }

    /// Visits every live record; the callback may modify the database. Returns the count visited.
    pub fn traverse(&mut self, f: Option<TraverseFn<'_>>) -> Result<i32> {
        if self.read_only || self.traverse_read > 0 {
            return self.traverse_read(f);
        }
        let flags = if self.allrecord.count != 0 {
            LockFlags::NOWAIT
        } else {
            LockFlags::WAIT
        };
        self.transaction_lock(LockKind::Write, flags)?;
        self.traverse_write += 1;
        let r = Held::adopt(self, Release::TraverseWrite).traverse_internal(f, LockKind::Write);
        self.track(r)
    }

    /// Visits every live record under read locks. Returns the count visited.
    pub fn traverse_read(&mut self, f: Option<TraverseFn<'_>>) -> Result<i32> {
        self.traverse_read += 1;
        let r = Held::adopt(self, Release::TraverseRead).traverse_internal(f, LockKind::Read);
        self.track(r)
    }

    /// Visits the records of hash chain `chain` under its read lock; the callback
    /// may not write.
    pub fn traverse_chain(&mut self, chain: u32, f: TraverseFn<'_>) -> Result<i32> {
        if chain >= self.hash_size {
            return self.fail(TdbError::Einval);
        }
        if self.traverse_read != 0 {
            return self.fail(TdbError::Lock);
        }
        let r = match self.hold_list(chain as i64, LockKind::Read) {
            Ok(mut locked) => {
                locked.traverse_read += 1;
                Held::adopt(&mut locked, Release::TraverseRead).walk_chain(chain, f)
            }
            Err(e) => return Err(e),
        };
        self.track(r)
    }

    fn walk_chain(&mut self, chain: u32, f: TraverseFn<'_>) -> Result<i32> {
        let mut rec_ptr = self.read_off(format::hash_top(chain))?;
        let mut walk = ChainWalk::new(rec_ptr);
        let mut count = 0;
        let mut buf = Vec::new();
        while rec_ptr != 0 {
            let rec = self.read_rec(rec_ptr)?;
            if !rec.is_dead() {
                let full = rec.full_len().ok_or(TdbError::Corrupt)?;
                let body = self.record_body(rec_ptr)?;
                self.read_reusing(body, full, &mut buf)?;
                let (key, data) = buf.split_at(rec.key_len as usize);
                count += 1;
                if f(self, key, data) {
                    break;
                }
            }
            rec_ptr = rec.next;
            walk.check(self, rec_ptr)?;
        }
        Ok(count)
    }

    /// Visits the records in the chain `key` hashes to.
    pub fn traverse_key_chain(&mut self, key: &[u8], f: TraverseFn<'_>) -> Result<i32> {
        let chain = self.bucket(self.hash.hash(key));
        self.traverse_chain(chain, f)
    }

    /// The first key of a firstkey/nextkey walk, or `NoExist` for an empty database.
    pub fn firstkey(&mut self) -> Result<Vec<u8>> {
        let old = self.travlocks[0].off;
        if self.unlock_record(old).is_err() {
            return self.fail(TdbError::Lock);
        }
        self.travlocks[0] = TraverseLock {
            off: 0,
            list: 0,
            kind: LockKind::Read,
            steps: 0,
        };
        let key = match self.next_lock(0) {
            Ok(Some((chain, rec))) => walk_key(
                chain,
                rec,
                "tdb_firstkey: error occurred while tdb_unlocking!\n",
            ),
            // An empty database: tdb_error() stays at success, as Samba's does.
            Ok(None) => return Err(TdbError::NoExist),
            Err(e) => return Err(e),
        };
        self.track(key)
    }

    /// The key after `key`, or `NoExist` at the end.
    pub fn nextkey(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        // The end of the walk is NoExist with tdb_error() at success, as in Samba;
        // real failures have set the error code where they happened.
        self.nextkey_inner(key)
    }

    /// Whether the firstkey/nextkey walk still sits on a record whose key starts
    /// with `oldkey` (the caller holds that record's chain lock).
    fn walk_still_on(&mut self, off: Offset, oldkey: &[u8]) -> bool {
        self.read_rec(off)
            .and_then(|rec| {
                let body = self.record_body(off)?;
                self.alloc_read(body, rec.key_len)
            })
            .map(|k| k.len() >= oldkey.len() && k[..oldkey.len()] == *oldkey)
            .unwrap_or(false)
    }

    fn nextkey_inner(&mut self, oldkey: &[u8]) -> Result<Vec<u8>> {
        let t = self.travlocks[0];
        // The chain lock of the walk's position, released at the end.
        let mut position = None;
        if t.off != 0 {
            let mut chain = self.hold_list(t.list as i64, t.kind)?;
            if chain.walk_still_on(t.off, oldkey) {
                position = chain.keep();
            } else {
                // The walk moved away from `oldkey`: find it afresh.
                chain.unlock_record(t.off)?;
                chain.release()?;
                chain.travlocks[0].off = 0;
            }
        }
        let mut db = match position {
            Some(release) => Held::adopt(self, release),
            None => Held::empty(self),
        };
        if db.travlocks[0].off == 0 {
            let hash = db.hash.hash(oldkey);
            let kind = db.travlocks[0].kind;
            let (chain, off, rec) = db.find_lock_hash(oldkey, hash, kind)?;
            if let Some(release) = chain.keep() {
                db.arm(release);
            }
            db.travlocks[0].off = off;
            db.travlocks[0].list = db.bucket(rec.full_hash);
            if let Err(e) = db.lock_record(off) {
                let err = std::io::Error::last_os_error();
                db.log(
                    DebugLevel::Fatal,
                    &format!(
                        "tdb_nextkey: lock_record failed ({})!\n",
                        crate::error::strerror(&err)
                    ),
                );
                return Err(e);
            }
        }
        let result = match db.next_lock(0) {
            Ok(Some((chain, rec))) => {
                walk_key(chain, rec, "tdb_nextkey: WARNING tdb_unlock failed!\n")
            }
            Ok(None) => Err(TdbError::NoExist),
            Err(e) => Err(e),
        };
        if db.release().is_err() {
            db.log(
                DebugLevel::Fatal,
                "tdb_nextkey: WARNING tdb_unlock failed!\n",
            );
        }
        result
    }
}
