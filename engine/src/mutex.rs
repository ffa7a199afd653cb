//! Robust process-shared pthread mutexes in the file's mutex area (TDB_MUTEX_LOCKING).
//!
//! A mutex file starts with a page-aligned area: a copy of the header, the
//! allrecord mutex, a `short` saying how the allrecord lock is held, then one mutex
//! for the freelist and one per hash chain. The database proper (what is mapped and
//! what offsets count from) starts after it, at `hdr_ofs`. The layout is that of
//! glibc's pthread_mutex_t on this architecture, shared with Samba's libtdb.

use crate::error::{Result, TdbError};
use crate::format::{align, data_start, FREELIST_TOP, HEADER_SIZE, OFF_SIZE};
use crate::lock::{LockFlags, LockKind};
use crate::open::DebugLevel;
use crate::tdb::Tdb;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

/// The fixed front of the mutex area, laid out as C lays out Samba's struct.
#[repr(C)]
struct MutexAreaHead {
    header: [u32; HEADER_SIZE as usize / 4],
    allrecord_mutex: libc::pthread_mutex_t,
    allrecord_lock: libc::c_short,
    hashchains: [libc::pthread_mutex_t; 1],
}

const F_UNLCK: libc::c_short = libc::F_UNLCK as libc::c_short;
const F_RDLCK: libc::c_short = libc::F_RDLCK as libc::c_short;
const F_WRLCK: libc::c_short = libc::F_WRLCK as libc::c_short;

/// Bytes of mutex area a file with `hash_size` chains has; u32::MAX when that
/// does not fit in 32 bits (no file can then have the mutex size it names).
pub(crate) fn mutex_area_size(hash_size: u32, page_size: u32) -> u32 {
    let size = size_of::<MutexAreaHead>() as u64
        + hash_size as u64 * size_of::<libc::pthread_mutex_t>() as u64;
    match u32::try_from(size) {
        Ok(size) if size.checked_add(page_size).is_some() => align(size, page_size),
        _ => u32::MAX,
    }
}

/// The mapped mutex area of an open database.
pub(crate) struct MutexArea {
    map: MmapRaw,
    /// Number of mutexes after the allrecord one (freelist + chains).
    count: usize,
}

