//! The leader's periodic checks (Samba's main loop): from what every active
//! node reports, decide whether node flags must be pushed and whether a
//! recovery is needed, and why.

use ctdb_protocol::types::{
    NodeFlagChange, NodeMap, VnnMap, CAP_LMASTER, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_INACTIVE,
    RECOVERY_NORMAL,
};
use ctdb_protocol::{Generation, Pnn};
use std::collections::BTreeMap;
use std::fmt;

/// What one active node reported in a monitoring round.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReport {
    /// Its nodemap.
    pub nodemap: NodeMap,
    /// Its recovery mode.
    pub recmode: u32,
    /// Its vnn map.
    pub vnnmap: VnnMap,
    /// Its capabilities.
    pub caps: u32,
}

/// Why the leader starts a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A previous recovery did not finish.
    Unfinished,
    /// A node is in recovery mode (it started, or `ctdb recover` asked).
    NodeInRecovery(Pnn),
    /// A node's nodemap lists a different number of nodes.
    NodeCountDiffers(Pnn),
    /// A node's nodemap lists different nodes.
    NodemapDiffers(Pnn),
    /// The vnn map's size is not the number of active lmasters (a node
    /// died, returned or changed its flags).
    VnnmapSize {
        /// Entries in the leader's vnn map.
        vnnmap: usize,
        /// Active nodes with the lmaster capability.
        lmasters: usize,
    },
    /// An active lmaster is missing from the vnn map.
    LmasterMissing(Pnn),
    /// A node has another generation.
    GenerationDiffers {
        /// The node.
        pnn: Pnn,
        /// Its generation.
        theirs: Generation,
        /// The leader's.
        ours: Generation,
    },
    /// A node has another vnn map of the same generation.
    VnnmapDiffers(Pnn),
    /// A node did not report though the leader's nodemap says it is active.
    Unreported(Pnn),
}

impl Reason {
    /// The node the leader blames for it (given banning credits), as
    /// Samba's main loop does; `me` is the leader.  A node in recovery mode
    /// or an unfinished recovery blames nobody.
    pub fn culprit(&self, me: Pnn) -> Option<Pnn> {
        match self {
            Reason::Unfinished | Reason::NodeInRecovery(_) => None,
            Reason::VnnmapSize { .. } => Some(me),
            Reason::NodeCountDiffers(p)
            | Reason::NodemapDiffers(p)
            | Reason::LmasterMissing(p)
            | Reason::VnnmapDiffers(p)
            | Reason::Unreported(p)
            | Reason::GenerationDiffers { pnn: p, .. } => Some(*p),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unfinished => write!(f, "a previous recovery did not finish"),
            Reason::NodeInRecovery(p) => write!(f, "node {p} was in recovery mode"),
            Reason::NodeCountDiffers(p) => write!(f, "node {p} has a different node count"),
            Reason::NodemapDiffers(p) => write!(f, "node {p} has a different nodemap"),
            Reason::VnnmapSize { vnnmap, lmasters } => write!(
                f,
                "the vnnmap count is different from the number of active lmaster nodes: {vnnmap} vs {lmasters}"
            ),
            Reason::LmasterMissing(p) => write!(f, "active lmaster node {p} is not in the vnnmap"),
            Reason::GenerationDiffers { pnn, theirs, ours } => write!(
                f,
                "node {pnn} has a different generation of vnnmap: {theirs} vs {ours} (ours)"
            ),
            Reason::VnnmapDiffers(p) => write!(f, "node {p} has a different vnnmap"),
            Reason::Unreported(p) => write!(f, "node {p} did not report"),
        }
    }
}

fn flags_of(map: &NodeMap, pnn: Pnn) -> Option<u32> {
    map.0.iter().find(|n| n.pnn == pnn).map(|n| n.flags)
}

/// The active nodes of a nodemap (not disconnected, banned, stopped or
/// deleted), in nodemap order.
pub fn active_nodes(map: &NodeMap) -> Vec<Pnn> {
    map.0
        .iter()
        .filter(|n| n.flags & NODE_FLAGS_INACTIVE == 0)
        .map(|n| n.pnn)
        .collect()
}

