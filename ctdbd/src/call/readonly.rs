//! Read-only delegations between nodes (Samba's ctdb_call.c and
//! ctdb/doc/readonlyrecords.txt), the daemon side: the dmaster answers a
//! WANT_READONLY call with a copy (the worker marks the record
//! HAVE_DELEGATIONS and tracks the node); a call that wants to write a
//! record with delegations revokes them first: the dmaster sends
//! UPDATE_RECORD with the record (read-only flags cleared) to every
//! delegated node, marks the record REVOKE_COMPLETE, and then runs the
//! calls that waited: writers at once, readers a second later (Samba's
//! grace for the writer).  Samba runs the revoke in a child process; here
//! it is a set of node controls and one worker step.

use super::PendingCall;
use crate::daemon::{Daemon, DbContinuation};
use crate::db::{Op, RecordStep, Reply, Revoke, CALL_FLAG_WANT_READONLY};
use crate::requests::{Completion, Tag};
use crate::{log_err, log_notice};
use ctdb_protocol::ltdb::{LtdbHeader, RecBufferWriter};
use ctdb_protocol::packet::ReqCall;
use ctdb_protocol::{ControlOpcode, DbId, Header, Pnn};
use std::time::Duration;

/// How long readers wait after a revoke so that the writer gets the record
/// first (Samba's one second).
const READER_GRACE: Duration = Duration::from_secs(1);

/// How long a call waits before it looks again at a record marked
/// REVOKING_READONLY that no revoke of this daemon is running for.
const ORPHAN_RETRY: Duration = Duration::from_secs(1);

/// A call that waits for a revoke.
#[derive(Debug)]
pub(super) enum Waiting {
    /// A local client's call.
    Client(PendingCall),
    /// A REQ_CALL from a node (or this node).
    Node(Header, ReqCall),
}

impl Waiting {
    /// True when the call asked for a read-only copy.
    fn wants_readonly(&self) -> bool {
        let flags = match self {
            Waiting::Client(p) => p.call.flags,
            Waiting::Node(_, c) => c.flags,
        };
        flags & CALL_FLAG_WANT_READONLY != 0
    }
}

/// One record's revoke in flight.
#[derive(Debug)]
pub(super) struct Revoking {
    /// Tells this revoke's answers from those of an earlier, dropped one.
    id: u64,
    /// UPDATE_RECORD answers still to come.
    outstanding: usize,
    /// A node refused or did not answer.
    failed: bool,
    /// The rsn the UPDATE_RECORDs carried.
    sent_rsn: u64,
    /// The calls waiting for the revoke, oldest first.
    waiting: Vec<Waiting>,
}

impl Daemon {
    /// True when database `db_id` has read-only records enabled.
    pub(super) fn db_readonly(&self, db_id: u32) -> bool {
        self.find_db(db_id)
            .is_some_and(|d| d.flags & ctdb_protocol::types::DB_FLAGS_READONLY != 0)
    }

    /// A call met a record being revoked, or started its revoke: it waits
    /// for the revoke's end.  A record marked REVOKING_READONLY with no
    /// revoke running here (left by a revoke that failed to finish) is
    /// looked at again later.
    pub(super) fn wait_for_revoke(
        &mut self,
        db_id: u32,
        key: &[u8],
        w: Waiting,
        start: Option<Revoke>,
    ) {
        let record = (db_id, key.to_vec());
        if let Some(r) = start {
            self.start_revoke(record.clone(), r);
        }
        match self.calls.revokes.get_mut(&record) {
            Some(rev) => rev.waiting.push(w),
            None => {
                log_err!(
                    "Record in db 0x{:08x} is being revoked but no revoke runs here: retrying",
                    db_id
                );
                let then: DbContinuation = Box::new(move |d: &mut Daemon, _| d.rerun(w));
                self.track(then, Some(ORPHAN_RETRY));
            }
        }
    }

