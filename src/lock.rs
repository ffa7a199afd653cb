//! fcntl byte-range locks at Samba's offsets: open, active, transaction, freelist,
//! per-chain and allrecord locks, counted per offset, with the robust-mutex path
//! for TDB_MUTEX_LOCKING files.

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Write-locks the chain of `key` (waits).
    pub fn chainlock(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Write-locks the chain of `key` or fails at once.
    pub fn chainlock_nonblock(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Releases a chain write lock.
    pub fn chainunlock(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Read-locks the chain of `key` (waits).
    pub fn chainlock_read(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Read-locks the chain of `key` or fails at once.
    pub fn chainlock_read_nonblock(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Releases a chain read lock.
    pub fn chainunlock_read(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Records a chain write lock as held without taking it (the caller holds it otherwise).
    pub fn chainlock_mark(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Forgets a marked chain lock without releasing it.
    pub fn chainlock_unmark(&mut self, key: &[u8]) -> Result<()> { todo!() }
    /// Write-locks the whole database (waits).
    pub fn lockall(&mut self) -> Result<()> { todo!() }
    /// Write-locks the whole database or fails at once.
    pub fn lockall_nonblock(&mut self) -> Result<()> { todo!() }
    /// Releases the whole-database write lock.
    pub fn unlockall(&mut self) -> Result<()> { todo!() }
    /// Read-locks the whole database (waits).
    pub fn lockall_read(&mut self) -> Result<()> { todo!() }
    /// Read-locks the whole database or fails at once.
    pub fn lockall_read_nonblock(&mut self) -> Result<()> { todo!() }
    /// Releases the whole-database read lock.
    pub fn unlockall_read(&mut self) -> Result<()> { todo!() }
    /// Records the whole-database write lock as held without taking it.
    pub fn lockall_mark(&mut self) -> Result<()> { todo!() }
    /// Forgets a marked whole-database lock.
    pub fn lockall_unmark(&mut self) -> Result<()> { todo!() }
    /// Locks hash list `list` (-1 = freelist) with F_RDLCK/F_WRLCK `ltype`, not waiting (tdb_lock_nonblock).
    pub fn lock_list_nonblock(&mut self, list: i32, ltype: i32) -> Result<()> { todo!() }
    /// Unlocks hash list `list` (tdb_unlock).
    pub fn unlock_list(&mut self, list: i32, ltype: i32) -> Result<()> { todo!() }
    /// Records the transaction lock as held without taking it.
    pub fn transaction_write_lock_mark(&mut self) -> Result<()> { todo!() }
    /// Forgets a marked transaction lock.
    pub fn transaction_write_lock_unmark(&mut self) -> Result<()> { todo!() }
}