/// The connected nodes of a nodemap, in nodemap order.
pub fn connected_nodes(map: &NodeMap) -> Vec<Pnn> {
    map.0
        .iter()
        .filter(|n| n.flags & NODE_FLAGS_DISCONNECTED == 0)
        .map(|n| n.pnn)
        .collect()
}

/// The flag changes the leader pushes (Samba's update_flags), from the
/// nodemaps of the connected nodes (inactive ones included: a stopped node
/// that continues is only seen so): a node's own view of its flags wins
/// over the leader's; then the leader's view of each node is pushed
/// wherever another node disagrees. The disconnected
/// bit is each node's own business and is ignored.
pub fn flag_updates(
    me: Pnn,
    local: &NodeMap,
    nodemaps: &BTreeMap<Pnn, NodeMap>,
) -> Vec<NodeFlagChange> {
    let mask = !NODE_FLAGS_DISCONNECTED;
    let mut changes = Vec::new();
    for node in &local.0 {
        if node.flags & NODE_FLAGS_DISCONNECTED != 0 {
            continue;
        }
        let local_flags = node.flags & mask;
        let own = if node.pnn == me {
            None
        } else {
            nodemaps.get(&node.pnn).and_then(|m| flags_of(m, node.pnn))
        };
        if let Some(own) = own {
            if own & mask != local_flags {
                changes.push(NodeFlagChange {
                    pnn: node.pnn,
                    new_flags: own & mask,
                    old_flags: local_flags,
                });
                continue;
            }
        }
        let disagrees = nodemaps.iter().any(|(p, m)| {
            *p != me
                && *p != node.pnn
                && flags_of(m, node.pnn).is_some_and(|f| f & mask != local_flags)
        });
        if disagrees {
            changes.push(NodeFlagChange {
                pnn: node.pnn,
                new_flags: local_flags,
                old_flags: local_flags,
            });
        }
    }
    changes
}

