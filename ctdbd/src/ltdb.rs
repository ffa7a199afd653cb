//! The CTDB record header that every record of a clustered database carries
//! in front of its value, and the rules Samba's daemon follows when it
//! fetches and stores records locally (see docs/ctdbd.md, "Records").

use crate::vacuum::{DeleteQueue, QueueAction};
use tdb_engine::{StoreFlag, Tdb, TdbError};

use ctdb_protocol::ltdb::LtdbHeader;
/// The header size and record flags, from the protocol crate.
pub use ctdb_protocol::ltdb::{
    DB_SEQNUM_KEY, LTDB_HEADER_LEN as HEADER_LEN, REC_FLAG_AUTOMATIC, REC_FLAG_MIGRATED_WITH_DATA,
    REC_FLAG_VACUUM_MIGRATED, REC_RO_FLAGS,
};
#[cfg(test)]
pub use ctdb_protocol::ltdb::{REC_RO_HAVE_DELEGATIONS, REC_RO_HAVE_READONLY};
use ctdb_protocol::Pnn;

/// The record header with the dmaster as a bare pnn, as the record rules
/// compare it; its layout is the protocol crate's `LtdbHeader`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub rsn: u64,
    pub dmaster: u32,
    pub reserved1: u32,
    pub flags: u32,
}

impl From<LtdbHeader> for Header {
    fn from(h: LtdbHeader) -> Header {
        Header {
            rsn: h.rsn,
            dmaster: h.dmaster.0,
            reserved1: h.reserved1,
            flags: h.flags,
        }
    }
}

impl Header {
    /// The 24 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        LtdbHeader {
            rsn: self.rsn,
            dmaster: Pnn(self.dmaster),
            reserved1: self.reserved1,
            flags: self.flags,
        }
        .to_array()
    }

    /// The header at the front of a stored value, or None when the value is
    /// too short to hold one.
    pub fn decode(b: &[u8]) -> Option<Header> {
        LtdbHeader::split(b).ok().map(|(h, _)| Header::from(h))
    }
}

/// What kind of database a record lives in; the store rules differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Volatile,
    Persistent,
    Replicated,
}

/// The node's view needed by the record rules.
#[derive(Clone, Copy, Debug)]
pub struct NodeView {
    pub pnn: u32,
    /// lmaster of every key.  With one node in the vnn map this is that
    /// node; the multi-node version will hash the key over the map.
    pub lmaster: u32,
}

/// What the daemon's store rules make of a record: kept (with what that
/// means for the vacuumer's delete queue) or deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRule {
    /// Stored with the (adjusted) header.
    Keep(QueueAction),
    /// Deleted instead of stored.
    Delete,
}

/// The daemon's store rules without the store: for volatile databases
/// whether the record is kept or deleted, bumping the rsn when this node is
/// the dmaster of a kept record; the flags that never reach the file are
/// cleared from `header`. Other kinds of database keep every record with
/// the header as given.
pub fn store_rule(kind: Kind, node: NodeView, header: &mut Header, empty: bool) -> StoreRule {
    if kind != Kind::Volatile {
        return StoreRule::Keep(QueueAction::Leave);
    }
    let mut keep = false;
    let mut schedule_for_deletion = false;
    if !empty || header.flags & REC_RO_FLAGS != 0 {
        keep = true;
    } else if header.flags & REC_FLAG_AUTOMATIC != 0 {
        // A record created by fetch with an initial header: kept, and the
        // vacuumer is told about it.
        keep = true;
        schedule_for_deletion = true;
    } else if header.flags & REC_FLAG_MIGRATED_WITH_DATA != 0 {
        keep = true;
    } else if node.pnn == node.lmaster {
        // The lmaster keeps even empty records, unless it got them back by a
        // vacuum migration and is the dmaster.
        keep = header.flags & REC_FLAG_VACUUM_MIGRATED == 0 || node.pnn != header.dmaster;
    } else if node.pnn == header.dmaster {
        keep = true;
    }
    if keep && node.pnn == header.dmaster && header.flags & REC_RO_FLAGS == 0 {
        header.rsn += 1;
        if empty {
            schedule_for_deletion = true;
        }
    }
    header.flags &= !(REC_FLAG_VACUUM_MIGRATED | REC_FLAG_AUTOMATIC);
    match (keep, schedule_for_deletion) {
        (false, _) => StoreRule::Delete,
        (true, true) => StoreRule::Keep(QueueAction::Schedule),
        (true, false) => StoreRule::Keep(QueueAction::Remove),
    }
}

/// Stores a record as the daemon does ([`store_rule`], then the store or
/// the delete).  Returns what the store means for the vacuumer's delete
/// queue: an empty record left behind is queued (with the header as
/// stored), a record kept with a value leaves the queue.
pub fn store(
    tdb: &mut Tdb,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    header: &mut Header,
    data: &[u8],
) -> Result<QueueAction, TdbError> {
    match store_rule(kind, node, header, data.is_empty()) {
        StoreRule::Keep(action) => {
            tdb.store(key, &[&header.encode(), data], StoreFlag::Replace)?;
            Ok(action)
        }
        StoreRule::Delete => match tdb.delete(key) {
            Ok(()) | Err(TdbError::NoExist) => Ok(QueueAction::Leave),
            Err(e) => Err(e),
        },
    }
}

/// Fetches a record, splitting off the header.  A missing record (or one too
/// short for a header) gets an initial header naming the lmaster as dmaster;
/// if that makes this node the dmaster (or the database is persistent) the
/// initial record is written, as Samba's daemon does.  That initial store
/// queues the empty record for deletion: `queue` hears about it.
pub fn fetch(
    tdb: &mut Tdb,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    queue: &mut DeleteQueue,
) -> Result<(Header, Vec<u8>), TdbError> {
    match tdb.fetch(key) {
        Ok(v) => {
            if let Some(h) = Header::decode(&v) {
                return Ok((h, v[HEADER_LEN..].to_vec()));
            }
        }
        Err(TdbError::NoExist) => {}
        Err(e) => return Err(e),
    }
    let mut h = Header {
        dmaster: node.lmaster,
        flags: REC_FLAG_AUTOMATIC,
        ..Default::default()
    };
    if kind == Kind::Persistent || h.dmaster == node.pnn {
        let action = store(tdb, kind, node, key, &mut h, &[])?;
        queue.apply(key, &h, action);
    }
    Ok((h, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = Header {
            rsn: 0x0102030405060708,
            dmaster: 7,
            reserved1: 0,
            flags: REC_FLAG_AUTOMATIC,
        };
        let b = h.encode();
        assert_eq!(&b[0..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[8..12], &[7, 0, 0, 0]);
        assert_eq!(&b[16..20], &[0, 0, 4, 0]);
        assert_eq!(&b[20..24], &[0, 0, 0, 0]);
        assert_eq!(Header::decode(&b), Some(h));
        assert_eq!(Header::decode(&b[..23]), None);
    }
}
