//! The tdb side of each database operation, run on the database's worker
//! thread with the handle it owns.

use std::ffi::CString;

use super::{Op, Reply, Wake, CALL_FETCH_FUNC, CALL_FETCH_WITH_HEADER_FUNC, CALL_NULL_FUNC};
use crate::ltdb::{self, Header, Kind, NodeView};
use crate::vacuum::{self, DeleteQueue};
use tdb_engine::{Tdb, TdbError};

/// An open database as its worker holds it.
pub(super) struct OpenDb {
    /// The database's handle, used by its worker only.
    pub tdb: Box<Tdb>,
    /// Which record rules apply.
    pub kind: Kind,
    /// The read-only delegation tracking database, once SET_DB_READONLY ran.
    pub tracking: Option<Box<Tdb>>,
    /// Empty records waiting for the next vacuum run (volatile dbs).
    pub queue: DeleteQueue,
}

/// How an operation ended.
pub(super) enum Outcome {
    /// Finished: this is its reply.
    Done(Reply),
    /// A record call found its chain locked by someone else; nothing was done.
    ChainBusy,
    /// A traverse: its records and its end went to the traverse's stream.
    Streamed,
}

/// Whether a record call may wait for its chain lock on this thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ChainLock {
    /// Only try it; a busy chain gives `Outcome::ChainBusy`.
    Try,
    /// Block until it is granted (the fallback when no waiter thread can run).
    Wait,
}

impl OpenDb {
    /// Closes both handles; the reply says whether the database closed cleanly.
    pub fn close(self) -> Reply {
        if let Some(t) = self.tracking {
            let _ = t.close();
        }
        match self.tdb.close() {
            Ok(()) => Reply::Ok,
            Err(e) => terr("close", e),
        }
    }

    /// Runs one operation other than Close.
    pub fn run(
        &mut self,
        id: u32,
        node: NodeView,
        op: Op,
        lock: ChainLock,
        wake: &Wake,
    ) -> Outcome {
        let kind = self.kind;
        let t = &mut self.tdb;
        let q = &mut self.queue;
        Outcome::Done(match op {
            Op::Call { key, callid } => {
                let r = if lock == ChainLock::Try {
                    t.chainlock_nonblock(&key)
                } else {
                    t.chainlock(&key)
                };
                match r {
                    Ok(()) => {}
                    Err(TdbError::Lock) if lock == ChainLock::Try => return Outcome::ChainBusy,
                    Err(e) => return Outcome::Done(terr("chainlock", e)),
                }
                let r = call_locked(t, q, kind, node, &key, callid);
                let _ = t.chainunlock(&key);
                r
            }
            // The worker walks traverses itself (traverse::Walk).
            Op::Traverse { sink, .. } | Op::Pull { sink } => {
                sink.fail("traverse outside its walk".into(), wake);
                return Outcome::Streamed;
            }
            Op::GetSeqnum => match ltdb::fetch(t, kind, node, ltdb::DB_SEQNUM_KEY, q) {
                Ok((_, data)) if data.len() == 8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&data);
                    Reply::Seqnum(u64::from_le_bytes(b))
                }
                Ok(_) => Reply::Seqnum(0),
                Err(e) => terr("fetch seqnum", e),
            },
            Op::PersistentStore { recs } => persistent_store(t, q, kind, node, id, &recs),
            Op::TransactionStart => {
                if t.transaction_active() {
                    let _ = t.transaction_cancel();
                }
                match t.transaction_start() {
                    Ok(()) => Reply::Ok,
                    Err(e) => terr("transaction start", e),
                }
            }
            Op::PushStore {
                recs,
                vnn_map,
                failed,
            } => {
                use std::sync::atomic::Ordering;
                if failed.load(Ordering::SeqCst) {
                    return Outcome::Done(Reply::Failed("push failed earlier".into()));
                }
                let r = push_store(t, q, kind, node, &recs, &vnn_map);
                if r != Reply::Ok {
                    failed.store(true, Ordering::SeqCst);
                }
                r
            }
            Op::Barrier => Reply::Ok,
            Op::ScheduleForDeletion { key, header } => {
                if kind == Kind::Volatile {
                    q.insert(&key, &header);
                }
                Reply::Ok
            }
            Op::Vacuum {
                name,
                full,
                repack_limit,
                max_run,
            } => {
                if kind != Kind::Volatile {
                    return Outcome::Done(Reply::Failed(format!(
                        "not vacuuming non-volatile database {name}"
                    )));
                }
                let params = vacuum::RunParams {
                    full,
                    repack_limit,
                    deadline: std::time::Instant::now() + max_run,
                };
                match vacuum::run(t, q, node, &name, params) {
                    Ok(_) => Reply::Ok,
                    Err(vacuum::RunError::TimedOut) => Reply::TimedOut,
                    Err(vacuum::RunError::Tdb(why)) => Reply::Failed(why),
                }
            }
            Op::EnableSeqnum => {
                t.enable_seqnum();
                Reply::Ok
            }
            Op::IncrementSeqnum => {
                t.increment_seqnum_nonblock();
                Reply::Ok
            }
            Op::Wipe => match t.wipe_all() {
                Ok(()) => Reply::Ok,
                Err(e) => terr("wipe", e),
            },
            Op::TransactionCommit => match t.transaction_commit() {
                Ok(()) => Reply::Ok,
                Err(e) => terr("transaction commit", e),
            },
            Op::TransactionCancel => {
                if t.transaction_active() {
                    let _ = t.transaction_cancel();
                }
                Reply::Ok
            }
            Op::OpenTracking { path, hash_size } => self.open_tracking(&path, hash_size),
            Op::Close => Reply::Failed("close handled by the worker".into()),
            #[cfg(test)]
            Op::Panic => panic!("test-only panic in database work"),
        })
    }

    /// SET_DB_READONLY: opens (creating) the tracking database once.
    fn open_tracking(&mut self, path: &std::path::Path, hash_size: u32) -> Reply {
        if self.tracking.is_some() {
            return Reply::Ok;
        }
        use tdb_engine::flags::*;
        match open_tdb(path, hash_size, NOLOCK | CLEAR_IF_FIRST | NOSYNC) {
            Ok(t) => {
                self.tracking = Some(t);
                Reply::Ok
            }
            Err(e) => Reply::Failed(e),
        }
    }
}