/// Whether a recovery is needed, given the leader's own nodemap and vnn map
/// and the reports of the active nodes (the leader's own included), in
/// Samba's order of checks. `None`: the cluster is consistent.
pub fn verdict(me: Pnn, local: &NodeMap, reports: &BTreeMap<Pnn, NodeReport>) -> Option<Reason> {
    let active = active_nodes(local);
    for p in &active {
        match reports.get(p) {
            None => return Some(Reason::Unreported(*p)),
            Some(r) if r.recmode != RECOVERY_NORMAL => return Some(Reason::NodeInRecovery(*p)),
            Some(_) => {}
        }
    }
    let ours = &reports.get(&me)?.vnnmap;
    for p in active.iter().filter(|p| **p != me) {
        let theirs = &reports[p].nodemap;
        if theirs.0.len() != local.0.len() {
            return Some(Reason::NodeCountDiffers(*p));
        }
        if theirs.0.iter().zip(&local.0).any(|(a, b)| a.pnn != b.pnn) {
            return Some(Reason::NodemapDiffers(*p));
        }
    }
    let lmasters: Vec<Pnn> = active
        .iter()
        .copied()
        .filter(|p| reports[p].caps & CAP_LMASTER != 0)
        .collect();
    if ours.map.len() != lmasters.len() {
        return Some(Reason::VnnmapSize {
            vnnmap: ours.map.len(),
            lmasters: lmasters.len(),
        });
    }
    if let Some(p) = lmasters.iter().find(|p| !ours.map.contains(p)) {
        return Some(Reason::LmasterMissing(*p));
    }
    for p in active.iter().filter(|p| **p != me) {
        let theirs = &reports[p].vnnmap;
        if theirs.generation != ours.generation {
            return Some(Reason::GenerationDiffers {
                pnn: *p,
                theirs: theirs.generation,
                ours: ours.generation,
            });
        }
        if theirs.map != ours.map {
            return Some(Reason::VnnmapDiffers(*p));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::types::{NodeAndFlags, NODE_FLAGS_PERMANENTLY_DISABLED, RECOVERY_ACTIVE};
    use ctdb_protocol::wire::SockAddr;

    fn map(flags: &[u32]) -> NodeMap {
        NodeMap(
            flags
                .iter()
                .enumerate()
                .map(|(i, f)| NodeAndFlags {
                    pnn: Pnn(i as u32),
                    flags: *f,
                    addr: SockAddr::Other([0; 28]),
                })
                .collect(),
        )
    }

    fn vnn(gen: u32, pnns: &[u32]) -> VnnMap {
        VnnMap {
            generation: Generation(gen),
            map: pnns.iter().map(|p| Pnn(*p)).collect(),
        }
    }

    fn maps(r: &BTreeMap<Pnn, NodeReport>) -> BTreeMap<Pnn, NodeMap> {
        r.iter().map(|(p, r)| (*p, r.nodemap.clone())).collect()
    }

    fn healthy(n: usize) -> BTreeMap<Pnn, NodeReport> {
        (0..n)
            .map(|i| {
                (
                    Pnn(i as u32),
                    NodeReport {
                        nodemap: map(&vec![0; n]),
                        recmode: RECOVERY_NORMAL,
                        vnnmap: vnn(7, &(0..n as u32).collect::<Vec<_>>()),
                        caps: CAP_LMASTER,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_consistent_cluster_needs_nothing() {
        let r = healthy(3);
        assert_eq!(verdict(Pnn(0), &map(&[0, 0, 0]), &r), None);
        assert!(flag_updates(Pnn(0), &map(&[0, 0, 0]), &maps(&r)).is_empty());
    }

    #[test]
    fn each_inconsistency_asks_for_a_recovery() {
        let local = map(&[0, 0, 0]);
        let mut r = healthy(3);
        r.get_mut(&Pnn(2)).unwrap().recmode = RECOVERY_ACTIVE;
        assert_eq!(
            verdict(Pnn(0), &local, &r),
            Some(Reason::NodeInRecovery(Pnn(2)))
        );

        let mut r = healthy(3);
        r.get_mut(&Pnn(1)).unwrap().vnnmap.generation = Generation(8);
        assert!(matches!(
            verdict(Pnn(0), &local, &r),
            Some(Reason::GenerationDiffers { .. })
        ));

        let mut r = healthy(3);
        r.get_mut(&Pnn(1)).unwrap().vnnmap.map.swap(0, 1);
        assert_eq!(
            verdict(Pnn(0), &local, &r),
            Some(Reason::VnnmapDiffers(Pnn(1)))
        );

        // Node 2 died: the leader's nodemap says so, the vnnmap still has it.
        let mut r = healthy(3);
        r.remove(&Pnn(2));
        let died = map(&[0, 0, NODE_FLAGS_DISCONNECTED]);
        assert_eq!(
            verdict(Pnn(0), &died, &r),
            Some(Reason::VnnmapSize {
                vnnmap: 3,
                lmasters: 2
            })
        );

        let mut r = healthy(3);
        r.get_mut(&Pnn(1)).unwrap().nodemap.0.pop();
        assert_eq!(
            verdict(Pnn(0), &local, &r),
            Some(Reason::NodeCountDiffers(Pnn(1)))
        );

        let mut r = healthy(3);
        r.remove(&Pnn(1));
        assert_eq!(
            verdict(Pnn(0), &local, &r),
            Some(Reason::Unreported(Pnn(1)))
        );
    }

    #[test]
    fn flags_a_node_reports_for_itself_are_pushed() {
        let local = map(&[0, 0, 0]);
        let mut r = healthy(3);
        r.get_mut(&Pnn(1)).unwrap().nodemap.0[1].flags = NODE_FLAGS_PERMANENTLY_DISABLED;
        let c = flag_updates(Pnn(0), &local, &maps(&r));
        assert_eq!(
            c,
            vec![NodeFlagChange {
                pnn: Pnn(1),
                new_flags: NODE_FLAGS_PERMANENTLY_DISABLED,
                old_flags: 0
            }]
        );
        // Node 2 sees node 1 disconnected: not a flag change.
        let mut r = healthy(3);
        r.get_mut(&Pnn(2)).unwrap().nodemap.0[1].flags = NODE_FLAGS_DISCONNECTED;
        assert!(flag_updates(Pnn(0), &local, &maps(&r)).is_empty());
    }
}
