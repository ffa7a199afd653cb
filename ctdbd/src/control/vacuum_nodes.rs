//! Vacuuming between nodes, as Samba's vacuumer does it.  A run on a node
//! that is not alone leaves two lists (`vacuum::ForNodes`):
//!
//! * empty records whose lmaster is another node go to that lmaster in one
//!   VACUUM_FETCH per node; the lmaster migrates each to itself (a call
//!   with immediate and vacuum migration), where it lands on its delete
//!   queue;
//! * empty records this node is lmaster and dmaster of that other nodes
//!   may hold copies of (migrated with data) go to every other active node
//!   in TRY_DELETE_RECORDS; each drops its copy where it may and answers
//!   with the records it kept; what no node kept is then deleted here,
//!   after one more check under the chain lock.
//!
//! A record deleted this way cannot come back from another node's stale
//! copy in a recovery: every copy was dropped first.

use super::{Outcome, Registry, Request};
use crate::daemon::{reply_of, Daemon, DbContinuation};
use crate::db::{Op, Reply};
use crate::log_err;
use crate::ltdb::{Header, Kind};
use crate::vacuum::ForNodes;
use ctdb_protocol::ltdb::{RecBuffer, RecData};
use ctdb_protocol::{ControlOpcode, DbId, Layout, Pnn};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::VacuumFetch, vacuum_fetch);
    r.add(ControlOpcode::TryDeleteRecords, try_delete_records);
}

/// The records of a buffer for a volatile database this node has.
fn volatile_records(d: &Daemon, data: &[u8]) -> Result<(u32, Vec<RecData>), Outcome> {
    let buf = RecBuffer::decode(data).map_err(|_| Outcome::fail("bad record buffer"))?;
    let id = buf.db_id.0;
    match d.find_db(id) {
        Some(db) if db.kind() == Kind::Volatile => Ok((id, buf.records)),
        _ => {
            log_err!("Unknown db 0x{:08x}", id);
            Err(Outcome::status(-1))
        }
    }
}

/// VACUUM_FETCH: this node is the lmaster of the records; their keys wait
/// in the database's fetch queue for the next vacuum run, which migrates
/// them here (see `start_fetches`).
fn vacuum_fetch(d: &mut Daemon, req: &Request) -> Outcome {
    let (id, records) = match volatile_records(d, req.data()) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Some(db) = d.db_mut(id) {
        let q = &mut db.vacuum.fetch_queue;
        for r in records {
            if !q.contains(&r.key) {
                q.push(r.key);
            }
        }
    }
    Outcome::status(0)
}

/// TRY_DELETE_RECORDS: drops this node's copies where allowed and answers
/// with a buffer of the records it kept.
fn try_delete_records(d: &mut Daemon, req: &Request) -> Outcome {
    let (id, records) = match volatile_records(d, req.data()) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut recs = Vec::with_capacity(records.len());
    for r in records {
        match Header::decode(&r.data).filter(|_| r.data.len() == crate::ltdb::HEADER_LEN) {
            Some(h) => recs.push((r.key, h)),
            None => return Outcome::fail("bad ltdb record in TRY_DELETE_RECORDS"),
        }
    }
    let op = Op::TryDelete {
        recs,
        vnn_map: d.state.vnn_map.clone(),
    };
    let to = req.reply_to();
    let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
        let (status, data) = match reply_of(done) {
            Reply::Records(kept) => (0, buffer(id, d.state.pnn, &kept).to_bytes()),
            _ => (-1, Vec::new()),
        };
        d.answer_request(to, status, &data, None);
    });
    d.submit(id, op, then, None);
    Outcome::Later
}

/// A record buffer of (key, header) records with no value, as both
/// controls carry them.
fn buffer(db_id: u32, reqid: u32, recs: &[(Vec<u8>, Header)]) -> RecBuffer {
    RecBuffer {
        db_id: DbId(db_id),
        records: recs
            .iter()
            .map(|(k, h)| RecData {
                reqid,
                key: k.clone(),
                data: h.encode().to_vec(),
            })
            .collect(),
    }
}

