//! The vnn map: which node is the lmaster of a key, and how a recovery
//! builds a new map. Shared by the recovery run and record migration.

use ctdb_protocol::types::{VnnMap, CAP_LMASTER};
use ctdb_protocol::{Generation, Pnn};

/// The lmaster of `key` under `map`, as Samba computes it: the Jenkins hash
/// of the key modulo the map's size indexes the map. `None` for an empty map.
pub fn lmaster(map: &VnnMap, key: &[u8]) -> Option<Pnn> {
    if map.map.is_empty() {
        return None;
    }
    let slot = tdb_engine::jenkins_hash(key) as usize % map.map.len();
    Some(map.map[slot])
}

/// The vnn map a recovery installs: the nodes taking part that have the
/// lmaster capability, in the order given; when none has it, the leader
/// alone (as Samba's recovery does).
pub fn build(generation: Generation, nodes: &[(Pnn, u32)], leader: Pnn) -> VnnMap {
    let mut map: Vec<Pnn> = nodes
        .iter()
        .filter(|(_, caps)| caps & CAP_LMASTER != 0)
        .map(|(pnn, _)| *pnn)
        .collect();
    if map.is_empty() {
        map.push(leader);
    }
    VnnMap { generation, map }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmaster_indexes_by_jenkins_hash() {
        let map = VnnMap {
            generation: Generation(7),
            map: vec![Pnn(0), Pnn(1), Pnn(2)],
        };
        for key in [&b"a"[..], b"hello", b"", b"key-with-more-bytes-than-twelve"] {
            let slot = tdb_engine::jenkins_hash(key) % 3;
            assert_eq!(lmaster(&map, key), Some(Pnn(slot)));
        }
        assert_eq!(lmaster(&VnnMap::default(), b"a"), None);
        // Known value of Samba's tdb_jenkins_hash for "hello" picks a fixed slot.
        let one = VnnMap {
            generation: Generation(7),
            map: vec![Pnn(5)],
        };
        assert_eq!(lmaster(&one, b"hello"), Some(Pnn(5)));
    }

    #[test]
    fn build_keeps_lmaster_capable_nodes_or_the_leader() {
        let m = build(
            Generation(9),
            &[
                (Pnn(0), CAP_LMASTER),
                (Pnn(1), 0),
                (Pnn(2), CAP_LMASTER | 1),
            ],
            Pnn(1),
        );
        assert_eq!(m.map, vec![Pnn(0), Pnn(2)]);
        assert_eq!(m.generation, Generation(9));
        let m = build(Generation(9), &[(Pnn(1), 0)], Pnn(1));
        assert_eq!(m.map, vec![Pnn(1)]);
    }
}
