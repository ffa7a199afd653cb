//! Per-chain access for a daemon that serves many requests on one handle:
//! the chain of a key, the used chains (to walk a database a slice at a
//! time with `traverse_chain`), and waiting, on a thread of its own, until
//! another process lets go of a chain, without holding the database handle
//! and without taking the chain.
//!
//! Such a daemon cannot block its handle on a chain lock a client holds. It
//! tries the lock without waiting and, when that fails, hands a [`ChainWait`]
//! to a helper thread that blocks until the chain is free and then lets the
//! daemon try again.
//!
//! * fcntl files: an open-file-description lock (F_OFD_SETLKW) on the chain's
//!   lock byte. OFD locks conflict with the classic fcntl locks tdb users
//!   take, also those of this process, so the wait ends when no one (the
//!   client nor this process) holds the chain; the lock is dropped at once.
//! * mutex files: the chain's robust mutex in a private mapping of the mutex
//!   area, taken and released; while an allrecord lock is set, its mutex is
//!   waited for in the same way.

use crate::error::{Result, TdbError};
use crate::lock::lock_offset;
use crate::mutex::{mutex_area_size, MutexArea};
use crate::tdb::Tdb;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use std::os::fd::BorrowedFd;

/// A blocking wait for one hash chain of one database, movable to another
/// thread. It never leaves the chain locked.
pub struct ChainWait {
    chain: u32,
    how: How,
}

enum How {
    /// The descriptor of the database (borrowed: closing any descriptor of the
    /// file would drop this process's classic locks on it) and the lock byte.
    Fcntl { fd: i32, offset: u32 },
    /// A mapping of the mutex area of its own and the chain's mutex index.
    Mutex { area: MutexArea, index: usize },
    /// The database takes no locks: there is nothing to wait for.
    Nothing,
}

impl Tdb {
    /// The hash chain `key` belongs to (0 .. hash_size).
    pub fn chain_index(&self, key: &[u8]) -> u32 {
        self.bucket(self.hash.hash(key))
    }

    /// The first hash chain at or after `chain` that holds records, or
    /// hash_size when there is none. Read without locking: a chain may fill
    /// or empty right after, as with any walk that does not lock the file.
    pub fn first_used_chain(&mut self, chain: u32) -> u32 {
        self.next_nonempty_chain(chain.min(self.hash_size))
    }

    /// A wait for hash chain `chain` (see `chain_index`), to run on another
    /// thread. The fcntl form borrows this handle's descriptor: run it only
    /// while the handle is open (a wait outliving it returns an error or
    /// returns early).
    pub fn chain_wait(&self, chain: u32) -> Result<ChainWait> {
        if chain >= self.hash_size {
            return Err(TdbError::Einval);
        }
        let how = if self.flags & crate::flags::NOLOCK != 0 {
            How::Nothing
        } else if self.have_mutexes() {
            let file = self.file.as_ref().ok_or(TdbError::Io)?;
            let size = mutex_area_size(self.hash_size, self.page_size);
            let area = MutexArea::map(file, size, self.hash_size).map_err(|_| TdbError::Io)?;
            How::Mutex {
                area,
                index: chain as usize + 1,
            }
        } else {
            let fd = self.file.as_ref().map(|f| {
                use std::os::fd::AsRawFd;
                f.as_raw_fd()
            });
            How::Fcntl {
                fd: fd.ok_or(TdbError::Io)?,
                offset: lock_offset(chain as i64),
            }
        };
        Ok(ChainWait { chain, how })
    }
}

impl ChainWait {
    /// The hash chain this waits for.
    pub fn chain(&self) -> u32 {
        self.chain
    }

    /// Blocks until the chain could be write-locked, and returns with it free
    /// (so a later try-lock usually succeeds, unless someone took it again).
    pub fn wait(&self) -> std::io::Result<()> {
        match &self.how {
            How::Nothing => Ok(()),
            How::Fcntl { fd, offset } => {
                ofd_lock(*fd, libc::F_WRLCK as libc::c_short, *offset, true)?;
                ofd_lock(*fd, libc::F_UNLCK as libc::c_short, *offset, false)
            }
            How::Mutex { area, index } => match area.wait_chain_free(*index) {
                0 => Ok(()),
                rc => Err(std::io::Error::from_raw_os_error(rc)),
            },
        }
    }
}

/// One open-file-description lock call on one byte (F_OFD_SETLK[W]),
/// retried when a signal interrupts it.
fn ofd_lock(fd: i32, ltype: libc::c_short, offset: u32, wait: bool) -> std::io::Result<()> {
    let fl = libc::flock {
        l_type: ltype,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: libc::off_t::from(offset),
        l_len: 1,
        l_pid: 0,
    };
    // SAFETY: `chain_wait` hands out a wait only for an open handle and its
    // contract is that the wait runs while that handle (and so `fd`) is open.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    loop {
        let arg = if wait {
            FcntlArg::F_OFD_SETLKW(&fl)
        } else {
            FcntlArg::F_OFD_SETLK(&fl)
        };
        match fcntl(fd, arg) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{flags, OpenOptions, Tdb};
    use std::ffi::CString;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// This thread holds the chain of "k"; a wait on another thread returns
    /// only after the unlock, and a wait on a free chain returns at once
    /// and leaves it free.
    fn wait_ends_at_unlock(tdb_flags: u32, tag: &str) {
        let path = std::env::temp_dir().join(format!("chains-{tag}-{}.tdb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let name = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let opts = OpenOptions {
            hash_size: 131,
            tdb_flags,
            open_flags: libc::O_CREAT | libc::O_RDWR,
            mode: 0o600,
            ..Default::default()
        };
        let mut t = Tdb::open(Some(&name), opts).unwrap();
        t.chainlock(b"k").unwrap();
        let wait = t.chain_wait(t.chain_index(b"k")).unwrap();
        assert_eq!(wait.chain(), t.chain_index(b"k"));
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            wait.wait().unwrap();
            tx.send(Instant::now()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the wait ended while the chain was held"
        );
        let released = Instant::now();
        t.chainunlock(b"k").unwrap();
        let woke = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(woke >= released);
        waiter.join().unwrap();
        t.chain_wait(t.chain_index(b"k")).unwrap().wait().unwrap();
        assert!(t.chain_wait(131).is_err());
        t.chainlock_nonblock(b"k").unwrap();
        t.chainunlock(b"k").unwrap();
        t.close().unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn fcntl_chain_wait_ends_at_unlock() {
        wait_ends_at_unlock(flags::DEFAULT, "fcntl");
    }

    #[test]
    fn mutex_chain_wait_ends_at_unlock() {
        wait_ends_at_unlock(flags::MUTEX_LOCKING | flags::CLEAR_IF_FIRST, "mutex");
    }
}
