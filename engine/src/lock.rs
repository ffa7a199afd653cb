//! fcntl byte-range locks at Samba's offsets: open, active, transaction, freelist,
//! per-chain and allrecord locks, counted per offset, with the robust-mutex path
//! for TDB_MUTEX_LOCKING files.
//!
//! Lock offsets: 0 open, 4 active (CLEAR_IF_FIRST), 8 transaction, 164 freelist,
//! 168 + 4*n hash chain n, and one byte at each record offset for traversals.
//! The allrecord lock covers 168 .. 168 + 4*hash_size and then the rest of the file.

use crate::error::{Result, TdbError};
use crate::format::{FREELIST_TOP, RECORD_MAGIC_OFS, RECOVERY_HEAD_OFS, RECOVERY_MAGIC};
use crate::guard::{Held, Release};
use crate::open::DebugLevel;
use crate::tdb::Tdb;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Offset of the lock held while opening (and while committing).
pub(crate) const OPEN_LOCK: u32 = 0;
/// Offset of the lock every CLEAR_IF_FIRST or mutex user read-holds.
pub(crate) const ACTIVE_LOCK: u32 = 4;
/// Offset of the lock that serialises transactions and write traversals.
pub(crate) const TRANSACTION_LOCK: u32 = 8;

/// A read or write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Shared (F_RDLCK).
    Read,
    /// Exclusive (F_WRLCK).
    Write,
}

impl LockKind {
    /// From the C F_RDLCK / F_WRLCK value.
    pub fn from_c(ltype: i32) -> Option<LockKind> {
        match ltype {
            x if x == libc::F_RDLCK => Some(LockKind::Read),
            x if x == libc::F_WRLCK => Some(LockKind::Write),
            _ => None,
        }
    }

    /// The fcntl lock type.
    pub fn fcntl_type(self) -> libc::c_short {
        match self {
            LockKind::Read => libc::F_RDLCK as libc::c_short,
            LockKind::Write => libc::F_WRLCK as libc::c_short,
        }
    }
}

/// How to take a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockFlags {
    /// Block until granted (F_SETLKW) rather than fail at once.
    pub wait: bool,
    /// Do not log a failure.
    pub probe: bool,
    /// Only record the lock as held; take nothing.
    pub mark_only: bool,
}

impl LockFlags {
    pub(crate) const WAIT: LockFlags = LockFlags {
        wait: true,
        probe: false,
        mark_only: false,
    };
    pub(crate) const NOWAIT: LockFlags = LockFlags {
        wait: false,
        probe: false,
        mark_only: false,
    };
    pub(crate) const NOWAIT_PROBE: LockFlags = LockFlags {
        wait: false,
        probe: true,
        mark_only: false,
    };
    pub(crate) const WAIT_PROBE: LockFlags = LockFlags {
        wait: true,
        probe: true,
        mark_only: false,
    };
    pub(crate) const MARK_ONLY: LockFlags = LockFlags {
        wait: false,
        probe: false,
        mark_only: true,
    };
}

/// A lock this handle holds at one offset, with its nesting count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NestedLock {
    pub off: u32,
    pub count: u32,
    pub kind: LockKind,
}

/// The whole-database lock state of this handle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllRecordLock {
    pub count: u32,
    pub kind: LockKind,
    /// Taken as a read lock that a transaction commit will upgrade.
    pub upgradable: bool,
}

impl Default for AllRecordLock {
    fn default() -> Self {
        AllRecordLock {
            count: 0,
            kind: LockKind::Read,
            upgradable: false,
        }
    }
}

/// The lock offset of hash list `list` (-1 is the freelist).
#[inline]
pub(crate) fn lock_offset(list: i64) -> u32 {
    (FREELIST_TOP as i64 + 4 * list) as u32
}

impl Tdb {
    /// One fcntl (or mutex) lock call; returns the errno on failure.
    #[inline]
    fn fcntl_lock(
        &mut self,
        kind: LockKind,
        off: u32,
        len: u32,
        wait: bool,
    ) -> std::result::Result<(), i32> {
        if let Some(r) = self.mutex_lock(kind, off, len, wait) {
            return r;
        }
        let fd = match self.file.as_ref() {
            Some(f) => f.as_fd(),
            None => return Err(libc::EBADF),
        };
        fcntl_setlk(fd, kind.fcntl_type(), off, len, wait)
    }

