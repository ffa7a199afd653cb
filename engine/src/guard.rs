//! Guards for what a handle takes and must give back: hash-list and freelist
//! locks, the allrecord lock, byte-range and one-byte locks, the traversal
//! counters and a walk's position. A guard derefs to the database and releases
//! what it holds when it goes out of scope, so an early return (`?`) or an
//! unwinding panic never leaves a lock held or a counter raised.

use crate::error::Result;
use crate::lock::LockKind;
use crate::tdb::Tdb;
use std::ops::{Deref, DerefMut};

/// What a guard gives back when it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// A hash-list lock (list -1 is the freelist), counted per offset.
    List { list: i64, kind: LockKind },
    /// The whole-database lock.
    AllRecord(LockKind),
    /// A byte-range lock taken directly with `brlock` (len 0 = to the end of the file).
    Range { kind: LockKind, off: u32, len: u32 },
    /// A counted one-byte lock at `off` (transaction lock, sequence-number lock).
    Nested { off: u32, kind: LockKind },
    /// One step of the read-traversal counter.
    TraverseRead,
    /// One step of the write-traversal counter and the transaction write lock.
    TraverseWrite,
    /// Walk `idx` of `travlocks`: its record lock, then its entry.
    Walk(usize),
}

impl Release {
    /// Gives back what `self` describes; the result of the unlock, if any.
    #[inline]
    fn run(self, tdb: &mut Tdb) -> Result<()> {
        match self {
            Release::List { list, kind } => tdb.unlock_list_internal(list, kind),
            Release::AllRecord(kind) => tdb.allrecord_unlock(kind, false),
            Release::Range { kind, off, len } => tdb.brunlock(kind, off, len),
            Release::Nested { off, kind } => tdb.nest_unlock(off, kind, false),
            Release::TraverseRead => {
                tdb.traverse_read = tdb.traverse_read.saturating_sub(1);
                Ok(())
            }
            Release::TraverseWrite => {
                tdb.traverse_write = tdb.traverse_write.saturating_sub(1);
                tdb.transaction_unlock(LockKind::Write)
            }
            Release::Walk(idx) => {
                let Some(walk) = tdb.travlocks.get(idx).copied() else {
                    return Ok(());
                };
                let r = tdb.unlock_record(walk.off);
                tdb.travlocks.remove(idx);
                r
            }
        }
    }
}

/// A database borrowed together with one thing it holds; dropping the guard
/// releases that thing (errors ignored), `release` does it and returns the result.
pub struct Held<'a> {
    tdb: &'a mut Tdb,
    release: Option<Release>,
}

impl<'a> Held<'a> {
    /// A guard for `release`, which the caller has just taken on `tdb`.
    #[inline]
    pub(crate) fn adopt(tdb: &'a mut Tdb, release: Release) -> Held<'a> {
        Held {
            tdb,
            release: Some(release),
        }
    }

    /// A guard that holds nothing yet (see `arm`), for locks taken conditionally.
    #[inline]
    pub(crate) fn empty(tdb: &'a mut Tdb) -> Held<'a> {
        Held { tdb, release: None }
    }

    /// Whether this guard holds something.
    #[inline]
    pub(crate) fn is_armed(&self) -> bool {
        self.release.is_some()
    }

    /// Makes an empty guard responsible for `release`, just taken.
    #[inline]
    pub(crate) fn arm(&mut self, release: Release) {
        debug_assert!(self.release.is_none(), "a guard holds one thing");
        self.release = Some(release);
    }

    /// Gives back what the guard holds now; the unlock's result (Ok when empty).
    #[inline]
    pub(crate) fn release(&mut self) -> Result<()> {
        match self.release.take() {
            Some(release) => release.run(self.tdb),
            None => Ok(()),
        }
    }

    /// Leaves what the guard holds held beyond it, for a caller that takes over
    /// (a transaction keeps its locks until commit or cancel).
    #[inline]
    pub(crate) fn keep(mut self) -> Option<Release> {
        self.release.take()
    }

    /// Releases what the guard holds and ends the borrow; the unlock's result.
    #[inline]
    pub fn unlock(mut self) -> Result<()> {
        self.release()
    }
}

impl Deref for Held<'_> {
    type Target = Tdb;

    #[inline]
    fn deref(&self) -> &Tdb {
        self.tdb
    }
}

impl DerefMut for Held<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Tdb {
        self.tdb
    }
}

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = self.release();
    }
}

impl Tdb {
    /// Locks hash list `list` (-1 = freelist), waiting and logging a failure (tdb_lock),
    /// and returns the guard that unlocks it.
    #[inline]
    pub(crate) fn hold_list(&mut self, list: i64, kind: LockKind) -> Result<Held<'_>> {
        self.lock(list, kind)?;
        Ok(Held::adopt(self, Release::List { list, kind }))
    }

    /// Locks hash list `list` (-1 = freelist) waiting or not, without logging,
    /// and returns the guard that unlocks it.
    #[inline]
    pub(crate) fn hold_list_quietly(
        &mut self,
        list: i64,
        kind: LockKind,
        wait: bool,
    ) -> Result<Held<'_>> {
        self.lock_list(list, kind, wait)?;
        Ok(Held::adopt(self, Release::List { list, kind }))
    }

    /// Takes the allrecord lock (waiting) and returns the guard that releases it.
    pub(crate) fn hold_allrecord(&mut self, kind: LockKind) -> Result<Held<'_>> {
        self.allrecord_lock(kind, crate::lock::LockFlags::WAIT, false)?;
        Ok(Held::adopt(self, Release::AllRecord(kind)))
    }

    /// Write-locks the chain of `key` (waiting when `wait`) and returns the guard
    /// that releases it: the scoped form of `chainlock`/`chainunlock`.
    pub fn chainlock_held(&mut self, key: &[u8], wait: bool) -> Result<Held<'_>> {
        let list = self.bucket(self.hash.hash(key)) as i64;
        let r = if wait {
            self.lock(list, LockKind::Write)
        } else {
            self.lock_list(list, LockKind::Write, false)
        };
        if let Err(e) = r {
            if self.ecode == 0 {
                self.ecode = e.code();
            }
            return Err(e);
        }
        Ok(Held::adopt(
            self,
            Release::List {
                list,
                kind: LockKind::Write,
            },
        ))
    }

    /// Read-locks the whole database (waiting) and returns the guard that releases
    /// it: the scoped form of `lockall_read`/`unlockall_read`.
    pub fn lockall_read_held(&mut self) -> Result<Held<'_>> {
        self.hold_allrecord(LockKind::Read)
    }

    /// Write-locks the whole database (waiting) and returns the guard that releases
    /// it: the scoped form of `lockall`/`unlockall`.
    pub fn lockall_held(&mut self) -> Result<Held<'_>> {
        self.hold_allrecord(LockKind::Write)
    }
}
