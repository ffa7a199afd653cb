//! An attached database as a client sees it: the daemon's id for it and the
//! local tdb the daemon keeps it in, opened by this process so that record
//! locks are the tdb's chain locks, as Samba's clients take them.

use std::ffi::CString;

use ctdb_protocol::ltdb::{LtdbHeader, LTDB_HEADER_LEN, REC_RO_HAVE_DELEGATIONS};
use ctdb_protocol::ltdb::{REC_RO_FLAGS, REC_RO_HAVE_READONLY};
use ctdb_protocol::{DbId, Pnn};
use tdb_engine::{OpenOptions, StoreFlag, Tdb, TdbError};

use crate::error::ClientError;

/// The handle of an attached database on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DbHandle(pub usize);

/// A database attached on this connection, its local tdb open.
pub struct Database {
    /// The daemon's id for it.
    pub id: DbId,
    /// The name it was attached with.
    pub name: String,
    /// True for a persistent database.
    pub persistent: bool,
    tdb: Box<Tdb>,
}

/// A record whose chain lock this connection holds, with what it read.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldRecord {
    /// The database it belongs to.
    pub db: DbHandle,
    /// The record key.
    pub key: Vec<u8>,
    /// The record header as read under the lock (written back unchanged).
    pub header: LtdbHeader,
    /// The value after the header.
    pub data: Vec<u8>,
    /// True when only a read-only copy is held.
    pub readonly: bool,
}

/// What looking at the local copy of a record under its chain lock found.
pub enum LocalLook {
    /// This node may use the record: the chain lock is held.
    Usable {
        /// The header read.
        header: LtdbHeader,
        /// The value read.
        data: Vec<u8>,
        /// True when the copy is a read-only delegation.
        readonly: bool,
    },
    /// The record must be migrated here first; the chain lock was released.
    Migrate,
}

impl Database {
    /// Opens the local tdb at `path` with the daemon's `tdb_flags`.
    pub fn open(
        id: DbId,
        name: String,
        persistent: bool,
        path: &str,
        tdb_flags: u32,
    ) -> Result<Database, ClientError> {
        let open_error = |errno: i32| ClientError::Open {
            path: path.to_string(),
            errno,
        };
        let cpath = CString::new(path).map_err(|_| open_error(libc::EINVAL))?;
        let options = OpenOptions {
            tdb_flags,
            open_flags: libc::O_RDWR,
            ..OpenOptions::default()
        };
        let tdb = Tdb::open(Some(&cpath), options).map_err(|e| open_error(e.errno))?;
        Ok(Database {
            id,
            name,
            persistent,
            tdb,
        })
    }

    /// Closes the local tdb (dropping a database closes it as well).
    pub fn close(self) {
        let _ = self.tdb.close();
    }

    /// Takes the chain lock of `key` and keeps it when this node is the
    /// record's dmaster (or holds a read-only copy and `readonly` is asked),
    /// as Samba 4.17's client decides; otherwise releases it.
    pub fn look(
        &mut self,
        key: &[u8],
        pnn: Option<Pnn>,
        readonly: bool,
    ) -> Result<LocalLook, ClientError> {
        self.tdb.chainlock(key)?;
        let found = match self.tdb.fetch(key) {
            Ok(value) => Some(value),
            Err(TdbError::NoExist) => None,
            Err(e) => {
                let _ = self.tdb.chainunlock(key);
                return Err(e.into());
            }
        };
        let usable = found.as_deref().and_then(|value| {
            let (header, data) = LtdbHeader::split(value).ok()?;
            let ours = Some(header.dmaster) == pnn;
            let ok = if readonly {
                ours || header.flags & (REC_RO_HAVE_READONLY | REC_RO_HAVE_DELEGATIONS) != 0
            } else {
                ours && header.flags & REC_RO_HAVE_DELEGATIONS == 0
            };
            ok.then(|| (header, data.to_vec()))
        });
        match usable {
            Some((header, data)) => Ok(LocalLook::Usable {
                readonly: readonly || header.flags & REC_RO_FLAGS != 0,
                header,
                data,
            }),
            None => {
                self.tdb.chainunlock(key)?;
                Ok(LocalLook::Migrate)
            }
        }
    }

    /// This node's copy of `key`, read without a lock as Samba's client
    /// reads persistent records: its header and value, or a header naming
    /// no dmaster and an empty value when there is none.
    pub fn fetch_local(&mut self, key: &[u8]) -> Result<(LtdbHeader, Vec<u8>), ClientError> {
        let missing = || LtdbHeader {
            dmaster: Pnn::UNKNOWN,
            ..LtdbHeader::default()
        };
        match self.tdb.fetch(key) {
            Ok(value) => match LtdbHeader::split(&value) {
                Ok((header, data)) => Ok((header, data.to_vec())),
                Err(_) => Ok((missing(), Vec::new())),
            },
            Err(TdbError::NoExist) => Ok((missing(), Vec::new())),
            Err(e) => Err(e.into()),
        }
    }

    /// Releases the chain lock of `key`.
    pub fn unlock(&mut self, key: &[u8]) -> Result<(), ClientError> {
        self.tdb.chainunlock(key)?;
        Ok(())
    }

    /// Stores `data` for a held record with its header unchanged, as Samba
    /// 4.17's client does (the daemon moves the rsn on migrations); a write
    /// of the value already there is skipped.
    pub fn store(&mut self, held: &mut HeldRecord, data: &[u8]) -> Result<(), ClientError> {
        if held.data == data {
            return Ok(());
        }
        let header = held.header.to_array();
        debug_assert_eq!(header.len(), LTDB_HEADER_LEN);
        self.tdb
            .store(&held.key, &[&header, data], StoreFlag::Replace)?;
        held.data = data.to_vec();
        Ok(())
    }
}