impl MutexArea {
    /// Maps the first `size` bytes of `file`.
    pub(crate) fn map(file: &File, size: u32, hash_size: u32) -> std::io::Result<MutexArea> {
        let map = MmapOptions::new().len(size as usize).map_raw(file)?;
        if map.len()
            < size_of::<MutexAreaHead>() + hash_size as usize * size_of::<libc::pthread_mutex_t>()
        {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(MutexArea {
            map,
            count: hash_size as usize + 1,
        })
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        assert!(offset + size_of::<T>() <= self.map.len());
        // SAFETY: in bounds (checked), and every offset used is that of a field
        // of the C layout, so correctly aligned in the page-aligned mapping.
        unsafe { self.map.as_mut_ptr().add(offset) as *mut T }
    }

    /// Mutex `idx`: 0 is the freelist, 1..=hash_size the chains.
    fn chain(&self, idx: usize) -> *mut libc::pthread_mutex_t {
        assert!(idx < self.count);
        self.at(offset_of!(MutexAreaHead, hashchains) + idx * size_of::<libc::pthread_mutex_t>())
    }

    /// Whether chain mutex `idx` has no holder right now, read from its lock word
    /// without taking it. Only a hint: the caller makes it sound by publishing
    /// the allrecord state first (see `pass_through_chains`).
    fn chain_looks_free(&self, idx: usize) -> bool {
        if !lock_word_readable() {
            return false;
        }
        // SAFETY: the first int of an initialised glibc mutex is its lock word
        // (checked at run time by lock_word_readable); it is only read here, atomically.
        let word = unsafe { &*(self.chain(idx) as *const std::sync::atomic::AtomicI32) };
        word.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    /// Makes sure no chain lock holder remains after the allrecord state was set:
    /// every chain mutex is taken and released once, except those seen free.
    ///
    /// Skipping a free one is sound: a chain locker takes the chain mutex and
    /// then reads the allrecord state, while we wrote the state and then read the
    /// chain's lock word (with full fences on both sides). So either we see its
    /// lock and wait for it, or it sees our state and backs off.
    fn pass_through_chains(&self, wait: bool) -> i32 {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        for i in 1..self.count {
            if self.chain_looks_free(i) {
                continue;
            }
            let mut rc = lock_robust(self.chain(i), wait);
            if rc == 0 {
                rc = unlock(self.chain(i));
            } else if !wait && rc == libc::EBUSY {
                rc = libc::EAGAIN;
            }
            if rc != 0 {
                return rc;
            }
        }
        0
    }

    /// Locks (or try-locks) the allrecord mutex. When its holder died holding
    /// it, the allrecord lock it had is gone: the state is reset to F_UNLCK
    /// and the mutex made consistent.
    fn lock_allrecord_mutex(&self, wait: bool) -> i32 {
        // SAFETY: as in lock_robust.
        let rc = unsafe {
            if wait {
                libc::pthread_mutex_lock(self.allrecord_mutex())
            } else {
                libc::pthread_mutex_trylock(self.allrecord_mutex())
            }
        };
        if rc != libc::EOWNERDEAD {
            return rc;
        }
        self.set_allrecord_state(F_UNLCK);
        // SAFETY: we own the mutex after EOWNERDEAD.
        unsafe { libc::pthread_mutex_consistent(self.allrecord_mutex()) }
    }

    fn allrecord_mutex(&self) -> *mut libc::pthread_mutex_t {
        self.at(offset_of!(MutexAreaHead, allrecord_mutex))
    }

    fn allrecord_state(&self) -> libc::c_short {
        // SAFETY: an aligned short inside the mapping; other processes change it only
        // while holding the allrecord mutex, as we do when writing it.
        unsafe {
            std::ptr::read_volatile(
                self.at::<libc::c_short>(offset_of!(MutexAreaHead, allrecord_lock)),
            )
        }
    }

    fn set_allrecord_state(&self, v: libc::c_short) {
        // SAFETY: as in allrecord_state.
        unsafe {
            std::ptr::write_volatile(
                self.at::<libc::c_short>(offset_of!(MutexAreaHead, allrecord_lock)),
                v,
            )
        }
    }

    /// Initialises every mutex (robust, process-shared, error-checking) and marks
    /// the allrecord lock free.
    fn init_all(&self) -> std::result::Result<(), i32> {
        with_robust_attr(|attr| {
            for i in 0..self.count {
                init_mutex(self.chain(i), attr)?;
            }
            self.set_allrecord_state(F_UNLCK);
            init_mutex(self.allrecord_mutex(), attr)
        })
    }
}

/// Runs `f` with an initialised robust, process-shared, error-checking mutex attribute.
fn with_robust_attr<R>(
    f: impl FnOnce(*const libc::pthread_mutexattr_t) -> std::result::Result<R, i32>,
) -> std::result::Result<R, i32> {
    // SAFETY: the attribute is initialised by pthread_mutexattr_init before any
    // other use and destroyed before it goes out of scope.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        let rc = libc::pthread_mutexattr_init(&mut attr);
        if rc != 0 {
            return Err(rc);
        }
        let mut rc = libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK);
        if rc == 0 {
            rc = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        }
        if rc == 0 {
            rc = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        }
        let r = if rc == 0 { f(&attr) } else { Err(rc) };
        libc::pthread_mutexattr_destroy(&mut attr);
        r
    }
}

/// Initialises the mutex at `m` with `attr`; the error number on failure. `m`
/// points at a mutex slot of a live mapping (or of our own memory) that no
/// process is using, and `attr` was initialised by `with_robust_attr`.
fn init_mutex(
    m: *mut libc::pthread_mutex_t,
    attr: *const libc::pthread_mutexattr_t,
) -> std::result::Result<(), i32> {
    // SAFETY: per the contract above: a valid, unused slot and an initialised attribute.
    match unsafe { libc::pthread_mutex_init(m, attr) } {
        0 => Ok(()),
        rc => Err(rc),
    }
}

/// Locks (or try-locks) a robust mutex, making it consistent when its owner died.
fn lock_robust(m: *mut libc::pthread_mutex_t, wait: bool) -> i32 {
    // SAFETY: m points at an initialised process-shared mutex in a live mapping.
    unsafe {
        let rc = if wait {
            libc::pthread_mutex_lock(m)
        } else {
            libc::pthread_mutex_trylock(m)
        };
        if rc != libc::EOWNERDEAD {
            return rc;
        }
        libc::pthread_mutex_consistent(m)
    }
}

