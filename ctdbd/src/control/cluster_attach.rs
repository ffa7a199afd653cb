//! DB_ATTACH* in a cluster.  A database newly attached here is announced
//! to every other connected node (DB_ATTACH* with NOREPLY), as Samba's
//! daemon does after any new attach, so that it exists everywhere; a node
//! that has it already just answers (nobody listens).  Local clients' attaches while the
//! node recovers are ruled as Samba rules them: refused when the node is inactive; an attach marked as the
//! recovery's (CONTROL_FLAG_ATTACH_RECOVERY) only while recovery is active;
//! any other waits until recovery mode is NORMAL (and the node has passed
//! its first recovery), or fails after DeferredAttachTO seconds.  Attaches
//! from other nodes are always served (they come from a recovery).
//!
//! Samba's daemon opens a database inside its event loop, so whatever a
//! node sends after its DB_ATTACH finds the database open.  Ours opens on a
//! worker thread; the `AttachGate` gives the same order: while a database
//! a node attached is still opening, that and every later packet from the
//! nodes waits, and is handled in arrival order once the open has ended.

use super::{Outcome, Request};
use crate::daemon::Daemon;
use crate::db::Reply;
use crate::log_err;
use crate::ltdb::Kind;
use crate::requests::{Completion, Tag};
use crate::transport::Origin;
use ctdb_protocol::packet::{ReqControl, CONTROL_FLAG_ATTACH_RECOVERY, CONTROL_FLAG_NOREPLY};
use ctdb_protocol::types::{
    RunState, DB_FLAGS_PERSISTENT, NODE_FLAGS_DELETED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_INACTIVE,
};
use ctdb_protocol::{ControlOpcode, Header, Operation, Packet, Pnn, Srvid};

/// Nodes with these flags cannot be told about a database.
const UNREACHABLE: u32 = NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// Node packets held until the databases nodes attached have opened.
#[derive(Debug, Default)]
pub struct AttachGate {
    /// Databases attached by a node and still opening.
    opening: HashSet<u32>,
    /// Packets from nodes, in arrival order, waiting for those opens.
    held: VecDeque<(Pnn, Vec<u8>)>,
}

impl AttachGate {
    /// Holds a node's packet when an open is pending or earlier packets
    /// still wait (so order is kept); true when it was held.
    pub fn holds(&mut self, from: Pnn, bytes: &[u8]) -> bool {
        if self.opening.is_empty() && self.held.is_empty() {
            return false;
        }
        self.held.push_back((from, bytes.to_vec()));
        true
    }

    /// How many node packets wait.
    #[cfg(test)]
    pub fn held_packets(&self) -> usize {
        self.held.len()
    }

    /// Later node packets wait until database `id` has opened.
    pub fn wait_for(&mut self, id: u32) {
        self.opening.insert(id);
    }
}

impl Daemon {
    /// Decides a DB_ATTACH* before it is served: None lets it go ahead;
    /// Some is the outcome (a refusal, or `Later` for an attach held back
    /// until recovery ends).
    pub(crate) fn attach_in_recovery(&mut self, req: &Request, name: &str) -> Option<Outcome> {
        let client = req.client()?;
        let own = self.state.own_flags();
        if own & NODE_FLAGS_INACTIVE != 0 {
            log_err!(
                "DB Attach to database {} refused since node is inactive (flags=0x{:x})",
                name,
                own
            );
            return Some(Outcome::status(-1));
        }
        let for_recovery = req.control.flags & CONTROL_FLAG_ATTACH_RECOVERY != 0;
        if for_recovery {
            if !self.in_recovery() {
                log_err!("Attach from recovery refused because recovery is not active");
                return Some(Outcome::status(-1));
            }
            return None;
        }
        if !self.in_recovery() && self.state.runstate >= RunState::Startup {
            return None;
        }
        let pid = self.transport.pid(client);
        log_err!(
            "DB Attach to database {} deferred for client with pid:{} since node is in recovery mode.",
            name,
            pid
        );
        let pkt = Packet::ReqControl(req.control.clone()).encode(req.header);
        let origin = req.origin;
        let reply_to = req.reply_to();
        let noreply = req.noreply();
        let timeout = Duration::from_secs(self.state.tunables.deferred_attach_to as u64);
        let tag = self.track_with(
            |tag| {
                Box::new(move |d: &mut Daemon, done| {
                    d.deferred_attaches.retain(|t| *t != tag);
                    match done {
                        // Served again from the start, as if just received.
                        Completion::Answered(_) => {
                            if d.transport_origin_live(origin) {
                                let _ = d.packet(origin, &pkt);
                            }
                        }
                        Completion::TimedOut => {
                            if !noreply {
                                d.answer_request(reply_to, -1, &[], None);
                            }
                        }
                    }
                })
            },
            Some(timeout),
        );
        self.deferred_attaches.push(tag);
        Some(Outcome::Later)
    }