/// A tdb error as a failed reply.
pub(super) fn terr(what: &str, e: TdbError) -> Reply {
    Reply::Failed(format!("{what}: {}", e.message()))
}

/// TRANS3_COMMIT / UPDATE_RECORD: the records in one transaction, refusing
/// an older rsn for changed data.
fn persistent_store(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    id: u32,
    recs: &[(Vec<u8>, Header, Vec<u8>)],
) -> Reply {
    if let Err(e) = t.transaction_start() {
        return terr("transaction start", e);
    }
    for (key, header, data) in recs {
        let (old, olddata) = match ltdb::fetch(t, kind, node, key, q) {
            Ok(x) => x,
            Err(e) => {
                let _ = t.transaction_cancel();
                return terr("fetch old record", e);
            }
        };
        if old.rsn >= header.rsn && olddata != *data {
            let _ = t.transaction_cancel();
            return Reply::Failed(format!(
                "existing header for db_id 0x{id:08x} has larger RSN {} than new RSN {} in persistent store",
                old.rsn, header.rsn
            ));
        }
        let mut h = *header;
        match ltdb::store(t, kind, node, key, &mut h, data) {
            Ok(a) => q.apply(key, &h, a),
            Err(e) => {
                let _ = t.transaction_cancel();
                return terr("store", e);
            }
        }
    }
    match t.transaction_commit() {
        Ok(()) => Reply::Ok,
        Err(e) => terr("transaction commit", e),
    }
}

/// The records of a DB_PUSH buffer, stored as the daemon stores records
/// (each with its own lmaster from the vnn map), read-only flags cleared.
fn push_store(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    recs: &[(Vec<u8>, Header, Vec<u8>)],
    vnn_map: &[u32],
) -> Reply {
    for (key, header, data) in recs {
        let mut h = *header;
        h.flags &= !ltdb::REC_RO_FLAGS;
        let view = NodeView {
            lmaster: super::lmaster(vnn_map, key).unwrap_or(node.lmaster),
            ..node
        };
        // Samba's store deletes an empty record it does not keep, and a
        // record that is not there makes that delete, and the push, fail.
        let absent = kind == Kind::Volatile && data.is_empty() && !t.exists(key);
        match ltdb::store(t, kind, view, key, &mut h, data) {
            Ok(vacuum::QueueAction::Leave) if absent => {
                return Reply::Failed("Unable to store record".into())
            }
            Ok(a) => q.apply(key, &h, a),
            Err(e) => return terr("push store", e),
        }
    }
    Reply::Ok
}

/// A record call with the chain locked: this node is dmaster of the record
/// (it is the only node), so the call runs locally and the record is stored
/// back, which is what "immediate migration" amounts to here.
fn call_locked(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    callid: u32,
) -> Reply {
    let (mut header, data) = match ltdb::fetch(t, kind, node, key, q) {
        Ok(x) => x,
        Err(e) => return terr("fetch", e),
    };
    if header.dmaster != node.pnn {
        // A copy another node was dmaster of; alone in the cluster, this node
        // takes the record over.
        header.dmaster = node.pnn;
    }
    let reply = match callid {
        CALL_NULL_FUNC => Vec::new(),
        CALL_FETCH_FUNC => data.clone(),
        CALL_FETCH_WITH_HEADER_FUNC => {
            let mut v = header.encode().to_vec();
            v.extend_from_slice(&data);
            v
        }
        // Samba answers an unknown function with status 0 and no data, and
        // leaves the record alone.
        _ => {
            return Reply::Call {
                status: 0,
                data: Vec::new(),
            }
        }
    };
    match ltdb::store(t, kind, node, key, &mut header, &data) {
        Ok(a) => q.apply(key, &header, a),
        Err(e) => return terr("store", e),
    }
    Reply::Call {
        status: 0,
        data: reply,
    }
}

/// Opens (creating) a tdb file with the daemon's open flags.
pub(super) fn open_tdb(
    path: &std::path::Path,
    hash_size: u32,
    tdb_flags: u32,
) -> Result<Box<Tdb>, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "path contains NUL".to_string())?;
    let opts = tdb_engine::OpenOptions {
        hash_size: hash_size as i32,
        tdb_flags,
        open_flags: libc::O_CREAT | libc::O_RDWR,
        mode: 0o600,
        ..Default::default()
    };
    Tdb::open(Some(&c), opts).map_err(|e| {
        format!(
            "Failed to open tdb '{}': {}",
            path.display(),
            std::io::Error::from_raw_os_error(e.errno)
        )
    })
}