/// The delete list while the other nodes answer TRY_DELETE_RECORDS.
struct PendingDeletes {
    recs: Vec<(Vec<u8>, Header)>,
    waiting: usize,
    kept: HashSet<Vec<u8>>,
    failed: bool,
}

impl Daemon {
    /// At the start of a vacuum run: the records other nodes sent with
    /// VACUUM_FETCH are migrated here; empty, they land on the delete
    /// queue for a later run.
    pub(crate) fn start_fetches(&mut self, db_id: u32) {
        let keys = match self.db_mut(db_id) {
            Some(db) => std::mem::take(&mut db.vacuum.fetch_queue),
            None => return,
        };
        for key in keys {
            self.migrate_for_vacuum(db_id, key);
        }
    }

    /// Sends what a vacuum run of `db_id` left to the other nodes.
    pub(crate) fn vacuum_for_nodes(&mut self, db_id: u32, rest: ForNodes) {
        let me = self.state.pnn;
        for (lmaster, recs) in rest.fetch {
            let data = buffer(db_id, me, &recs).to_bytes();
            let then: DbContinuation = Box::new(move |_: &mut Daemon, done| {
                if !matches!(reply_of(done), Reply::Control { status: 0, .. }) {
                    log_err!("Failed to send vacuum fetch control to node {}", lmaster);
                }
            });
            self.send_node_control(Pnn(lmaster), ControlOpcode::VacuumFetch, data, Some(then));
        }
        if !rest.delete.is_empty() {
            self.confirm_deletes(db_id, rest.delete);
        }
    }

    /// Asks every other active node to drop its copies of `recs`; those no
    /// node kept are deleted here once all have answered.
    fn confirm_deletes(&mut self, db_id: u32, recs: Vec<(Vec<u8>, Header)>) {
        let me = self.state.pnn;
        let others: Vec<Pnn> = self
            .active_nodes()
            .into_iter()
            .filter(|p| p.0 != me)
            .collect();
        if others.is_empty() {
            return self.delete_confirmed(db_id, recs);
        }
        let data = buffer(db_id, db_id, &recs).to_bytes();
        let pending = Rc::new(RefCell::new(PendingDeletes {
            recs,
            waiting: others.len(),
            kept: HashSet::new(),
            failed: false,
        }));
        for p in others {
            let pending = Rc::clone(&pending);
            let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
                d.delete_answer(db_id, p, &pending, reply_of(done));
            });
            self.send_node_control(p, ControlOpcode::TryDeleteRecords, data.clone(), Some(then));
        }
    }

    /// One node's TRY_DELETE_RECORDS answer; the last one ends the list.
    fn delete_answer(
        &mut self,
        db_id: u32,
        from: Pnn,
        pending: &Rc<RefCell<PendingDeletes>>,
        reply: Reply,
    ) {
        let mut p = pending.borrow_mut();
        p.waiting -= 1;
        match reply {
            Reply::Control {
                status: 0, data, ..
            } => match RecBuffer::decode(&data) {
                Ok(buf) => p.kept.extend(buf.records.into_iter().map(|r| r.key)),
                Err(_) => p.failed = true,
            },
            _ => {
                log_err!("Failed to delete records on node {}", from);
                p.failed = true;
            }
        }
        if p.waiting > 0 || p.failed {
            return;
        }
        let kept = std::mem::take(&mut p.kept);
        let recs: Vec<_> = std::mem::take(&mut p.recs)
            .into_iter()
            .filter(|(k, _)| !kept.contains(k))
            .collect();
        drop(p);
        self.delete_confirmed(db_id, recs);
    }

    /// Deletes here the records every other node dropped.
    fn delete_confirmed(&mut self, db_id: u32, recs: Vec<(Vec<u8>, Header)>) {
        let Some(db) = self.find_db(db_id) else {
            return;
        };
        let op = Op::DeleteConfirmed {
            name: db.name.clone(),
            recs,
            vnn_map: self.state.vnn_map.clone(),
        };
        self.submit_untracked(db_id, op);
    }
}