    /// Sends UPDATE_RECORD with the revoked record to every delegated node.
    fn start_revoke(&mut self, record: (u32, Vec<u8>), r: Revoke) {
        let mut buf = RecBufferWriter::new(DbId(record.0));
        let h = LtdbHeader {
            rsn: r.header.rsn,
            dmaster: Pnn(r.header.dmaster),
            reserved1: r.header.reserved1,
            flags: r.header.flags,
        };
        buf.push(0, &record.1, &[&h.to_array(), &r.data]);
        let data = buf.finish();
        log_notice!(
            "Revoking read-only delegations of a record in db 0x{:08x} on nodes {:?}",
            record.0,
            r.nodes
        );
        self.calls.revoke_ids += 1;
        let id = self.calls.revoke_ids;
        self.calls.revokes.insert(
            record.clone(),
            Revoking {
                id,
                outstanding: r.nodes.len(),
                failed: false,
                sent_rsn: r.header.rsn,
                waiting: Vec::new(),
            },
        );
        if r.nodes.is_empty() {
            return self.finish_revoke(record);
        }
        for pnn in r.nodes {
            let rec = record.clone();
            let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
                let ok = matches!(done, Completion::Answered(Reply::Control { status: 0, .. }));
                d.revoke_answered(rec, id, pnn, ok);
            });
            self.send_node_control(
                Pnn(pnn),
                ControlOpcode::UpdateRecord,
                data.clone(),
                Some(then),
            );
        }
    }

    /// One delegated node answered the revoke's UPDATE_RECORD.
    fn revoke_answered(&mut self, record: (u32, Vec<u8>), id: u64, pnn: u32, ok: bool) {
        let Some(rev) = self.calls.revokes.get_mut(&record).filter(|r| r.id == id) else {
            return;
        };
        if !ok {
            log_err!("Recv for revoke update record failed on node {}", pnn);
            rev.failed = true;
        }
        rev.outstanding = rev.outstanding.saturating_sub(1);
        if rev.outstanding == 0 {
            self.finish_revoke(record);
        }
    }

    /// Every node answered: the record is marked REVOKE_COMPLETE (or the
    /// revoke undone), then the waiting calls run again.
    fn finish_revoke(&mut self, record: (u32, Vec<u8>)) {
        let Some(rev) = self.calls.revokes.get(&record) else {
            return;
        };
        let step = RecordStep::FinishRevoke {
            sent_rsn: rev.sent_rsn,
            ok: !rev.failed,
            lmaster: self.lmaster_of(&record.1).0,
        };
        let op = Op::Record {
            key: record.1.clone(),
            step,
        };
        let db_id = record.0;
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            let ok = matches!(done, Completion::Answered(Reply::Ok));
            if !ok {
                log_err!(
                    "Revoke of a record in db 0x{:08x} failed: {:?}",
                    db_id,
                    done
                );
            }
            d.end_revoke(&record, ok);
        });
        self.submit(db_id, op, then, None);
    }

    /// The revoke of `record` ended: counted when it succeeded; the calls
    /// that waited run again.
    fn end_revoke(&mut self, record: &(u32, Vec<u8>), ok: bool) {
        let Some(rev) = self.calls.revokes.remove(record) else {
            return;
        };
        if ok {
            self.stats.total_ro_revokes += 1;
            if let Some(db) = self.db_mut(record.0) {
                db.stats.ro_revokes += 1;
            }
        }
        self.release_waiting(rev.waiting, ok);
    }

    /// A recovery pushed database `db_id` (DB_PUSH_CONFIRM): its revokes
    /// are dropped, as Samba kills its revoke children then (the records
    /// came back without read-only flags); their calls run again as after
    /// a revoke.
    pub(crate) fn drop_revokes(&mut self, db_id: u32) {
        let records: Vec<(u32, Vec<u8>)> = self
            .calls
            .revokes
            .keys()
            .filter(|(db, _)| *db == db_id)
            .cloned()
            .collect();
        for record in records {
            if let Some(rev) = self.calls.revokes.remove(&record) {
                self.release_waiting(rev.waiting, true);
            }
        }
    }

    /// Calls that waited for a revoke run again: those that want to write
    /// now, the readers (and everyone after a failure) after READER_GRACE.
    fn release_waiting(&mut self, waiting: Vec<Waiting>, ok: bool) {
        let (later, now): (Vec<Waiting>, Vec<Waiting>) =
            waiting.into_iter().partition(|w| !ok || w.wants_readonly());
        for w in now {
            self.rerun(w);
        }
        if !later.is_empty() {
            let then: DbContinuation = Box::new(move |d: &mut Daemon, _| {
                for w in later {
                    d.rerun(w);
                }
            });
            let _: Tag = self.track(then, Some(READER_GRACE));
        }
    }

    /// Runs a call that waited again from its start; a local client's
    /// call looks again a second later while its database is frozen or
    /// recovery is active (a node's call is held for the thaw by
    /// `node_call`).
    pub(super) fn rerun(&mut self, w: Waiting) {
        match w {
            Waiting::Client(p) => {
                if let crate::transport::Origin::Client(c) = p.client.origin {
                    if !self.client_is_live(c) {
                        self.stats.pending_calls = self.stats.pending_calls.saturating_sub(1);
                        return;
                    }
                }
                let frozen = self.find_db(p.call.db_id.0).is_some_and(|d| d.frozen);
                if frozen || self.state.recmode != ctdb_protocol::types::RECOVERY_NORMAL {
                    let w = Waiting::Client(p);
                    let then: DbContinuation = Box::new(move |d: &mut Daemon, _| d.rerun(w));
                    self.track(then, Some(ORPHAN_RETRY));
                    return;
                }
                // Counted again, as Samba's requeued client packet is.
                self.stats.total_calls += 1;
                if self.calls_routed() {
                    self.issue_call(p);
                } else {
                    self.local_call(p);
                }
            }
            Waiting::Node(hdr, c) => self.node_call(hdr, c),
        }
    }

    /// A delegation was granted: counted, and the copy goes to the
    /// requester in a REPLY_CALL.
    pub(super) fn count_delegation(&mut self, db_id: u32) {
        self.stats.total_ro_delegations += 1;
        if let Some(db) = self.db_mut(db_id) {
            db.stats.ro_delegations += 1;
        }
    }
}