    #[inline]
    fn fcntl_unlock(&mut self, off: u32, len: u32) -> std::result::Result<(), i32> {
        if let Some(r) = self.mutex_unlock(off, len) {
            return r;
        }
        let fd = match self.file.as_ref() {
            Some(f) => f.as_fd(),
            None => return Err(libc::EBADF),
        };
        fcntl_setlk(fd, libc::F_UNLCK as libc::c_short, off, len, false)
    }

    /// Takes a byte-range lock (len 0 = to the end of the file) (tdb_brlock).
    #[inline]
    pub(crate) fn brlock(
        &mut self,
        kind: LockKind,
        off: u32,
        len: u32,
        flags: LockFlags,
    ) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 || flags.mark_only {
            return Ok(());
        }
        if kind == LockKind::Write && (self.read_only || self.traverse_read > 0) {
            self.ecode = TdbError::Rdonly.code();
            return Err(TdbError::Rdonly);
        }
        let result = loop {
            match self.fcntl_lock(kind, off, len, flags.wait) {
                Err(libc::EINTR) => {
                    if self.interrupt.as_ref().is_some_and(|probe| probe()) {
                        break Err(libc::EINTR);
                    }
                }
                other => break other,
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(errno) => Err(self.brlock_failed(kind, off, len, flags, errno)),
        }
    }

    #[cold]
    #[inline(never)]
    fn brlock_failed(
        &mut self,
        kind: LockKind,
        off: u32,
        len: u32,
        flags: LockFlags,
        errno: i32,
    ) -> TdbError {
        self.ecode = TdbError::Lock.code();
        if !flags.probe && errno != libc::EAGAIN {
            let fd = self.fd();
            self.log(
                DebugLevel::Trace,
                &format!(
                    "tdb_brlock failed (fd={}) at offset {} rw_type={} flags={} len={}\n",
                    fd,
                    off,
                    kind.fcntl_type(),
                    flags.wait as i32 | (flags.probe as i32) << 1 | (flags.mark_only as i32) << 2,
                    len
                ),
            );
        }
        set_errno(errno);
        TdbError::Lock
    }

    /// Releases a byte-range lock (tdb_brunlock).
    #[inline]
    pub(crate) fn brunlock(&mut self, kind: LockKind, off: u32, len: u32) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 {
            return Ok(());
        }
        let result = loop {
            match self.fcntl_unlock(off, len) {
                Err(libc::EINTR) => continue,
                other => break other,
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(errno) => Err(self.brunlock_failed(kind, off, len, errno)),
        }
    }

    #[cold]
    #[inline(never)]
    fn brunlock_failed(&mut self, kind: LockKind, off: u32, len: u32, errno: i32) -> TdbError {
        let fd = self.fd();
        self.log(
            DebugLevel::Trace,
            &format!(
                "tdb_brunlock failed (fd={}) at offset {} rw_type={} len={}\n",
                fd,
                off,
                kind.fcntl_type(),
                len
            ),
        );
        set_errno(errno);
        TdbError::Lock
    }

    #[inline]
    fn find_nestlock(&self, off: u32) -> Option<usize> {
        // Most recent first: unlocks usually undo the last lock.
        self.lockrecs.iter().rposition(|l| l.off == off)
    }