fn unlock(m: *mut libc::pthread_mutex_t) -> i32 {
    // SAFETY: as in lock_robust.
    unsafe { libc::pthread_mutex_unlock(m) }
}

impl Tdb {
    /// Whether this file uses the mutex area for chain and allrecord locks.
    pub(crate) fn have_mutexes(&self) -> bool {
        self.feature_flags & crate::format::FEATURE_FLAG_MUTEX != 0
    }

    /// Which mutex a one-byte lock at `off` maps to: 0 the freelist, n chain n-1.
    #[inline]
    fn mutex_index(&self, off: u32, len: u32) -> Option<usize> {
        let freelist_lock = FREELIST_TOP - OFF_SIZE;
        if !self.have_mutexes() || len != 1 || off < freelist_lock || self.hash_size == 0 {
            return None;
        }
        if off >= data_start(self.hash_size) {
            return None;
        }
        Some(((off - freelist_lock) / OFF_SIZE) as usize)
    }

    /// Whether a chain mutex is already held (then the allrecord state was checked).
    /// As in Samba, a lock counts only while its nesting count is 1.
    fn have_mutex_chainlocks(&self) -> bool {
        self.lockrecs
            .iter()
            .any(|l| matches!(self.mutex_index(l.off, l.count), Some(i) if i != 0))
    }

    /// The mutex side of a lock call: `None` when the range is not mutex-backed.
    #[inline]
    pub(crate) fn mutex_lock(
        &mut self,
        kind: LockKind,
        off: u32,
        len: u32,
        wait: bool,
    ) -> Option<std::result::Result<(), i32>> {
        let idx = self.mutex_index(off, len)?;
        // Only a chain lock looks at the allrecord state, and only when it is the
        // first chain mutex this handle takes.
        let have_chainlocks = idx != 0 && self.have_mutex_chainlocks();
        let m = self.mutexes.as_ref()?;
        let chain = m.chain(idx);
        loop {
            let mut rc = lock_robust(chain, wait);
            if rc == libc::EBUSY {
                rc = libc::EAGAIN;
            }
            if rc != 0 {
                return Some(Err(rc));
            }
            if idx == 0 || have_chainlocks {
                return Some(Ok(()));
            }
            let state = m.allrecord_state();
            if state == F_UNLCK || (state == F_RDLCK && kind == LockKind::Read) {
                return Some(Ok(()));
            }
            // Someone holds the allrecord lock: wait for it without holding the chain.
            let rc = unlock(chain);
            if rc != 0 {
                return Some(Err(rc));
            }
            // (A holder that died leaves the lock free: the state is reset then.)
            let mut rc = m.lock_allrecord_mutex(wait);
            if rc == libc::EBUSY {
                rc = libc::EAGAIN;
            }
            if rc != 0 {
                return Some(Err(rc));
            }
            let rc = unlock(m.allrecord_mutex());
            if rc != 0 {
                return Some(Err(rc));
            }
        }
    }

    /// The mutex side of an unlock call: `None` when the range is not mutex-backed.
    #[inline]
    pub(crate) fn mutex_unlock(
        &mut self,
        off: u32,
        len: u32,
    ) -> Option<std::result::Result<(), i32>> {
        let idx = self.mutex_index(off, len)?;
        let m = self.mutexes.as_ref()?;
        let rc = unlock(m.chain(idx));
        Some(if rc == 0 { Ok(()) } else { Err(rc) })
    }

    fn allrecord_mutex_lock(&mut self, wait: bool) -> i32 {
        match self.mutexes.as_ref() {
            Some(m) => m.lock_allrecord_mutex(wait),
            None => libc::EINVAL,
        }
    }

