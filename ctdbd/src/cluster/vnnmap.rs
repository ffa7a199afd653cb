//! The vnn map a recovery builds (which node is the lmaster of a key under
//! it is `call::lmaster`).

use ctdb_protocol::types::{VnnMap, CAP_LMASTER};
use ctdb_protocol::{Generation, Pnn};

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
