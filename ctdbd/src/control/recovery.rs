//! Recovery controls on single databases: freeze and thaw, the recovery
//! transaction (start, wipe, commit, cancel), the health flag, and restore
//! by DB_PUSH (start, record buffers as messages, confirm).

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, DbContinuation};
use crate::db::{Op, PushState, Reply};
use crate::requests::Completion;
use crate::stats::LockRecord;
use crate::{log_err, log_info, log_notice, log_warn};
use ctdb_protocol::ltdb::RecBufferRef;
use ctdb_protocol::types::{PullDbExt, TransDb};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, Generation};
use std::sync::atomic::Ordering;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::DbFreeze, freeze);
    r.add(ControlOpcode::DbThaw, |d, req| match one_db(d, req) {
        Ok(id) => {
            d.thaw(id);
            Outcome::status(0)
        }
        Err(o) => o,
    });
    r.add(ControlOpcode::DbSetHealthy, |d, req| match one_db(d, req) {
        Ok(id) => {
            if let Some(db) = d.db_mut(id) {
                db.unhealthy = None;
            }
            Outcome::status(0)
        }
        Err(o) => o,
    });
    r.add(ControlOpcode::DbTransactionStart, transaction);
    r.add(ControlOpcode::WipeDatabase, transaction);
    r.add(ControlOpcode::DbTransactionCommit, transaction);
    r.add(ControlOpcode::DbTransactionCancel, cancel);
    r.add(ControlOpcode::DbPushStart, push_start);
    r.add(ControlOpcode::DbPushConfirm, push_confirm);
}

/// The attached database a control names by exactly one u32 db_id (the
/// size Samba checks); otherwise the refusal.
fn one_db(d: &Daemon, req: &Request) -> Result<u32, Outcome> {
    if req.data().len() != 4 {
        return Err(Outcome::bad_size(req.opcode().name(), req.data().len()));
    }
    d.db_id_arg(req.data()).ok_or(Outcome::status(-1))
}

fn freeze(d: &mut Daemon, req: &Request) -> Outcome {
    let id = match one_db(d, req) {
        Ok(id) => id,
        Err(o) => return o,
    };
    let Some(db) = d.dbs.iter_mut().find(|db| db.id == id) else {
        return Outcome::status(-1);
    };
    if !db.frozen {
        // Samba takes the whole-db lock in a helper process here and counts
        // it; our freeze holds back calls in the loop and takes no lock, so
        // the wait is zero.
        db.stats.locks.record(std::time::Duration::ZERO, true);
        d.stats.locks.record(std::time::Duration::ZERO, true);
    }
    db.frozen = true;
    log_notice!("Freeze db: {}", db.name);
    Outcome::status(0)
}

/// DB_TRANSACTION_START, WIPE_DATABASE, DB_TRANSACTION_COMMIT on a frozen
/// database; ctdb_transdb is db_id u32, tid u32.  The tid is the recovery's
/// generation: wipe and commit must name the started one, and a commit
/// stamps the database with it (SET_RECMODE NORMAL checks the stamp).
fn transaction(d: &mut Daemon, req: &Request) -> Outcome {
    let opcode = req.control.opcode;
    let Ok(TransDb { db_id, tid }) = req.decode::<TransDb>() else {
        return Outcome::bad_size(opcode.name(), req.data().len());
    };
    let id = db_id.0;
    let Some(db) = d.find_db(id) else {
        log_err!("Transaction control for unknown dbid 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if !db.frozen {
        log_err!(
            "Database {} not frozen, cannot run transaction control {}",
            db.name,
            opcode.to_u32()
        );
        return Outcome::status(-1);
    }
    if opcode == ControlOpcode::DbTransactionStart {
        return d.db_op(
            req,
            id,
            Op::TransactionStart,
            set_transaction(id, Some(tid)),
        );
    }
    match db.transaction {
        None => {
            log_err!("Transaction not started on {}", db.name);
            return Outcome::status(-1);
        }
        Some(started) if started != tid => {
            log_err!(
                "Incorrect transaction commit id 0x{:08x} for {}",
                tid,
                db.name
            );
            return Outcome::status(-1);
        }
        Some(_) => {}
    }
    if opcode == ControlOpcode::WipeDatabase {
        d.db_op_plain(req, id, Op::Wipe)
    } else {
        d.db_op(req, id, Op::TransactionCommit, committed(id, tid))
    }
}

/// On success, records the database's recovery transaction id.
fn set_transaction(id: u32, tid: Option<u32>) -> crate::databases::AfterWork {
    Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if st == 0 {
            if let Some(db) = d.db_mut(id) {
                db.transaction = tid;
            }
        }
        (st, data)
    })
}