    /// Takes the allrecord lock through the mutexes: the allrecord mutex stays held,
    /// and every chain mutex is passed through once so no chain holder remains.
    pub(crate) fn mutex_allrecord_lock(&mut self, kind: LockKind, flags: LockFlags) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 || flags.mark_only {
            return Ok(());
        }
        let rc = self.allrecord_mutex_lock(flags.wait);
        if !flags.wait && rc == libc::EBUSY {
            crate::lock::set_errno(libc::EAGAIN);
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        if rc != 0 {
            if !flags.probe {
                self.log(
                    DebugLevel::Trace,
                    &format!(
                        "allrecord_mutex_lock() failed: {}\n",
                        std::io::Error::from_raw_os_error(rc)
                    ),
                );
            }
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        let m = self
            .mutexes
            .as_ref()
            .expect("allrecord mutex was locked, so the area is mapped");
        let state = m.allrecord_state();
        if state != F_UNLCK {
            unlock(m.allrecord_mutex());
            self.log(DebugLevel::Fatal, &format!("allrecord_lock == {}\n", state));
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        m.set_allrecord_state(if kind == LockKind::Read {
            F_RDLCK
        } else {
            F_WRLCK
        });
        let rc = m.pass_through_chains(flags.wait);
        if rc != 0 {
            m.set_allrecord_state(F_UNLCK);
            unlock(m.allrecord_mutex());
            crate::lock::set_errno(rc);
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        Ok(())
    }

    /// Turns a read allrecord lock into a write one, waiting out chain readers.
    pub(crate) fn mutex_allrecord_upgrade(&mut self) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 {
            return Ok(());
        }
        let m = match self.mutexes.as_ref() {
            Some(m) => m,
            None => return Err(TdbError::Lock),
        };
        let state = m.allrecord_state();
        if state != F_RDLCK {
            self.ecode = TdbError::Lock.code();
            self.log(DebugLevel::Fatal, &format!("allrecord_lock == {}\n", state));
            return Err(TdbError::Lock);
        }
        m.set_allrecord_state(F_WRLCK);
        if m.pass_through_chains(true) != 0 {
            m.set_allrecord_state(F_RDLCK);
            self.ecode = TdbError::Lock.code();
            return Err(TdbError::Lock);
        }
        Ok(())
    }

    /// Undoes `mutex_allrecord_upgrade` after a failure.
    pub(crate) fn mutex_allrecord_downgrade(&mut self) {
        if let Some(m) = self.mutexes.as_ref() {
            if m.allrecord_state() == F_WRLCK {
                m.set_allrecord_state(F_RDLCK);
            }
        }
    }

    /// Releases the allrecord mutex.
    pub(crate) fn mutex_allrecord_unlock(&mut self) -> Result<()> {
        if self.flags & crate::flags::NOLOCK != 0 {
            return Ok(());
        }
        let m = match self.mutexes.as_ref() {
            Some(m) => m,
            None => return Err(TdbError::Lock),
        };
        let old = m.allrecord_state();
        if old != F_RDLCK && old != F_WRLCK {
            self.log(DebugLevel::Fatal, &format!("allrecord_lock == {}\n", old));
            return Err(TdbError::Lock);
        }
        m.set_allrecord_state(F_UNLCK);
        let rc = unlock(m.allrecord_mutex());
        if rc != 0 {
            m.set_allrecord_state(old);
            self.log(
                DebugLevel::Fatal,
                &format!(
                    "pthread_mutex_unlock(allrecord_mutex) failed: {}\n",
                    std::io::Error::from_raw_os_error(rc)
                ),
            );
            return Err(TdbError::Lock);
        }
        Ok(())
    }

    /// Maps the mutex area of an open mutex file.
    pub(crate) fn mutex_mmap(&mut self) -> std::io::Result<()> {
        if self.mutexes.is_some() || !self.have_mutexes() {
            return Ok(());
        }
        let size = mutex_area_size(self.hash_size, self.page_size);
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))?;
        self.mutexes = Some(MutexArea::map(file, size, self.hash_size)?);
        Ok(())
    }

