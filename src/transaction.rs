//! Transactions: writes buffered in memory, a recovery area written and synced
//! before the data, so that an interrupted commit is rolled back at the next open.

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Starts a transaction (waits for the transaction lock).
    pub fn transaction_start(&mut self) -> Result<()> { todo!() }
    /// Starts a transaction or fails at once if another process holds the lock.
    pub fn transaction_start_nonblock(&mut self) -> Result<()> { todo!() }
    /// Writes and syncs the recovery area; the commit then cannot fail for lack of space.
    pub fn transaction_prepare_commit(&mut self) -> Result<()> { todo!() }
    /// Commits the transaction (prepares it first if needed).
    pub fn transaction_commit(&mut self) -> Result<()> { todo!() }
    /// Abandons the transaction.
    pub fn transaction_cancel(&mut self) -> Result<()> { todo!() }
    /// Whether a transaction is open on this handle.
    pub fn transaction_active(&self) -> bool { todo!() }
}
