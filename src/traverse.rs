//! Walking records: traverse (write-locking), traverse_read, traverse_chain,
//! traverse_key_chain, firstkey/nextkey.

use crate::error::Result;
use crate::tdb::Tdb;

/// A traversal callback: gets the database, key and value; returns true to stop.
pub type TraverseFn<'a> = &'a mut dyn FnMut(&mut Tdb, &[u8], &[u8]) -> bool;

impl Tdb {
    /// Visits every live record; the callback may modify the database. Returns the count visited.
    pub fn traverse(&mut self, f: Option<TraverseFn<'_>>) -> Result<i32> { todo!() }
    /// Visits every live record under read locks. Returns the count visited.
    pub fn traverse_read(&mut self, f: Option<TraverseFn<'_>>) -> Result<i32> { todo!() }
    /// Visits the records of hash chain `chain` (taken modulo hash_size).
    pub fn traverse_chain(&mut self, chain: u32, f: TraverseFn<'_>) -> Result<i32> { todo!() }
    /// Visits the records in the chain `key` hashes to.
    pub fn traverse_key_chain(&mut self, key: &[u8], f: TraverseFn<'_>) -> Result<i32> { todo!() }
    /// The first key of a firstkey/nextkey walk, or `NoExist` for an empty database.
    pub fn firstkey(&mut self) -> Result<Vec<u8>> { todo!() }
    /// The key after `key`, or `NoExist` at the end.
    pub fn nextkey(&mut self, key: &[u8]) -> Result<Vec<u8>> { todo!() }
}