    /// Maps the mutex area and initialises every mutex in it (first opener only).
    pub(crate) fn mutex_init(&mut self) -> std::io::Result<()> {
        self.mutex_mmap()?;
        let r = self
            .mutexes
            .as_ref()
            .map(|m| m.init_all())
            .unwrap_or(Ok(()));
        if let Err(rc) = r {
            self.mutexes = None;
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
}

/// Whether the C library keeps a mutex's lock word in its first int, zero exactly
/// when unlocked (glibc does); checked once on a private mutex, else never relied on.
fn lock_word_readable() -> bool {
    static READABLE: OnceLock<bool> = OnceLock::new();
    *READABLE.get_or_init(|| {
        let mut m: libc::pthread_mutex_t = libc::PTHREAD_MUTEX_INITIALIZER;
        let p: *mut libc::pthread_mutex_t = &mut m;
        let ok = with_robust_attr(|attr| {
            // SAFETY: a mutex on our stack, initialised here and destroyed below;
            // its first int is read while nobody else can touch it.
            unsafe {
                let rc = libc::pthread_mutex_init(p, attr);
                if rc != 0 {
                    return Err(rc);
                }
                let word = || std::ptr::read_volatile(p as *const i32);
                let unlocked = word() == 0;
                let locked = libc::pthread_mutex_lock(p) == 0 && word() != 0;
                let released = libc::pthread_mutex_unlock(p) == 0 && word() == 0;
                libc::pthread_mutex_destroy(p);
                Ok(unlocked && locked && released)
            }
        });
        ok.unwrap_or(false)
    })
}

/// Whether this system supports robust process-shared mutexes well enough for
/// TDB_MUTEX_LOCKING: a child that dies holding a shared mutex must leave it
/// recoverable (EOWNERDEAD). Checked once, by forking a child, and cached.
pub fn runtime_check_for_robust_mutexes() -> bool {
    static CACHED: OnceLock<bool> = OnceLock::new();
    *CACHED.get_or_init(probe_robust_mutexes)
}

fn probe_robust_mutexes() -> bool {
    let size = size_of::<libc::pthread_mutex_t>();
    // SAFETY: a fresh anonymous shared mapping; nothing else refers to it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return false;
    }
    let m = ptr.cast::<libc::pthread_mutex_t>();
    // (The mapping is big enough and page-aligned for one mutex, and unused.)
    let initialised = with_robust_attr(|attr| init_mutex(m, attr)).is_ok();
    let ok = initialised && probe_with_child(m);
    if initialised {
        // SAFETY: initialised above and no longer locked by anyone alive.
        unsafe { libc::pthread_mutex_destroy(m) };
    }
    // SAFETY: the mapping made above, unmapped once; `m` is not used afterwards.
    unsafe { libc::munmap(ptr, size) };
    ok
}

/// Forks a child that locks `m` and exits holding it; true when the parent then
/// sees EOWNERDEAD and can make the mutex consistent. `m` is an initialised
/// robust process-shared mutex in a shared mapping.
fn probe_with_child(m: *mut libc::pthread_mutex_t) -> bool {
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, pipe, read, write, ForkResult};
    let Ok((up_read, up_write)) = pipe() else {
        return false;
    };
    // SAFETY: the child only makes async-signal-safe calls (pthread_mutex_lock
    // on a process-shared mutex, write, _exit) before it exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(up_read);
            let rc = lock_robust(m, true);
            let _ = write(&up_write, &rc.to_ne_bytes());
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if rc == 0 { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(up_write);
            let mut buf = [0u8; 4];
            let n = read(&up_read, &mut buf).unwrap_or(0);
            while let Err(nix::errno::Errno::EINTR) = waitpid(child, None) {}
            // The child died holding `m`: a robust mutex answers the try-lock
            // with EOWNERDEAD, which lock_robust turns into a consistent mutex
            // that we hold (any other mutex stays busy).
            n == 4 && i32::from_ne_bytes(buf) == 0 && lock_robust(m, false) == 0 && unlock(m) == 0
        }
        Err(_) => false,
    }
}

impl MutexArea {
    /// Blocks until chain mutex `idx` could be taken for a write chain lock
    /// (no chain holder, no allrecord lock set), then leaves it free again.
    /// Returns 0 or the error number of the failing pthread call.
    pub(crate) fn wait_chain_free(&self, idx: usize) -> i32 {
        loop {
            let rc = lock_robust(self.chain(idx), true);
            if rc != 0 {
                return rc;
            }
            let state = self.allrecord_state();
            let rc = unlock(self.chain(idx));
            if rc != 0 || state == F_UNLCK {
                return rc;
            }
            // An allrecord lock is set: wait for its holder to let go.
            let rc = self.lock_allrecord_mutex(true);
            if rc != 0 {
                return rc;
            }
            let rc = unlock(self.allrecord_mutex());
            if rc != 0 {
                return rc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_samba_struct_on_this_abi() {
        // header 168, allrecord mutex, short, then 8-aligned chain mutexes
        assert_eq!(offset_of!(MutexAreaHead, allrecord_mutex), 168);
        assert_eq!(
            offset_of!(MutexAreaHead, hashchains),
            168 + size_of::<libc::pthread_mutex_t>() + 8
        );
        assert_eq!(mutex_area_size(131, 4096), 4096 * 2);
    }

    #[test]
    fn robust_mutexes_are_available_on_linux() {
        assert!(runtime_check_for_robust_mutexes());
        assert!(lock_word_readable(), "glibc keeps the lock word first");
    }
}