    /// Takes (or re-counts) the one-byte lock at `off` (tdb_nest_lock).
    #[inline]
    pub(crate) fn nest_lock(&mut self, off: u32, kind: LockKind, flags: LockFlags) -> Result<()> {
        if off >= lock_offset(self.hash_size as i64) {
            return Err(self.bad_lock_offset(off, kind));
        }
        if self.flags & crate::flags::NOLOCK != 0 {
            return Ok(());
        }
        if let Some(i) = self.find_nestlock(off) {
            if self.lockrecs[i].kind == LockKind::Read && kind == LockKind::Write {
                // Upgrade: with mutexes a chain mutex is already exclusive.
                if !self.have_mutexes() {
                    self.brlock(kind, off, 1, flags)?;
                }
                self.lockrecs[i].kind = LockKind::Write;
            }
            self.lockrecs[i].count += 1;
            return Ok(());
        }
        self.brlock(kind, off, 1, flags)?;
        self.lockrecs.push(NestedLock {
            off,
            count: 1,
            kind,
        });
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn bad_lock_offset(&mut self, off: u32, kind: LockKind) -> TdbError {
        self.ecode = TdbError::Lock.code();
        self.log(
            DebugLevel::Error,
            &format!(
                "tdb_lock: invalid offset {} for ltype={}\n",
                off,
                kind.fcntl_type()
            ),
        );
        TdbError::Lock
    }

    /// Releases one count of the lock at `off`; `mark` forgets it without unlocking.
    #[inline]
    pub(crate) fn nest_unlock(&mut self, off: u32, kind: LockKind, mark: bool) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 {
            return Ok(());
        }
        if off >= lock_offset(self.hash_size as i64) {
            return Err(self.unlock_refused(&format!(
                "tdb_unlock: offset {} invalid ({})\n",
                off, self.hash_size
            )));
        }
        let i = match self.find_nestlock(off) {
            Some(i) if self.lockrecs[i].count > 0 => i,
            _ => return Err(self.unlock_refused("tdb_unlock: count is 0\n")),
        };
        if self.lockrecs[i].count > 1 {
            self.lockrecs[i].count -= 1;
            return Ok(());
        }
        let r = if mark {
            Ok(())
        } else {
            self.brunlock(kind, off, 1)
        };
        self.lockrecs.swap_remove(i);
        if r.is_err() {
            self.log(
                DebugLevel::Error,
                "tdb_unlock: An error occurred unlocking!\n",
            );
        }
        r
    }

    #[cold]
    #[inline(never)]
    fn unlock_refused(&mut self, message: &str) -> TdbError {
        self.log(DebugLevel::Error, message);
        TdbError::Lock
    }

    fn lock_covered_by_allrecord(&mut self, kind: LockKind) -> Result<()> {
        if kind == LockKind::Read || self.allrecord.kind == LockKind::Write {
            return Ok(());
        }
        self.ecode = TdbError::Lock.code();
        Err(TdbError::Lock)
    }

    fn have_data_locks(&self) -> bool {
        self.lockrecs.iter().any(|l| l.off >= lock_offset(-1))
    }

    /// Locks hash list `list` (-1 = freelist), first running crash recovery if
    /// this is the first data lock and a recovery area is pending (tdb_lock_list).
    pub(crate) fn lock_list(&mut self, list: i64, kind: LockKind, wait: bool) -> Result<()> {
        if self.allrecord.count > 0 {
            return self.lock_covered_by_allrecord(kind);
        }
        let check = self.lockrecs.is_empty() || !self.have_data_locks();
        let flags = if wait {
            LockFlags::WAIT
        } else {
            LockFlags::NOWAIT
        };
        let off = lock_offset(list);
        self.nest_lock(off, kind, flags)?;
        if check && self.needs_recovery() {
            let _ = self.nest_unlock(off, kind, false);
            self.lock_and_recover()?;
            return self.lock_list(list, kind, wait);
        }
        Ok(())
    }

    /// tdb_lock: a waiting list lock that logs its failure.
    #[inline]
    pub(crate) fn lock(&mut self, list: i64, kind: LockKind) -> Result<()> {
        let r = self.lock_list(list, kind, true);
        if r.is_err() {
            self.lock_failed(list, kind);
        }
        r
    }

    #[cold]
    #[inline(never)]
    fn lock_failed(&mut self, list: i64, kind: LockKind) {
        let err = std::io::Error::last_os_error();
        self.log(
            DebugLevel::Error,
            &format!(
                "tdb_lock failed on list {} ltype={} ({})\n",
                list,
                kind.fcntl_type(),
                crate::error::strerror(&err)
            ),
        );
    }

    /// tdb_unlock for hash list `list`.
    #[inline]
    pub(crate) fn unlock_list_internal(&mut self, list: i64, kind: LockKind) -> Result<()> {
        if self.allrecord.count > 0 {
            return self.lock_covered_by_allrecord(kind);
        }
        self.nest_unlock(lock_offset(list), kind, false)
    }

