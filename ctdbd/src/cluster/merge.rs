//! The record merge rules of a recovery: which of two copies of a volatile
//! record is kept while pulling, and how a kept record is prepared for the
//! push.

use ctdb_protocol::ltdb::{LtdbHeader, LTDB_HEADER_LEN, REC_FLAG_MIGRATED_WITH_DATA};
use ctdb_protocol::{Layout, Pnn};

/// True when the pulled copy `candidate` replaces `existing` in the
/// recovery database (Samba's rule): a higher RSN wins; on equal RSNs the
/// candidate wins only when the copy held so far names the leader (the
/// node running the recovery) as its dmaster, since a copy whose dmaster is
/// another node came from the node that really holds the record.
pub fn newer(existing: &LtdbHeader, candidate: &LtdbHeader, leader: Pnn) -> bool {
    if candidate.rsn != existing.rsn {
        return candidate.rsn > existing.rsn;
    }
    existing.dmaster == leader
}

/// The stored value to push for a record kept by the recovery, or `None`
/// when it is not pushed: records that are only a header (deleted records)
/// or shorter are dropped. For volatile databases the leader becomes the
/// record's dmaster and the record is marked as migrated with data;
/// persistent and replicated records are pushed as pulled.
pub fn prepare_for_push(data: &[u8], persistent: bool, leader: Pnn) -> Option<Vec<u8>> {
    if data.len() <= LTDB_HEADER_LEN {
        return None;
    }
    if persistent {
        return Some(data.to_vec());
    }
    let (mut header, value) = LtdbHeader::split(data).ok()?;
    header.dmaster = leader;
    header.flags |= REC_FLAG_MIGRATED_WITH_DATA;
    let mut out = Vec::with_capacity(data.len());
    header.encode(&mut out);
    out.extend_from_slice(value);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(rsn: u64, dmaster: u32) -> LtdbHeader {
        LtdbHeader {
            rsn,
            dmaster: Pnn(dmaster),
            ..Default::default()
        }
    }

    #[test]
    fn higher_rsn_wins_either_way() {
        assert!(newer(&h(3, 1), &h(4, 2), Pnn(0)));
        assert!(!newer(&h(4, 1), &h(3, 2), Pnn(0)));
        assert!(!newer(&h(4, 0), &h(3, 0), Pnn(0)));
    }

    #[test]
    fn equal_rsn_replaces_only_a_copy_naming_the_leader() {
        // The copy held names node 1 (not the leader 0): it stays.
        assert!(!newer(&h(5, 1), &h(5, 2), Pnn(0)));
        // The copy held names the leader: the candidate replaces it.
        assert!(newer(&h(5, 0), &h(5, 2), Pnn(0)));
    }

    #[test]
    fn push_drops_empty_records_and_sets_the_leader_as_dmaster() {
        let mut empty = Vec::new();
        h(9, 3).encode(&mut empty);
        assert_eq!(prepare_for_push(&empty, false, Pnn(1)), None);
        assert_eq!(prepare_for_push(&empty, true, Pnn(1)), None);
        let mut full = empty.clone();
        full.extend_from_slice(b"value");
        let out = prepare_for_push(&full, false, Pnn(1)).unwrap();
        let (hdr, value) = LtdbHeader::split(&out).unwrap();
        assert_eq!(value, b"value");
        assert_eq!(hdr.rsn, 9);
        assert_eq!(hdr.dmaster, Pnn(1));
        assert_ne!(hdr.flags & REC_FLAG_MIGRATED_WITH_DATA, 0);
        assert_eq!(prepare_for_push(&full, true, Pnn(1)).unwrap(), full);
    }
}