/// After a recovery commit: no transaction, and on success the database
/// carries the recovery's generation.
fn committed(id: u32, tid: u32) -> crate::databases::AfterWork {
    Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if let Some(db) = d.db_mut(id) {
            db.transaction = None;
            if st == 0 {
                db.generation = Generation(tid);
            }
        }
        (st, data)
    })
}

fn cancel(d: &mut Daemon, req: &Request) -> Outcome {
    match one_db(d, req) {
        Ok(id) => {
            if let Some(db) = d.find_db(id) {
                log_err!("Recovery db transaction cancelled for {}", db.name);
            }
            d.db_op(req, id, Op::TransactionCancel, set_transaction(id, None))
        }
        Err(o) => o,
    }
}

/// ctdb_pulldb_ext: db_id u32, lmaster u32, srvid u64.  Record buffers sent
/// to srvid are then stored in the database.
fn push_start(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(pull) = req.decode::<PullDbExt>() else {
        return Outcome::bad_size("DB_PUSH_START", req.data().len());
    };
    let (id, srvid) = (pull.db_id.0, pull.srvid.0);
    let Some(db) = d.dbs.iter_mut().find(|db| db.id == id && db.ready) else {
        log_err!("Unknown db 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if !db.frozen {
        log_err!("rejecting ctdb_control_db_push_start when not frozen");
        return Outcome::status(-1);
    }
    if db.push.is_some() {
        log_warn!("DB push already started for {}", db.name);
    }
    db.push = Some(PushState {
        srvid,
        ..Default::default()
    });
    Outcome::status(0)
}

/// The reply waits for the stores queued before it and carries the number
/// of records pushed.
fn push_confirm(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 4 {
        return Outcome::bad_size("DB_PUSH_CONFIRM", req.data().len());
    }
    let Ok(id) = Reader::new(req.data()).u32("db_id") else {
        return Outcome::status(-1);
    };
    let Some(db) = d.find_db(id) else {
        log_err!("Unknown db 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if !db.frozen {
        log_err!("rejecting ctdb_control_db_push_confirm when not frozen");
        return Outcome::status(-1);
    }
    if db.push.is_none() {
        log_err!("DB push not started");
        return Outcome::status(-1);
    }
    // As Samba's: the read-only tracking database is wiped and revokes in
    // flight are dropped (the pushed records have no read-only flags).
    let op = if db.flags & ctdb_protocol::types::DB_FLAGS_READONLY != 0 {
        log_err!("Clearing the tracking database for dbid 0x{:x}", id);
        d.drop_revokes(id);
        Op::WipeTracking
    } else {
        Op::Barrier
    };
    let after = Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if st != 0 {
            return (st, data);
        }
        // As Samba's: the records of the buffers stored, status 0 even when
        // a buffer failed (the recovery compares the count).
        match d.db_mut(id).and_then(|db| db.push.take()) {
            Some(ps) => (0, ps.num_records.to_le_bytes().to_vec()),
            None => (-1, data),
        }
    });
    d.db_op(req, id, op, after)
}

impl Daemon {
    /// A message to the srvid of a DB_PUSH_START: its record buffer goes to
    /// the database side to be stored. The data comes back when no push
    /// waits for this srvid (the message is for clients, if any).
    pub(crate) fn push_message(&mut self, srvid: u64, data: Vec<u8>) -> Option<Vec<u8>> {
        let Some(db) = self
            .dbs
            .iter_mut()
            .find(|d| d.push.as_ref().is_some_and(|ps| ps.srvid == srvid))
        else {
            return Some(data);
        };
        let db_id = db.id;
        let ps = db.push.as_mut()?;
        if ps.failed.load(Ordering::SeqCst) {
            return None;
        }
        let failed = ps.failed.clone();
        // The records are checked and stored on the database's worker; the
        // count is the buffer's own.
        let n = match RecBufferRef::new(&data) {
            Ok(b) => b.count,
            Err(_) => {
                log_err!("bad record buffer in push for db 0x{:08x}", db_id);
                failed.store(true, Ordering::SeqCst);
                return None;
            }
        };
        log_info!("starting push of {} records for dbid 0x{:08x}", n, db_id);
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| match done {
            Completion::Answered(Reply::Ok) => {
                if let Some(ps) = d.db_mut(db_id).and_then(|db| db.push.as_mut()) {
                    ps.num_records += n;
                }
            }
            Completion::Answered(Reply::Failed(why)) => log_err!("{}", why),
            _ => {}
        });
        let vnn_map = self.state.vnn_map.clone();
        let op = Op::PushBuffer {
            buffer: data,
            vnn_map,
            failed,
        };
        self.submit(db_id, op, then, None);
        None
    }
}
