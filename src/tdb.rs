//! The database handle and its record operations: fetch, parse, exists, store,
//! append, delete, wipe and the sequence number.

use crate::error::{Result, TdbError};

/// How `store` treats an existing or missing key (TDB_REPLACE, TDB_INSERT, TDB_MODIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFlag {
    /// Insert or overwrite.
    Replace = 1,
    /// Fail with `TdbError::Exists` if the key is present.
    Insert = 2,
    /// Fail with `TdbError::NoExist` if the key is absent.
    Modify = 3,
}

impl StoreFlag {
    /// Maps the C flag value; anything else is treated as TDB_REPLACE, as Samba does.
    pub fn from_c(flag: i32) -> StoreFlag {
        match flag {
            2 => StoreFlag::Insert,
            3 => StoreFlag::Modify,
            _ => StoreFlag::Replace,
        }
    }
}

/// An open tdb database.
pub struct Tdb {
    _todo: (),
}

impl Tdb {
    /// Returns a copy of the value stored under `key`, or `NoExist`.
    pub fn fetch(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        todo!()
    }

    /// Calls `parser` with the value in place (no copy) under a chain read lock.
    pub fn parse_record<R>(&mut self, key: &[u8], parser: impl FnOnce(&[u8]) -> R) -> Result<R> {
        todo!()
    }

    /// Whether `key` is present.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        todo!()
    }

    /// Removes `key`; `NoExist` when it was absent.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        todo!()
    }

    /// Stores the concatenation of `parts` under `key` (tdb_storev).
    pub fn store(&mut self, key: &[u8], parts: &[&[u8]], flag: StoreFlag) -> Result<()> {
        todo!()
    }

    /// Appends `data` to the value of `key` (creating it when absent).
    pub fn append(&mut self, key: &[u8], data: &[u8]) -> Result<()> {
        todo!()
    }

    /// Deletes every record and returns all space to the freelist.
    pub fn wipe_all(&mut self) -> Result<()> {
        todo!()
    }

    /// Rewrites the database compactly through a temporary in-memory copy, in a transaction.
    pub fn repack(&mut self) -> Result<()> {
        todo!()
    }

    /// Turns on TDB_SEQNUM.
    pub fn enable_seqnum(&mut self) {
        todo!()
    }

    /// The sequence number stored in the header.
    pub fn get_seqnum(&mut self) -> i32 {
        todo!()
    }

    /// Increments the sequence number without taking a lock (tdb_increment_seqnum_nonblock).
    pub fn increment_seqnum_nonblock(&mut self) {
        todo!()
    }
}

#[allow(dead_code)]
fn _unused(_: TdbError) {}