    /// The bucket (chain index) of a hash value.
    #[inline]
    pub(crate) fn bucket(&self, hash: u32) -> u32 {
        hash % self.hash_size
    }

    /// Whether the header points at a recovery area with a valid magic.
    #[inline]
    pub(crate) fn needs_recovery(&mut self) -> bool {
        let head = match self.read_off(RECOVERY_HEAD_OFS) {
            Ok(h) => h,
            Err(_) => return true,
        };
        if head == 0 {
            return false;
        }
        match self.read_off(head + RECORD_MAGIC_OFS) {
            Ok(m) => m == RECOVERY_MAGIC,
            Err(_) => true,
        }
    }

    /// Takes the allrecord and open locks by fcntl and replays the recovery area.
    fn lock_and_recover(&mut self) -> Result<()> {
        let mut all = self.hold_range(LockKind::Write, FREELIST_TOP, 0)?;
        let mut open = all.hold_range(LockKind::Write, OPEN_LOCK, 1)?;
        open.transaction_recover()
    }

    /// Takes a waiting byte-range lock and returns the guard that releases it.
    fn hold_range(&mut self, kind: LockKind, off: u32, len: u32) -> Result<Held<'_>> {
        self.brlock(kind, off, len, LockFlags::WAIT)?;
        Ok(Held::adopt(self, Release::Range { kind, off, len }))
    }

    /// Locks `len` bytes from `off`, falling back to halves when the whole range is
    /// contended, so that a waiting allrecord lock does not starve (tdb_chainlock_gradual).
    fn lock_gradual(&mut self, kind: LockKind, flags: LockFlags, off: u32, len: u32) -> Result<()> {
        if len <= 4 {
            return self.brlock(kind, off, len, flags);
        }
        let nb = LockFlags {
            wait: false,
            ..flags
        };
        if self.brlock(kind, off, len, nb).is_ok() {
            return Ok(());
        }
        self.lock_gradual(kind, flags, off, len / 2)?;
        if let Err(e) = self.lock_gradual(kind, flags, off + len / 2, len - len / 2) {
            let _ = self.brunlock(kind, off, len / 2);
            return Err(e);
        }
        Ok(())
    }

    /// Takes the whole-database lock (tdb_allrecord_lock).
    pub(crate) fn allrecord_lock(
        &mut self,
        kind: LockKind,
        flags: LockFlags,
        upgradable: bool,
    ) -> Result<()> {
        if self.read_only || self.traverse_read > 0 {
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if self.allrecord.count > 0 && self.allrecord.kind == kind {
            self.allrecord.count += 1;
            return Ok(());
        }
        if self.allrecord.count > 0
            || self.have_extra_locks()
            || (upgradable && kind != LockKind::Read)
        {
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if self.have_mutexes() {
            self.mutex_allrecord_lock(kind, flags)?;
        } else {
            let len = self.hash_size * 4;
            self.lock_gradual(kind, flags, FREELIST_TOP, len)?;
        }
        let tail = lock_offset(self.hash_size as i64);
        if let Err(e) = self.brlock(kind, tail, 0, flags) {
            if self.have_mutexes() {
                let _ = self.mutex_allrecord_unlock();
            } else {
                let len = self.hash_size * 4;
                let _ = self.brunlock(kind, FREELIST_TOP, len);
            }
            return Err(e);
        }
        self.allrecord = AllRecordLock {
            count: 1,
            kind: if upgradable { LockKind::Write } else { kind },
            upgradable,
        };
        if self.needs_recovery() {
            let mark = flags.mark_only;
            let _ = self.allrecord_unlock(kind, mark);
            if mark {
                self.ecode = TdbError::Lock.code();
                self.log(DebugLevel::Error, "tdb_lockall_mark cannot do recovery\n");
                return Err(TdbError::Lock);
            }
            self.lock_and_recover()?;
            return self.allrecord_lock(kind, flags, upgradable);
        }
        Ok(())
    }

    /// Releases the whole-database lock; `mark` forgets it without unlocking.
    pub(crate) fn allrecord_unlock(&mut self, kind: LockKind, mark: bool) -> Result<()> {
        if self.read_only || self.traverse_read > 0 || self.allrecord.count == 0 {
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if self.allrecord.kind != kind && (!self.allrecord.upgradable || kind != LockKind::Read) {
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if self.allrecord.count > 1 {
            self.allrecord.count -= 1;
            return Ok(());
        }
        if !mark {
            let r = if self.have_mutexes() {
                self.mutex_allrecord_unlock()
                    .and_then(|_| self.brunlock(kind, lock_offset(self.hash_size as i64), 0))
            } else {
                self.brunlock(kind, FREELIST_TOP, 0)
            };
            if r.is_err() {
                let err = std::io::Error::last_os_error();
                self.log(
                    DebugLevel::Error,
                    &format!("tdb_unlockall failed ({})\n", crate::error::strerror(&err)),
                );
                return Err(TdbError::Lock);
            }
        }
        self.allrecord = AllRecordLock::default();
        Ok(())
    }

    /// Turns the upgradable read allrecord lock of a transaction into a write lock.
    pub(crate) fn allrecord_upgrade(&mut self) -> Result<()> {
        if self.allrecord.count != 1 {
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_allrecord_upgrade failed: count {} too high\n",
                    self.allrecord.count
                ),
            );
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if !self.allrecord.upgradable {
            self.log(
                DebugLevel::Error,
                "tdb_allrecord_upgrade failed: already upgraded?\n",
            );
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        let r = if self.have_mutexes() {
            self.mutex_allrecord_upgrade().and_then(|_| {
                let tail = lock_offset(self.hash_size as i64);
                let r = self.brlock_retry(LockKind::Write, tail, 0);
                if r.is_err() {
                    self.mutex_allrecord_downgrade();
                }
                r
            })
        } else {
            self.brlock_retry(LockKind::Write, FREELIST_TOP, 0)
        };
        match r {
            Ok(()) => {
                self.allrecord.kind = LockKind::Write;
                self.allrecord.upgradable = false;
                Ok(())
            }
            Err(e) => {
                self.log(DebugLevel::Trace, "tdb_allrecord_upgrade failed\n");
                Err(e)
            }
        }
    }

    /// A waiting lock that retries on EDEADLK, which fcntl reports spuriously when
    /// two processes upgrade overlapping read locks at once.
    fn brlock_retry(&mut self, kind: LockKind, off: u32, len: u32) -> Result<()> {
        let mut delay_us = 1u64;
        loop {
            match self.brlock(kind, off, len, LockFlags::WAIT_PROBE) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if std::io::Error::last_os_error().raw_os_error() != Some(libc::EDEADLK) {
                        return Err(e);
                    }
                    std::thread::sleep(std::time::Duration::from_micros(delay_us));
                    delay_us = (delay_us * 2).min(500_000);
                }
            }
        }
    }

    /// Whether this handle holds locks besides the active lock (and, in a
    /// transaction, the transaction lock).
    pub(crate) fn have_extra_locks(&self) -> bool {
        let in_transaction = self.transaction.is_some() || self.transaction_starting;
        if !in_transaction && self.allrecord.count > 0 {
            return true;
        }
        let mut extra = self.lockrecs.len();
        if self.find_nestlock(ACTIVE_LOCK).is_some() {
            extra -= 1;
        }
        if in_transaction && self.find_nestlock(TRANSACTION_LOCK).is_some() {
            extra -= 1;
        }
        extra > 0
    }

    /// Drops every lock but the active lock (end of a transaction).
    pub(crate) fn release_transaction_locks(&mut self) {
        if self.allrecord.count != 0 {
            let kind = self.allrecord.kind;
            let _ = self.allrecord_unlock(kind, false);
            self.allrecord.count = 0;
        }
        let locks = std::mem::take(&mut self.lockrecs);
        for l in locks {
            if l.off == ACTIVE_LOCK {
                self.lockrecs.push(l);
            } else {
                let _ = self.brunlock(l.kind, l.off, 1);
            }
        }
    }

    /// Read-locks the record at `off` for a traversal (tdb_lock_record).
    pub(crate) fn lock_record(&mut self, off: u32) -> Result<()> {
        if self.allrecord.count > 0 || off == 0 {
            return Ok(());
        }
        self.brlock(LockKind::Read, off, 1, LockFlags::WAIT)
    }

    /// Tries to write-lock the record at `off`: fails when a traversal (ours or
    /// another process's) is positioned on it (tdb_write_lock_record).
    pub(crate) fn write_lock_record(&mut self, off: u32) -> Result<()> {
        if self.travlocks.iter().any(|t| t.off == off) {
            return Err(TdbError::Lock);
        }
        if self.allrecord.count > 0 {
            return if self.allrecord.kind == LockKind::Write {
                Ok(())
            } else {
                Err(TdbError::Lock)
            };
        }
        self.brlock(LockKind::Write, off, 1, LockFlags::NOWAIT_PROBE)
    }

    /// Releases what `write_lock_record` took.
    pub(crate) fn write_unlock_record(&mut self, off: u32) -> Result<()> {
        if self.allrecord.count > 0 {
            return Ok(());
        }
        self.brunlock(LockKind::Write, off, 1)
    }

    /// Releases a traversal's record lock unless another traversal of ours sits there too.
    pub(crate) fn unlock_record(&mut self, off: u32) -> Result<()> {
        if self.allrecord.count > 0 || off == 0 {
            return Ok(());
        }
        let count = self.travlocks.iter().filter(|t| t.off == off).count();
        if count == 1 {
            self.brunlock(LockKind::Read, off, 1)
        } else {
            Ok(())
        }
    }

    /// Takes the transaction lock.
    pub(crate) fn transaction_lock(&mut self, kind: LockKind, flags: LockFlags) -> Result<()> {
        self.nest_lock(TRANSACTION_LOCK, kind, flags)
    }

    /// Releases the transaction lock.
    pub(crate) fn transaction_unlock(&mut self, kind: LockKind) -> Result<()> {
        self.nest_unlock(TRANSACTION_LOCK, kind, false)
    }

    fn chain_of(&self, key: &[u8]) -> i64 {
        self.bucket(self.hash.hash(key)) as i64
    }

    /// Records the error of a failed public call and passes the result on.
    fn tracked(&mut self, r: Result<()>) -> Result<()> {
        if let Err(e) = r {
            if self.ecode == 0 {
                self.ecode = e.code();
            }
        }
        r
    }

    /// Runs `f` on a stable view of the whole database: under a whole-database
    /// read lock, except on read-only databases (which take no locks) and when
    /// this handle already holds the allrecord lock (check, rescue, summary).
    pub(crate) fn with_lockall_read<R>(
        &mut self,
        f: impl FnOnce(&mut Tdb) -> Result<R>,
    ) -> Result<R> {
        if self.read_only || self.allrecord.count != 0 {
            return f(self);
        }
        let mut all = self.hold_allrecord(LockKind::Read)?;
        f(&mut all)
    }

    /// Write-locks the chain of `key` (waits).
    pub fn chainlock(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.lock(list, LockKind::Write);
        self.tracked(r)
    }
    /// Write-locks the chain of `key` or fails at once.
    pub fn chainlock_nonblock(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.lock_list(list, LockKind::Write, false);
        self.tracked(r)
    }
    /// Releases a chain write lock.
    pub fn chainunlock(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.unlock_list_internal(list, LockKind::Write);
        self.tracked(r)
    }
    /// Read-locks the chain of `key` (waits).
    pub fn chainlock_read(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.lock(list, LockKind::Read);
        self.tracked(r)
    }
    /// Read-locks the chain of `key` or fails at once.
    pub fn chainlock_read_nonblock(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.lock_list(list, LockKind::Read, false);
        self.tracked(r)
    }
    /// Releases a chain read lock.
    pub fn chainunlock_read(&mut self, key: &[u8]) -> Result<()> {
        let list = self.chain_of(key);
        let r = self.unlock_list_internal(list, LockKind::Read);
        self.tracked(r)
    }
    /// Records a chain write lock as held without taking it (the caller holds it otherwise).
    pub fn chainlock_mark(&mut self, key: &[u8]) -> Result<()> {
        let off = lock_offset(self.chain_of(key));
        let r = self.nest_lock(off, LockKind::Write, LockFlags::MARK_ONLY);
        self.tracked(r)
    }
    /// Forgets a marked chain lock without releasing it.
    pub fn chainlock_unmark(&mut self, key: &[u8]) -> Result<()> {
        let off = lock_offset(self.chain_of(key));
        let r = self.nest_unlock(off, LockKind::Write, true);
        self.tracked(r)
    }
    /// Write-locks the whole database (waits).
    pub fn lockall(&mut self) -> Result<()> {
        self.allrecord_lock(LockKind::Write, LockFlags::WAIT, false)
    }
    /// Write-locks the whole database or fails at once.
    pub fn lockall_nonblock(&mut self) -> Result<()> {
        self.allrecord_lock(LockKind::Write, LockFlags::NOWAIT, false)
    }
    /// Releases the whole-database write lock.
    pub fn unlockall(&mut self) -> Result<()> {
        self.allrecord_unlock(LockKind::Write, false)
    }
    /// Read-locks the whole database (waits).
    pub fn lockall_read(&mut self) -> Result<()> {
        self.allrecord_lock(LockKind::Read, LockFlags::WAIT, false)
    }
    /// Read-locks the whole database or fails at once.
    pub fn lockall_read_nonblock(&mut self) -> Result<()> {
        self.allrecord_lock(LockKind::Read, LockFlags::NOWAIT, false)
    }
    /// Releases the whole-database read lock.
    pub fn unlockall_read(&mut self) -> Result<()> {
        self.allrecord_unlock(LockKind::Read, false)
    }
    /// Records the whole-database write lock as held without taking it.
    pub fn lockall_mark(&mut self) -> Result<()> {
        self.allrecord_lock(LockKind::Write, LockFlags::MARK_ONLY, false)
    }
    /// Forgets a marked whole-database lock.
    pub fn lockall_unmark(&mut self) -> Result<()> {
        self.allrecord_unlock(LockKind::Write, true)
    }
    /// Locks hash list `list` (-1 = freelist) with F_RDLCK/F_WRLCK `ltype`, not waiting (tdb_lock_nonblock).
    pub fn lock_list_nonblock(&mut self, list: i32, ltype: i32) -> Result<()> {
        let kind = LockKind::from_c(ltype).ok_or(TdbError::Einval)?;
        self.lock_list(list as i64, kind, false)
    }
    /// Unlocks hash list `list` (tdb_unlock).
    pub fn unlock_list(&mut self, list: i32, ltype: i32) -> Result<()> {
        let kind = LockKind::from_c(ltype).ok_or(TdbError::Einval)?;
        self.unlock_list_internal(list as i64, kind)
    }
    /// Records the transaction lock as held without taking it.
    pub fn transaction_write_lock_mark(&mut self) -> Result<()> {
        self.transaction_lock(LockKind::Write, LockFlags::MARK_ONLY)
    }
    /// Forgets a marked transaction lock.
    pub fn transaction_write_lock_unmark(&mut self) -> Result<()> {
        self.nest_unlock(TRANSACTION_LOCK, LockKind::Write, true)
    }
}

/// fcntl(F_SETLK/F_SETLKW) on `fd`; returns the errno on failure. This is
/// the hottest system call of the engine (two per record operation), so it
/// calls libc directly: nix's generic `fcntl` costs about 5% more instructions
/// per fetch.
#[inline]
fn fcntl_setlk(
    fd: BorrowedFd<'_>,
    ltype: libc::c_short,
    off: u32,
    len: u32,
    wait: bool,
) -> std::result::Result<(), i32> {
    let fl = libc::flock {
        l_type: ltype,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: libc::off_t::from(off),
        l_len: libc::off_t::from(len),
        l_pid: 0,
    };
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    // SAFETY: `fd` is a descriptor borrowed for this call and `fl` is a fully
    // initialised flock that outlives it; F_SETLK(W) only reads it.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &fl as *const libc::flock) };
    if rc == -1 {
        Err(Errno::last_raw())
    } else {
        Ok(())
    }
}

/// Sets errno, so that C callers see why a lock failed.
pub(crate) fn set_errno(errno: i32) {
    Errno::set_raw(errno);
}