    /// Tells every other connected node about database `id`, newly
    /// attached: the same DB_ATTACH* control, without a reply.
    pub(crate) fn announce_attach(&mut self, id: u32) {
        let Some(db) = self.find_db(id) else {
            return;
        };
        let opcode = match db.kind() {
            Kind::Persistent => ControlOpcode::DbAttachPersistent,
            Kind::Replicated => ControlOpcode::DbAttachReplicated,
            Kind::Volatile => ControlOpcode::DbAttach,
        };
        let mut name = db.name.as_bytes().to_vec();
        name.push(0);
        self.tell_connected_nodes(opcode, name);
    }

    /// Sends a control without a reply (NOREPLY) to every other node that
    /// is not disconnected or deleted, as Samba's daemon broadcasts to
    /// CTDB_BROADCAST_CONNECTED (each packet addressed to its node).
    pub(crate) fn tell_connected_nodes(&mut self, opcode: ControlOpcode, data: Vec<u8>) {
        let me = self.state.pnn;
        let peers: Vec<Pnn> = (0..self.state.node_flags.len() as u32)
            .map(Pnn)
            .filter(|p| {
                p.0 != me
                    && self
                        .state
                        .flags_of(*p)
                        .is_some_and(|f| f & UNREACHABLE == 0)
            })
            .collect();
        for pnn in peers {
            let body = ReqControl {
                opcode,
                srvid: Srvid(0),
                client_id: 0,
                flags: CONTROL_FLAG_NOREPLY,
                data: data.clone(),
            };
            let h = Header {
                generation: self.state.generation,
                ..Header::new(Operation::ReqControl, pnn, Pnn(me), 0)
            };
            self.send(Origin::Node(pnn), Packet::ReqControl(body).encode(h));
        }
    }

    /// At start-up, as Samba's daemon: every `<name>.tdb.<this pnn>` file in
    /// the persistent database directory is attached as a persistent
    /// database, in directory order (so the recovery finds them all).
    /// Other `.tdb.` files are ignored and logged.
    pub(crate) fn attach_persistent_at_start(&mut self) {
        let dir = self.state.config.persistent_dir.clone();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = persistent_db_name(&file, self.state.pnn) else {
                if file.len() >= 7 && file.contains(".tdb.") {
                    log_err!("Ignoring persistent database '{}'", file);
                }
                continue;
            };
            let id = crate::db::db_id(&name);
            if self.dbs.iter().any(|d| d.id == id) {
                continue;
            }
            crate::log_info!("Attached to persistent database {}", name);
            self.open_new(id, name, DB_FLAGS_PERSISTENT, None);
        }
    }

    /// Database `id` has opened (or failed to): node packets held for the
    /// opens are handled in order until another open closes the gate.
    pub(crate) fn release_attach_gate(&mut self, id: u32) {
        self.attach_gate.opening.remove(&id);
        while self.attach_gate.opening.is_empty() {
            let Some((from, bytes)) = self.attach_gate.held.pop_front() else {
                break;
            };
            self.node_packet_now(from, &bytes);
        }
    }

    /// Serves every attach held back by recovery, oldest first.
    pub(crate) fn release_deferred_attaches(&mut self) {
        let tags: Vec<Tag> = std::mem::take(&mut self.deferred_attaches);
        for tag in tags {
            self.answer(tag, Reply::Ok);
        }
    }

    /// True when a reply can still reach `origin` (a node always; a client
    /// while connected).
    fn transport_origin_live(&self, origin: Origin) -> bool {
        origin.client().is_none_or(|c| self.client_is_live(c))
    }
}

/// The database name of a persistent database file of node `pnn`
/// (`<name>.tdb.<pnn>`, digits only after the last dot), if it is one.
fn persistent_db_name(file: &str, pnn: u32) -> Option<String> {
    let at = file.find(".tdb.")?;
    let digits = &file[at + 5..];
    if file.len() < 7 || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (digits.parse::<u32>().ok()? == pnn).then(|| file[..at + 4].to_string())
}

#[cfg(test)]
mod tests {
    use super::persistent_db_name;

    #[test]
    fn persistent_file_names_as_samba_reads_them() {
        assert_eq!(persistent_db_name("a.tdb.0", 0).as_deref(), Some("a.tdb"));
        assert_eq!(
            persistent_db_name("x.y.tdb.12", 12).as_deref(),
            Some("x.y.tdb")
        );
        assert_eq!(persistent_db_name("a.tdb.1", 0), None);
        assert_eq!(persistent_db_name("a.tdb.0x", 0), None);
        assert_eq!(persistent_db_name("a.tdb.", 0), None);
        assert_eq!(persistent_db_name("a.tdb", 0), None);
        assert_eq!(persistent_db_name("notes.txt", 0), None);
    }
}
