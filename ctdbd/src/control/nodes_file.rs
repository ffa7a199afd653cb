//! The nodes file at run time: GET_NODES_FILE reads it as it is on disk
//! now, RELOAD_NODES_FILE makes the daemon use it (`ctdb reloadnodes`).
//! As in Samba's daemon, a node whose line is unchanged keeps its
//! connections; a new node is added and connected to, a node now deleted
//! (a `#` line) is disconnected and marked DELETED, and the recovery daemon
//! is told (RELOAD_NODES).  Which changes are allowed (no node removed or
//! re-addressed while connected) is the tool's check, as in Samba.

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, NodeState};
use crate::nodes::{self, Node};
use crate::{log_err, log_notice};
use ctdb_protocol::types::{NodeAndFlags, NodeMap, NODE_FLAGS_DELETED};
use ctdb_protocol::wire::SockAddr;
use ctdb_protocol::{ControlOpcode, Pnn, Srvid};
use std::time::Instant;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::GetNodesFile, get_nodes_file);
    r.add(ControlOpcode::ReloadNodesFile, reload_nodes_file);
}

/// The nodes file as it is on disk now, or why it cannot be used.
fn read_nodes_file(d: &Daemon) -> Result<Vec<Node>, String> {
    nodes::read(&d.state.paths.etcdir.join("nodes"))
}

fn get_nodes_file(d: &mut Daemon, _: &Request) -> Outcome {
    let nodes = match read_nodes_file(d) {
        Ok(n) => n,
        Err(e) => {
            log_err!("{}", e);
            log_err!("Failed to read nodes file");
            return Outcome::status(-1);
        }
    };
    let map = NodeMap(
        nodes
            .iter()
            .map(|n| NodeAndFlags {
                pnn: Pnn(n.pnn),
                flags: if n.deleted { NODE_FLAGS_DELETED } else { 0 },
                addr: SockAddr::from(n.addr),
            })
            .collect(),
    );
    Outcome::value(&map)
}

fn reload_nodes_file(d: &mut Daemon, _: &Request) -> Outcome {
    let nodes = match read_nodes_file(d) {
        Ok(n) => n,
        Err(e) => {
            log_err!("{}", e);
            return Outcome::status(-1);
        }
    };
    log_notice!("Reloading nodes file");
    let now = Instant::now();
    let me = d.state.pnn;
    for n in nodes.iter().filter(|n| n.pnn != me) {
        d.reload_node(n, now);
    }
    d.deliver_message(Srvid::RELOAD_NODES.0, &[]);
    Outcome::status(0)
}

impl Daemon {
    /// Slot `n.pnn` becomes node `n` of the reloaded file (nothing happens
    /// when it is unchanged).
    fn reload_node(&mut self, n: &Node, now: Instant) {
        let i = n.pnn as usize;
        if self.state.nodes.get(i) == Some(n) {
            return;
        }
        let pnn = Pnn(n.pnn);
        if self.links.is_connected(pnn) {
            self.node_dead(pnn);
        }
        let events = self.links.reload_peer(n, now);
        self.link_events(events);
        let flags = NodeState::initial_node_flags(std::slice::from_ref(n), u32::MAX, 0)[0];
        if i < self.state.nodes.len() {
            self.state.nodes[i] = n.clone();
            self.state.node_flags[i] = flags;
        } else {
            self.state.nodes.push(n.clone());
            self.state.node_flags.push(flags);
        }
        log_notice!(
            "Node {} is now {}{}",
            n.pnn,
            n.addr.ip(),
            if n.deleted { " (deleted)" } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::dispatch::tests::{control, node_daemon, replies};
    use crate::transport::Origin;
    use ctdb_protocol::types::{NodeMap, NODE_FLAGS_DELETED, NODE_FLAGS_DISCONNECTED};
    use ctdb_protocol::{ControlOpcode, Layout, Pnn};

    /// The status of one control sent by node 1.
    fn ask(d: &mut crate::daemon::Daemon, op: ControlOpcode) -> (i32, Vec<u8>) {
        d.packet(Origin::Node(Pnn(1)), &control(op, 1, 5, Vec::new()))
            .unwrap();
        let r = replies(d).pop().expect("a reply").2;
        (r.status, r.data)
    }

    #[test]
    fn a_node_added_then_deleted_in_the_nodes_file() {
        let (mut d, dir) = node_daemon("reload", 0, 2);
        let file = dir.join("nodes");
        std::fs::write(&file, "127.0.0.1\n127.0.0.2\n127.0.0.3\n").unwrap();
        // The file as it is now, before any reload.
        let (st, data) = ask(&mut d, ControlOpcode::GetNodesFile);
        assert_eq!((st, NodeMap::decode(&data).unwrap().0.len()), (0, 3));
        assert_eq!(d.state.nodes.len(), 2);
        assert_eq!(ask(&mut d, ControlOpcode::ReloadNodesFile).0, 0);
        assert_eq!(d.state.nodes.len(), 3);
        assert_ne!(d.state.node_flags[2] & NODE_FLAGS_DISCONNECTED, 0);
        assert!(d.links.peer(Pnn(2)).is_some_and(|p| !p.deleted));
        // Node 1 is untouched (still connected).
        assert!(d.links.is_connected(Pnn(1)));
        std::fs::write(&file, "127.0.0.1\n127.0.0.2\n#127.0.0.3\n").unwrap();
        assert_eq!(ask(&mut d, ControlOpcode::ReloadNodesFile).0, 0);
        assert_ne!(d.state.node_flags[2] & NODE_FLAGS_DELETED, 0);
        assert!(d.links.peer(Pnn(2)).is_some_and(|p| p.deleted));
        // A file that does not parse changes nothing.
        std::fs::write(&file, "nonsense\n").unwrap();
        assert_eq!(ask(&mut d, ControlOpcode::ReloadNodesFile).0, -1);
        assert_eq!(ask(&mut d, ControlOpcode::GetNodesFile).0, -1);
        assert_eq!(d.state.nodes.len(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
