//! The freelist: allocation, freeing with neighbour merging, and its checks.

use crate::error::Result;
use crate::tdb::Tdb;

impl Tdb {
    /// Number of entries on the freelist (tdb_freelist_size).
    pub fn freelist_size(&mut self) -> Result<i32> { todo!() }
    /// Walks the freelist checking for duplicates and loops; returns the entry count.
    pub fn validate_freelist(&mut self) -> Result<i32> { todo!() }
}
