//! The record merge rules of a recovery: which of the pulled copies of a
//! volatile record is kept, and how a kept record is prepared for the push.

use ctdb_protocol::ltdb::{LtdbHeader, LTDB_HEADER_LEN, REC_FLAG_MIGRATED_WITH_DATA};
use ctdb_protocol::Pnn;

/// True when the pulled copy `candidate` replaces `existing` in the
/// recovery database, by Samba's rule as its pull from one node after
/// another applies it (the reference [`preferred`] is tested against): a
/// higher RSN wins; on equal RSNs the candidate wins
/// only when the copy held so far names the leader (the node running the
/// recovery) as its dmaster, since a copy whose dmaster is another node
/// came from the node that really holds the record.
#[cfg(test)]
pub fn newer(existing: &LtdbHeader, candidate: &LtdbHeader, leader: Pnn) -> bool {
    if candidate.rsn != existing.rsn {
        return candidate.rsn > existing.rsn;
    }
    existing.dmaster == leader
}

/// [`newer`] for copies that arrive in any order: each copy comes with its
/// source, the place of the node it was pulled from in the pull order.
/// The copy kept in the end is the one a pull from one node after another,
/// in that order, keeps with [`newer`]: the highest RSN; among copies of
/// that RSN, the first (in pull order) whose dmaster is not the leader,
/// or, when all of them name the leader, the last.
pub fn preferred(
    existing: &LtdbHeader,
    existing_source: u32,
    candidate: &LtdbHeader,
    candidate_source: u32,
    leader: Pnn,
) -> bool {
    if candidate.rsn != existing.rsn {
        return candidate.rsn > existing.rsn;
    }
    match (existing.dmaster == leader, candidate.dmaster == leader) {
        (true, false) => true,
        (false, true) => false,
        (false, false) => candidate_source < existing_source,
        (true, true) => candidate_source > existing_source,
    }
}

/// The record header to push for a record kept by the recovery (its data,
/// header included, is `data`), or `None` when it is not pushed: records
/// that are only a header (deleted records) or shorter are dropped. For
/// volatile databases the leader becomes the record's dmaster and the
/// record is marked as migrated with data; persistent and replicated
/// records are pushed as pulled.
pub fn push_header(data: &[u8], persistent: bool, leader: Pnn) -> Option<[u8; LTDB_HEADER_LEN]> {
    if data.len() <= LTDB_HEADER_LEN {
        return None;
    }
    let (mut header, _) = LtdbHeader::split(data).ok()?;
    if persistent {
        let mut raw = [0u8; LTDB_HEADER_LEN];
        raw.copy_from_slice(&data[..LTDB_HEADER_LEN]);
        return Some(raw);
    }
    header.dmaster = leader;
    header.flags |= REC_FLAG_MIGRATED_WITH_DATA;
    Some(header.to_array())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::Layout;

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
        assert!(preferred(&h(3, 1), 0, &h(4, 2), 1, Pnn(0)));
        assert!(!preferred(&h(4, 1), 2, &h(3, 2), 0, Pnn(0)));
    }

    #[test]
    fn equal_rsn_replaces_only_a_copy_naming_the_leader() {
        // The copy held names node 1 (not the leader 0): it stays.
        assert!(!newer(&h(5, 1), &h(5, 2), Pnn(0)));
        // The copy held names the leader: the candidate replaces it.
        assert!(newer(&h(5, 0), &h(5, 2), Pnn(0)));
    }

    /// Every order of arrival of every combination of copies keeps what
    /// the sequential pull in source order keeps.
    #[test]
    fn any_arrival_order_keeps_what_the_sequential_pull_keeps() {
        let leader = Pnn(1);
        let choices = [(4, 0), (4, 1), (4, 2), (5, 1), (5, 2), (3, 0)];
        let n = choices.len();
        for a in 0..n {
            for b in 0..n {
                for c in 0..n {
                    let copies = [
                        h(choices[a].0, choices[a].1),
                        h(choices[b].0, choices[b].1),
                        h(choices[c].0, choices[c].1),
                    ];
                    // Sequential: source 0, 1, 2 with `newer`.
                    let mut held = 0;
                    for s in 1..3 {
                        if newer(&copies[held], &copies[s], leader) {
                            held = s;
                        }
                    }
                    for order in [
                        [0, 1, 2],
                        [0, 2, 1],
                        [1, 0, 2],
                        [1, 2, 0],
                        [2, 0, 1],
                        [2, 1, 0],
                    ] {
                        let mut kept = order[0];
                        for &s in &order[1..] {
                            if preferred(&copies[kept], kept as u32, &copies[s], s as u32, leader) {
                                kept = s;
                            }
                        }
                        assert_eq!(kept, held, "copies {copies:?} order {order:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn push_drops_empty_records_and_sets_the_leader_as_dmaster() {
        let mut empty = Vec::new();
        h(9, 3).encode(&mut empty);
        assert_eq!(push_header(&empty, false, Pnn(1)), None);
        assert_eq!(push_header(&empty, true, Pnn(1)), None);
        let mut full = empty.clone();
        full.extend_from_slice(b"value");
        let out = push_header(&full, false, Pnn(1)).unwrap();
        let (hdr, rest) = LtdbHeader::split(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(hdr.rsn, 9);
        assert_eq!(hdr.dmaster, Pnn(1));
        assert_ne!(hdr.flags & REC_FLAG_MIGRATED_WITH_DATA, 0);
        assert_eq!(push_header(&full, true, Pnn(1)).unwrap()[..], full[..24]);
    }
}
