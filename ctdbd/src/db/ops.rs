//! The tdb side of each database operation, run on the database's worker
//! thread with the handle it owns.

use std::ffi::CString;

use super::readonly::{self, Chain};
use super::{
    CallSpec, Handover, Op, RecordStep, Reply, Wake, CALL_FETCH_FUNC, CALL_FETCH_WITH_HEADER_FUNC,
    CALL_NULL_FUNC,
};
use crate::ltdb::{self, Header, Kind, NodeView};
use crate::vacuum::QueueAction;
use crate::vacuum::{self, DeleteQueue};
use ctdb_protocol::ltdb::RecBufferRef;
use tdb_engine::{BatchRecord, Tdb, TdbError};

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
                return under_chainlock(t, &key, lock, |t| {
                    call_locked(t, q, kind, node, &key, callid)
                });
            }
            Op::Record { key, step } => {
                let tracking = self.tracking.as_deref_mut();
                return under_chainlock(t, &key, lock, |t| {
                    let c = Chain {
                        t,
                        q,
                        tracking,
                        kind,
                        node,
                        key: &key,
                    };
                    record_step(c, step)
                });
            }
            // The worker walks traverses itself (traverse::Walk).
            Op::Traverse { sink, .. } | Op::Pull { sink, .. } => {
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
            Op::PersistentStore { recs, replace_only } => {
                persistent_store(t, q, kind, node, id, &recs, replace_only)
            }
            Op::TransactionStart => {
                if t.transaction_active() {
                    let _ = t.transaction_cancel();
                }
                match t.transaction_start() {
                    Ok(()) => Reply::Ok,
                    Err(e) => terr("transaction start", e),
                }
            }
            Op::PushStore { recs, vnn_map } => {
                let pushed = recs.iter().map(Pushed::from_tuple).collect();
                push_store(t, q, kind, node, pushed, &vnn_map)
            }
            Op::PushBuffer {
                buffer,
                vnn_map,
                failed,
            } => push_once(t, q, kind, node, &buffer, &vnn_map, &failed),
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
                vnn_map,
                alone,
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
                    alone,
                };
                let view = view_of(node.pnn, &vnn_map);
                match vacuum::run(t, q, &view, &name, params) {
                    Ok((_, rest)) if rest.is_empty() => Reply::Ok,
                    Ok((_, rest)) => Reply::Vacuumed(rest),
                    Err(vacuum::RunError::TimedOut) => Reply::TimedOut,
                    Err(vacuum::RunError::Tdb(why)) => Reply::Failed(why),
                }
            }
            Op::TryDelete { recs, vnn_map } => {
                let view = view_of(node.pnn, &vnn_map);
                Reply::Records(vacuum::try_delete(t, recs, &view))
            }
            Op::DeleteConfirmed {
                name,
                recs,
                vnn_map,
            } => {
                let view = view_of(node.pnn, &vnn_map);
                let mut c = vacuum::Counts::default();
                vacuum::delete_confirmed(t, recs, &view, &mut c);
                c.log_delete_list(&name);
                Reply::Ok
            }
            Op::EnableSeqnum => {
                t.enable_seqnum();
                Reply::Ok
            }
            Op::IncrementSeqnum => {
                t.increment_seqnum_nonblock();
                Reply::Seqnum(u64::from(t.get_seqnum() as u32))
            }
            Op::TdbSeqnum => Reply::Seqnum(u64::from(t.get_seqnum() as u32)),
            Op::Wipe => match t.wipe_all() {
                Ok(()) => {
                    // As Samba's wipe: the records queued for the vacuumer
                    // are gone too.
                    q.clear();
                    Reply::Ok
                }
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
            Op::WipeTracking => self.wipe_tracking(),
            Op::Close => Reply::Failed("close handled by the worker".into()),
            #[cfg(test)]
            Op::Panic => panic!("test-only panic in database work"),
        })
    }

    /// DB_PUSH_CONFIRM of a read-only database: the tracking database is
    /// wiped, or closed when that fails.
    fn wipe_tracking(&mut self) -> Reply {
        if let Some(tr) = self.tracking.as_deref_mut() {
            if tr.wipe_all().is_err() {
                if let Some(tr) = self.tracking.take() {
                    let _ = tr.close();
                }
            }
        }
        Reply::Ok
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

/// UPDATE_RECORD: the records in one transaction, refusing an older rsn for
/// changed data; `replace_only` skips records the file does not hold.
fn persistent_store(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    id: u32,
    recs: &[(Vec<u8>, Header, Vec<u8>)],
    replace_only: bool,
) -> Reply {
    if let Err(e) = t.transaction_start() {
        return terr("transaction start", e);
    }
    for (key, header, data) in recs {
        if replace_only && !t.exists(key) {
            continue;
        }
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

/// One record of a push: its key, its header as sent and its value.
struct Pushed<'a> {
    key: &'a [u8],
    header: Header,
    data: &'a [u8],
}

impl<'a> Pushed<'a> {
    /// A (key, header, value) record of PushStore.
    fn from_tuple((key, header, data): &'a (Vec<u8>, Header, Vec<u8>)) -> Pushed<'a> {
        Pushed {
            key,
            header: *header,
            data,
        }
    }
}

/// PushBuffer: nothing once `failed` is set; a buffer that fails sets it.
fn push_once(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    buffer: &[u8],
    vnn_map: &[ctdb_protocol::Pnn],
    failed: &std::sync::atomic::AtomicBool,
) -> Reply {
    use std::sync::atomic::Ordering;
    if failed.load(Ordering::SeqCst) {
        return Reply::Failed("push failed earlier".into());
    }
    let r = push_buffer(t, q, kind, node, buffer, vnn_map);
    if r != Reply::Ok {
        failed.store(true, Ordering::SeqCst);
    }
    r
}

/// Records of a push buffer stored per batch: small enough that the
/// batch's working vectors stay in the cache and are reused from one
/// batch to the next, instead of fresh memory the size of the buffer.
const PUSH_BATCH: usize = 2048;

/// A DB_PUSH record buffer: checked whole first (a bad buffer or record
/// stores nothing and fails), then its records stored as `push_store`
/// does, `PUSH_BATCH` at a time.
fn push_buffer(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    buffer: &[u8],
    vnn_map: &[ctdb_protocol::Pnn],
) -> Reply {
    let Ok(records) = RecBufferRef::new(buffer) else {
        return Reply::Failed("bad record buffer in push".into());
    };
    for rec in records.clone() {
        match rec {
            Ok(rec) if rec.header().is_ok() => {}
            Ok(_) => return Reply::Failed("bad ltdb record in push".into()),
            Err(_) => return Reply::Failed("bad record buffer in push".into()),
        }
    }
    let mut pushed = Vec::with_capacity(PUSH_BATCH.min(records.count as usize));
    for rec in records.flatten() {
        let Ok((h, data)) = rec.header() else {
            continue;
        };
        pushed.push(Pushed {
            key: rec.key,
            header: Header::from(h),
            data,
        });
        if pushed.len() == PUSH_BATCH {
            let r = push_store(t, q, kind, node, std::mem::take(&mut pushed), vnn_map);
            if r != Reply::Ok {
                return r;
            }
        }
    }
    push_store(t, q, kind, node, pushed, vnn_map)
}

/// A record of a push that is kept: the record, its header as stored,
/// and what the store means for the delete queue.
struct Kept<'a> {
    rec: Pushed<'a>,
    stored: [u8; ltdb::HEADER_LEN],
    action: QueueAction,
}

/// The records of a DB_PUSH buffer, stored as the daemon stores records
/// (each with its own lmaster from the vnn map), read-only flags cleared.
/// The records kept go to the file in batches (`Tdb::store_batch`, the
/// same result as one store each); a record deleted ends the batch before
/// it, so the order of the stores is kept.
fn push_store(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    recs: Vec<Pushed<'_>>,
    vnn_map: &[ctdb_protocol::Pnn],
) -> Reply {
    let mut kept: Vec<Kept> = Vec::with_capacity(recs.len());
    for mut rec in recs {
        rec.header.flags &= !ltdb::REC_RO_FLAGS;
        // The lmaster only matters for an empty record (and costs a hash).
        let lmaster = match rec.data.is_empty() {
            true => crate::call::lmaster(vnn_map, rec.key).map_or(node.lmaster, |p| p.0),
            false => node.lmaster,
        };
        let view = NodeView { lmaster, ..node };
        match ltdb::store_rule(kind, view, &mut rec.header, rec.data.is_empty()) {
            ltdb::StoreRule::Keep(action) => kept.push(Kept {
                stored: rec.header.encode(),
                rec,
                action,
            }),
            ltdb::StoreRule::Delete => {
                if let Err(e) = store_kept(t, q, &mut kept) {
                    return terr("push store", e);
                }
                // Samba's store deletes an empty record it does not keep,
                // and a record that is not there makes that delete, and the
                // push, fail.
                if !t.exists(rec.key) {
                    return Reply::Failed("Unable to store record".into());
                }
                if let Err(e) = t.delete(rec.key) {
                    return terr("push store", e);
                }
            }
        }
    }
    match store_kept(t, q, &mut kept) {
        Ok(()) => Reply::Ok,
        Err(e) => terr("push store", e),
    }
}

/// Stores the records in `kept` in one batch, tells the delete queue, and
/// empties `kept`.
fn store_kept(t: &mut Tdb, q: &mut DeleteQueue, kept: &mut Vec<Kept<'_>>) -> Result<(), TdbError> {
    if kept.is_empty() {
        return Ok(());
    }
    let batch: Vec<BatchRecord> = kept
        .iter()
        .map(|k| BatchRecord {
            key: k.rec.key,
            parts: [&k.stored, k.rec.data],
        })
        .collect();
    t.store_batch(&batch)?;
    for k in kept.drain(..) {
        q.apply(k.rec.key, &k.rec.header, k.action);
    }
    Ok(())
}

/// Runs `f` with the chain of `key` locked (tried only, with `ChainLock::Try`:
/// a busy chain gives `Outcome::ChainBusy` and nothing is done).
fn under_chainlock(
    t: &mut Tdb,
    key: &[u8],
    lock: ChainLock,
    f: impl FnOnce(&mut Tdb) -> Reply,
) -> Outcome {
    let r = if lock == ChainLock::Try {
        t.chainlock_nonblock(key)
    } else {
        t.chainlock(key)
    };
    match r {
        Ok(()) => {}
        Err(TdbError::Lock) if lock == ChainLock::Try => return Outcome::ChainBusy,
        Err(e) => return Outcome::Done(terr("chainlock", e)),
    }
    let reply = f(t);
    let _ = t.chainunlock(key);
    Outcome::Done(reply)
}

/// A record call with the chain locked when no vnn map routes calls: this
/// node is the only lmaster, so it is dmaster of every record and takes
/// over a copy another node was dmaster of; the call runs locally and the
/// record is stored back.
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
    header.dmaster = node.pnn;
    run_call(t, q, kind, node, key, header, data, callid)
}

/// Runs the call function on a record this node is dmaster of and stores
/// the record back (which bumps the rsn of a volatile record).
#[allow(clippy::too_many_arguments)]
fn run_call(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    mut header: Header,
    data: Vec<u8>,
    callid: u32,
) -> Reply {
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

/// One step of a record migration with the chain locked (Samba's
/// ctdb_request_call, ctdb_request_dmaster and ctdb_become_dmaster, and
/// the read-only delegation steps); `c.node.lmaster` is replaced by the
/// step's own.
fn record_step(mut c: Chain<'_>, step: RecordStep) -> Reply {
    let pnn = c.node.pnn;
    match step {
        RecordStep::Request {
            call,
            requester,
            lmaster,
        } => {
            c.node = NodeView { pnn, lmaster };
            request(c, call, requester)
        }
        RecordStep::DmasterRequest {
            sender,
            new_dmaster,
            rsn,
            flags,
            data,
            call,
            lmaster,
        } => {
            let node = NodeView { pnn, lmaster };
            let (t, q, kind, key) = (c.t, c.q, c.kind, c.key);
            let (mut header, _) = match ltdb::fetch(t, kind, node, key, q) {
                Ok(x) => x,
                Err(e) => return terr("fetch", e),
            };
            // Only the dmaster the lmaster knows may hand the record on,
            // except for a record the lmaster never gave away.
            if header.dmaster != sender && (header.rsn != 0 || header.dmaster != pnn) {
                return Reply::DmasterRefused {
                    dmaster: header.dmaster,
                    rsn: header.rsn,
                };
            }
            if new_dmaster == pnn {
                return become_dmaster(t, q, kind, node, key, rsn, flags, data, call);
            }
            header.rsn = rsn;
            header.flags = flags;
            header.dmaster = new_dmaster;
            if let Err(e) = ltdb::store(t, kind, node, key, &mut header, &data) {
                return terr("store", e);
            }
            Reply::Handover(Handover {
                to: new_dmaster,
                from_lmaster: true,
                rsn: header.rsn,
                flags: header.flags,
                data,
            })
        }
        RecordStep::BecomeDmaster {
            rsn,
            flags,
            data,
            call,
            lmaster,
        } => {
            let node = NodeView { pnn, lmaster };
            become_dmaster(c.t, c.q, c.kind, node, c.key, rsn, flags, data, call)
        }
        RecordStep::FinishRevoke {
            sent_rsn,
            ok,
            lmaster,
        } => {
            c.node = NodeView { pnn, lmaster };
            readonly::finish_revoke(&mut c, sent_rsn, ok)
        }
        RecordStep::StoreReadonly {
            header,
            data,
            lmaster,
        } => {
            c.node = NodeView { pnn, lmaster };
            readonly::store_readonly(&mut c, header, &data)
        }
    }
}

/// REQ_CALL with the chain locked: the read-only rules first, then the
/// call runs here (requester this node) or the record goes to the
/// requester.
fn request(mut c: Chain<'_>, call: CallSpec, requester: u32) -> Reply {
    let (mut header, data) = match ltdb::fetch(c.t, c.kind, c.node, c.key, c.q) {
        Ok(x) => x,
        Err(e) => return terr("fetch", e),
    };
    if let Some(r) = readonly::gate(&mut c, &mut header, &data, &call, requester) {
        return r;
    }
    let (t, q, kind, node, key) = (c.t, c.q, c.kind, c.node, c.key);
    if requester != node.pnn {
        return hand_over(t, q, kind, node, key, header, data, requester);
    }
    run_call(t, q, kind, node, key, header, data, call.callid)
}

/// Gives the record to `requester` (Samba's ctdb_call_send_dmaster): a value
/// marks it MIGRATED_WITH_DATA; the local copy then names the requester as
/// dmaster (and, off the lmaster, an empty copy is deleted).
#[allow(clippy::too_many_arguments)]
fn hand_over(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    mut header: Header,
    data: Vec<u8>,
    requester: u32,
) -> Reply {
    if !data.is_empty() {
        header.flags |= ltdb::REC_FLAG_MIGRATED_WITH_DATA;
    }
    // Off the lmaster, the REQ_DMASTER carries the header as it was before
    // the local store; the lmaster's REPLY_DMASTER the header as stored.
    let sent = (header.rsn, header.flags);
    header.dmaster = requester;
    match ltdb::store(t, kind, node, key, &mut header, &data) {
        Ok(a) => q.apply(key, &header, a),
        Err(e) => return terr("store", e),
    }
    let from_lmaster = node.lmaster == node.pnn;
    let (rsn, flags) = if from_lmaster {
        (header.rsn, header.flags)
    } else {
        sent
    };
    Reply::Handover(Handover {
        to: requester,
        from_lmaster,
        rsn,
        flags,
        data,
    })
}

/// Stores a record handed to this node with this node as dmaster (the store
/// bumps the rsn), then runs the call that waited for it, if any.
#[allow(clippy::too_many_arguments)]
fn become_dmaster(
    t: &mut Tdb,
    q: &mut DeleteQueue,
    kind: Kind,
    node: NodeView,
    key: &[u8],
    rsn: u64,
    flags: u32,
    data: Vec<u8>,
    call: Option<CallSpec>,
) -> Reply {
    let mut header = Header {
        rsn,
        dmaster: node.pnn,
        reserved1: 0,
        flags,
    };
    if call
        .as_ref()
        .is_some_and(|c| c.flags & super::CALL_FLAG_VACUUM_MIGRATION != 0)
    {
        header.flags |= ltdb::REC_FLAG_VACUUM_MIGRATED;
    }
    match ltdb::store(t, kind, node, key, &mut header, &data) {
        Ok(a) => q.apply(key, &header, a),
        Err(e) => return terr("store", e),
    }
    match call {
        Some(c) => run_call(t, q, kind, node, key, header, data, c.callid),
        None => Reply::Ok,
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

/// This node's view of each key under `vnn_map` (itself the lmaster of
/// every key when the map is empty).
fn view_of(pnn: u32, vnn_map: &[ctdb_protocol::Pnn]) -> impl Fn(&[u8]) -> NodeView + '_ {
    move |key| NodeView {
        pnn,
        lmaster: crate::call::lmaster(vnn_map, key).map_or(pnn, |p| p.0),
    }
}
