//! Full consistency check of a database (tdb_check).

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Checks header, chains, records and free space; `f` may veto each record (non-zero = bad).
    pub fn check(&mut self, f: Option<&mut dyn FnMut(&[u8], &[u8]) -> i32>) -> Result<()> { todo!() }
}
