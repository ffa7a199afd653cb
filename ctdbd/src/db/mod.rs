//! Databases.  The event loop keeps the catalogue (id, name, flags, path);
//! each open database has a worker thread of its own that owns its tdb
//! handle and does every tdb call on it (worker.rs), so a slow open, lock,
//! fsync, vacuum or traverse stalls neither the loop nor other databases.
//! Finished jobs come back through a crossbeam channel and wake the loop
//! with a mio::Waker; traverses stream their records through a bounded
//! channel of their own (traverse.rs).

use crossbeam_channel::{Receiver, Sender};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ltdb::{Header, Kind, NodeView};
use ctdb_protocol::types::{DB_FLAGS_PERSISTENT, DB_FLAGS_REPLICATED};

mod chain_wait;
mod ops;
mod readonly;
pub mod traverse;
mod worker;

/// The db_id of a database: Jenkins hash of its name including the NUL.
pub fn db_id(name: &str) -> u32 {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    tdb_engine::hash::jenkins_hash(&k)
}

/// tdb flags used for a database of this kind (what DB_OPEN_FLAGS reports
/// and what clients pass to tdb_open on the same file).
pub fn tdb_flags(db_flags: u8, mutexes: bool) -> u32 {
    use tdb_engine::flags::*;
    let mut f = if db_flags & DB_FLAGS_PERSISTENT != 0 {
        DEFAULT
    } else if db_flags & DB_FLAGS_REPLICATED != 0 {
        NOSYNC | CLEAR_IF_FIRST | INCOMPATIBLE_HASH
    } else {
        let mut f = NOSYNC | CLEAR_IF_FIRST | INCOMPATIBLE_HASH;
        if mutexes && tdb_engine::runtime_check_for_robust_mutexes() {
            f |= MUTEX_LOCKING;
        }
        f
    };
    f |= DISALLOW_NESTING;
    f
}

#[derive(Clone, Debug)]
pub struct DbInfo {
    pub id: u32,
    pub name: String,
    pub flags: u8,
    pub path: PathBuf,
    pub tdb_flags: u32,
    /// Opened on the helper thread; until then attach replies wait.
    pub ready: bool,
    pub unhealthy: Option<String>,
    /// DB_FREEZE seen and no DB_THAW yet: record calls wait.
    pub frozen: bool,
    /// A whole-node FREEZE marked this volatile database's records as
    /// invalid: DB_PULL sends none of them (cleared by its thaw).
    pub invalid_records: bool,
    /// The generation of its last recovery commit (at attach: the node's);
    /// SET_RECMODE NORMAL wants it equal to the vnn map's.
    pub generation: ctdb_protocol::Generation,
    /// Transaction id of the recovery transaction (DB_TRANSACTION_START).
    pub transaction: Option<u32>,
    /// Record calls (client token, whole packet) held back while frozen.
    pub deferred: Vec<(usize, Vec<u8>)>,
    /// DB_PUSH_START seen and no DB_PUSH_CONFIRM yet.
    pub push: Option<PushState>,
    pub stats: crate::stats::DbStats,
    /// Volatile databases: when the next vacuum run is due.
    pub vacuum: VacuumTimer,
}

/// Samba's per-database vacuum handle: the timer and the count of fast runs
/// since the last full one.
#[derive(Clone, Debug, Default)]
pub struct VacuumTimer {
    /// None while a run is under way, and for databases not vacuumed.
    pub next: Option<std::time::Instant>,
    /// The VacuumInterval the timer was set with.
    pub interval: u32,
    pub fast_path_count: u32,
    /// Keys other nodes sent with VACUUM_FETCH (this node is their
    /// lmaster): migrated here when the next run starts, as Samba's
    /// fetch queue is.
    pub fetch_queue: Vec<Vec<u8>>,
}

impl VacuumTimer {
    /// Sets the next run `interval` seconds after `now`.
    pub fn arm(&mut self, now: std::time::Instant, interval: u32) {
        self.next = Some(now + std::time::Duration::from_secs(interval as u64));
        self.interval = interval;
    }
}

/// A restore in progress: record buffers sent to `srvid` are stored into the
/// database (inside its recovery transaction).
#[derive(Clone, Debug, Default)]
pub struct PushState {
    pub srvid: u64,
    /// Records in the buffers stored so far.
    pub num_records: u32,
    /// A buffer was malformed or a store failed: later buffers are ignored
    /// (as in Samba, the confirm then counts the buffers stored before).
    /// Shared with the worker, which sets it on a failed store.
    pub failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Op {
    /// The name of a recovery operation (whose duration is logged at debug
    /// level), `None` for the others.
    pub fn recovery_step(&self) -> Option<&'static str> {
        match self {
            Op::TransactionStart => Some("transaction start"),
            Op::Wipe => Some("wipe"),
            Op::PushBuffer { .. } => Some("push buffer"),
            Op::TransactionCommit => Some("transaction commit"),
            _ => None,
        }
    }

    /// The key of a record call or record step (these queue per chain).
    pub fn record_key(&self) -> Option<&[u8]> {
        match self {
            Op::Call { key, .. } | Op::Record { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl DbInfo {
    pub fn kind(&self) -> Kind {
        kind_of(self.flags)
    }
}

pub fn kind_of(db_flags: u8) -> Kind {
    if db_flags & DB_FLAGS_PERSISTENT != 0 {
        Kind::Persistent
    } else if db_flags & DB_FLAGS_REPLICATED != 0 {
        Kind::Replicated
    } else {
        Kind::Volatile
    }
}

/// Record-call flag: a vacuum run migrates an empty record to its lmaster.
pub const CALL_FLAG_VACUUM_MIGRATION: u32 = 0x0000_0002;

/// Record-call flag: the requester would take a read-only copy.
pub const CALL_FLAG_WANT_READONLY: u32 = 0x0000_0004;

/// Record-call function id: migrate the record, return nothing.
pub const CALL_NULL_FUNC: u32 = 0xFF00_0001;
/// Record-call function id: return the record's value.
pub const CALL_FETCH_FUNC: u32 = 0xFF00_0002;
/// Record-call function id: return the record's header and value.
pub const CALL_FETCH_WITH_HEADER_FUNC: u32 = 0xFF00_0003;

/// Where and how to open a database (DB_ATTACH*).
#[derive(Clone, Debug)]
pub struct OpenParams {
    /// The tdb file, created if missing.
    pub path: PathBuf,
    /// Hash chains of a new file (DatabaseHashSize).
    pub hash_size: u32,
    /// tdb_open flags (see `tdb_flags`).
    pub tdb_flags: u32,
    /// Dead records kept per chain (DatabaseMaxDead).
    pub max_dead: u32,
    /// Which record rules apply.
    pub kind: Kind,
}

/// Work for the database workers.
#[derive(Debug)]
pub enum Job {
    /// Starts the worker of database `id`, which opens it and reports
    /// `Done::Opened`.
    Open {
        id: u32,
        path: PathBuf,
        hash_size: u32,
        tdb_flags: u32,
        max_dead: u32,
        kind: Kind,
    },
    /// An operation on an open database; `tag` comes back with the reply
    /// (traverses answer through their stream instead).
    Op { id: u32, tag: u64, op: Op },
    /// Stops every worker and waits for them.
    Stop,
}

/// One operation on an open database, run by its worker.
#[derive(Clone, Debug)]
pub enum Op {
    /// REQ_CALL on this node as dmaster: run the call function, store the
    /// record back (bumping the rsn) and return the reply data.
    Call { key: Vec<u8>, callid: u32 },
    /// One step of a record's migration between nodes (call.rs), run under
    /// the record's chain lock like `Call` and kept in order with the calls
    /// on the same chain.
    Record { key: Vec<u8>, step: RecordStep },
    /// Every record (header included) a traverse should report, streamed to
    /// `sink` in batches and then its end; no `Done` comes for it.
    Traverse {
        with_empty: bool,
        sink: traverse::Sink,
    },
    /// DB_PULL: every record in the file (header included, empty and
    /// foreign-dmaster ones too), streamed to `sink` as a traverse is.
    Pull {
        sink: traverse::Sink,
        db_id: ctdb_protocol::DbId,
        limit: usize,
    },
    /// The persistent sequence number (0 when unset).
    GetSeqnum,
    /// UPDATE_RECORD (a TRANS3_COMMIT's part on each node): store (key,
    /// header, value) records in one tdb transaction, refusing an older rsn
    /// for changed data; with `replace_only` (volatile databases) records
    /// not in the file are skipped.
    PersistentStore {
        recs: Vec<(Vec<u8>, Header, Vec<u8>)>,
        replace_only: bool,
    },
    /// DB_TRANSACTION_START: a recovery transaction (an open one is
    /// cancelled first).
    TransactionStart,
    /// WIPE_DATABASE: delete every record (inside the recovery transaction).
    Wipe,
    /// Records (key, header, value) stored as the daemon stores records,
    /// read-only flags cleared.  Whether an empty record is kept depends
    /// on its lmaster, the key's slot in `vnn_map` (empty: this node).
    /// Tests seed databases with it; DB_PUSH sends PushBuffer.
    #[cfg_attr(not(test), allow(dead_code))]
    PushStore {
        recs: Vec<(Vec<u8>, Header, Vec<u8>)>,
        vnn_map: Vec<ctdb_protocol::Pnn>,
    },
    /// One DB_PUSH record buffer (its bytes as received, checked here):
    /// PushStore of its records, except that nothing is stored once
    /// `failed` is set (an earlier buffer failed) and a bad buffer or a
    /// failed store sets it, as Samba's push ignores everything after its
    /// first failure.
    PushBuffer {
        buffer: Vec<u8>,
        vnn_map: Vec<ctdb_protocol::Pnn>,
        failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
    /// Does nothing; its reply orders a control after earlier operations.
    Barrier,
    /// DB_TRANSACTION_COMMIT: commit the recovery transaction.
    TransactionCommit,
    /// DB_TRANSACTION_CANCEL / thaw: cancel it if one is open.
    TransactionCancel,
    /// SET_DB_READONLY: open (creating) the read-only tracking database
    /// `<path>.RO` next to the database.
    OpenTracking { path: PathBuf, hash_size: u32 },
    /// DB_PUSH_CONFIRM of a read-only database: wipe the tracking database
    /// (closed, so that read-only calls are no longer delegated, when the
    /// wipe fails); always Ok.
    WipeTracking,
    /// Closes the database; the worker then fails everything until stopped.
    Close,
    /// ENABLE_SEQNUM: the daemon's handle bumps the tdb sequence number on
    /// every store from now on.
    EnableSeqnum,
    /// UPDATE_SEQNUM from another node: bump the tdb sequence number; the
    /// reply is the new one.
    IncrementSeqnum,
    /// The tdb's own sequence number (what ENABLE_SEQNUM makes stores bump).
    TdbSeqnum,
    /// SCHEDULE_FOR_DELETION: queue an emptied record for the next vacuum
    /// run (with the header the client stored).
    ScheduleForDeletion { key: Vec<u8>, header: Header },
    /// One vacuum run of a volatile database (see vacuum.rs); `vnn_map`
    /// gives each key's lmaster, `alone` says no other node is active.
    Vacuum {
        name: String,
        full: bool,
        repack_limit: u32,
        max_run: Duration,
        vnn_map: Vec<ctdb_protocol::Pnn>,
        alone: bool,
    },
    /// TRY_DELETE_RECORDS from the lmaster: drop this node's copies where
    /// allowed; answers `Reply::Records` with those kept.
    TryDelete {
        recs: Vec<(Vec<u8>, Header)>,
        vnn_map: Vec<ctdb_protocol::Pnn>,
    },
    /// The end of a delete list every other node confirmed: delete the
    /// records here after checking each again.
    DeleteConfirmed {
        name: String,
        recs: Vec<(Vec<u8>, Header)>,
        vnn_map: Vec<ctdb_protocol::Pnn>,
    },
    /// Panics inside the worker (tests of the panic handling only).
    #[cfg(test)]
    Panic,
}

/// A record call as the dmaster runs it: the function and what the
/// requester asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSpec {
    /// CALL_*_FUNC.
    pub callid: u32,
    /// CALL_FLAG_* of the request (a vacuum migration marks the record).
    pub flags: u32,
}

/// One step of a record migration, run on the database's worker under the
/// record's chain lock; `lmaster` is the key's lmaster in the current vnn
/// map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordStep {
    /// REQ_CALL here: with this node as dmaster the call runs (requester
    /// this node) or the record is handed to `requester`; otherwise the
    /// answer says which node the local copy names as dmaster.
    Request {
        call: CallSpec,
        requester: u32,
        lmaster: u32,
    },
    /// REQ_DMASTER at the lmaster: `sender` (the dmaster) gives the record
    /// to `new_dmaster`; when that is this node, `call` runs after it.
    DmasterRequest {
        sender: u32,
        new_dmaster: u32,
        rsn: u64,
        flags: u32,
        data: Vec<u8>,
        call: Option<CallSpec>,
        lmaster: u32,
    },
    /// REPLY_DMASTER (or a REQ_DMASTER naming this node): store the record
    /// as its dmaster, then run `call` if one waits for it.
    BecomeDmaster {
        rsn: u64,
        flags: u32,
        data: Vec<u8>,
        call: Option<CallSpec>,
        lmaster: u32,
    },
    /// Every delegated node answered a revoke's UPDATE_RECORD (`ok`) or
    /// one did not: the record, still marked REVOKING_READONLY, is marked
    /// REVOKE_COMPLETE (or the revoke is undone to be tried again).
    /// `sent_rsn` is the rsn the revoke sent.
    FinishRevoke {
        sent_rsn: u64,
        ok: bool,
        lmaster: u32,
    },
    /// A read-only copy the dmaster answered a WANT_READONLY call with
    /// (header with HAVE_READONLY, value): stored here when its rsn is
    /// newer than the local copy's.
    StoreReadonly {
        header: Header,
        data: Vec<u8>,
        lmaster: u32,
    },
}

/// A revoke of a record's read-only delegations that a call started: the
/// record as every delegated node must store it, and those nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoke {
    /// The header sent: read-only flags cleared, MIGRATED_WITH_DATA set,
    /// the dmaster's rsn less one.
    pub header: Header,
    /// The record's value.
    pub data: Vec<u8>,
    /// The nodes holding a read-only copy (from the tracking database).
    pub nodes: Vec<u32>,
}

/// A record handed to another node: what goes into the REQ_DMASTER (to the
/// lmaster) or REPLY_DMASTER (from the lmaster) packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The new dmaster.
    pub to: u32,
    /// True when this node is the lmaster: REPLY_DMASTER goes straight to
    /// the new dmaster; otherwise REQ_DMASTER goes to the lmaster.
    pub from_lmaster: bool,
    /// The record's rsn as handed over.
    pub rsn: u64,
    /// The record's header flags as handed over.
    pub flags: u32,
    /// The record's value.
    pub data: Vec<u8>,
}

/// The result of one operation.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A record call's status and reply data.
    Call { status: i32, data: Vec<u8> },
    /// A record step found another node named as dmaster in the local copy.
    NotDmaster { dmaster: u32 },
    /// A record step gave the record away.
    Handover(Handover),
    /// The record's delegations are being revoked: the call waits for it.
    Revoking,
    /// The call started a revoke of the record's delegations and waits
    /// for it.
    Revoke(Revoke),
    /// A read-only delegation: the REPLY_CALL data (the copy's header and
    /// the value) for the requester.
    Delegated { data: Vec<u8> },
    /// REQ_DMASTER from a node the lmaster does not know as the dmaster
    /// (Samba then forces a recovery); the local header's dmaster and rsn.
    DmasterRefused { dmaster: u32, rsn: u64 },
    /// GetSeqnum's value.
    Seqnum(u64),
    /// Done.
    Ok,
    /// Not done, and why (logged by the loop).
    Failed(String),
    /// A vacuum run hit VacuumMaxRunTime and stopped.
    TimedOut,
    /// A vacuum run left records to the other nodes.
    Vacuumed(crate::vacuum::ForNodes),
    /// Records (key, header), e.g. those TRY_DELETE_RECORDS kept.
    Records(Vec<(Vec<u8>, Header)>),
    /// Another node's REPLY_CONTROL to a control this daemon sent.
    Control {
        status: i32,
        data: Vec<u8>,
        errmsg: Option<String>,
    },
}

/// What the workers report to the event loop.
#[derive(Debug)]
pub enum Done {
    /// The worker of `id` opened its database, or could not.
    Opened { id: u32, result: Result<(), String> },
    /// The operation tagged `tag` finished.
    Op { tag: u64, reply: Reply },
    /// Work on `id` panicked: the database is unhealthy (DB_GET_HEALTH says
    /// `reason`); its worker goes on serving it.
    Unhealthy { id: u32, reason: String },
}

/// A job the workers could not take (its worker thread could not start).
#[derive(Debug)]
pub struct Refused(pub Job);

/// Called by a worker after it queued a `Done` or a traverse batch.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The database workers, one thread per open database, as the event loop
/// sees them. Used from the event loop thread only.
pub struct Workers {
    node: NodeView,
    done: Sender<Done>,
    wake: Wake,
    workers: RefCell<HashMap<u32, worker::Handle>>,
}

/// Creates the (empty) set of workers; `wake` is called after each reply.
pub fn spawn(pnn: u32, wake: Wake) -> (Workers, Receiver<Done>) {
    let (done, done_rx) = crossbeam_channel::unbounded::<Done>();
    let node = NodeView { pnn, lmaster: pnn };
    let workers = Workers {
        node,
        done,
        wake,
        workers: RefCell::new(HashMap::new()),
    };
    (workers, done_rx)
}

impl Workers {
    /// Hands a job to the workers. Every operation gets its reply (or, for a
    /// traverse, its stream end) even when its database has no worker; only
    /// an Open whose thread cannot start is given back.
    pub fn send(&self, job: Job) -> Result<(), Refused> {
        match job {
            Job::Open {
                id,
                path,
                hash_size,
                tdb_flags,
                max_dead,
                kind,
            } => {
                let params = OpenParams {
                    path,
                    hash_size,
                    tdb_flags,
                    max_dead,
                    kind,
                };
                // A previous worker of this id (detached) finishes its work and
                // closes the file before the new one opens it.
                let previous = self.workers.borrow_mut().remove(&id);
                let after = previous.and_then(worker::Handle::retire);
                let started = worker::spawn(
                    id,
                    after,
                    params.clone(),
                    self.node,
                    self.done.clone(),
                    self.wake.clone(),
                );
                match started {
                    Ok(h) => self.workers.borrow_mut().insert(id, h),
                    Err(e) => {
                        crate::log_err!("Cannot start the worker of db 0x{:08x}: {}", id, e);
                        return Err(Refused(Job::Open {
                            id,
                            path: params.path,
                            hash_size: params.hash_size,
                            tdb_flags: params.tdb_flags,
                            max_dead: params.max_dead,
                            kind: params.kind,
                        }));
                    }
                };
                Ok(())
            }
            Job::Op { id, tag, op } => {
                let refused = match self.workers.borrow().get(&id) {
                    Some(h) => match h.tx.send(worker::Input::Op { tag, op }) {
                        Ok(()) => return Ok(()),
                        Err(e) => match e.into_inner() {
                            worker::Input::Op { op, .. } => op,
                            _ => return Ok(()),
                        },
                    },
                    None => op,
                };
                let why = format!("database 0x{id:08x} not open");
                match refused {
                    Op::Traverse { sink, .. } | Op::Pull { sink, .. } => sink.fail(why, &self.wake),
                    _ => {
                        let _ = self.done.send(Done::Op {
                            tag,
                            reply: Reply::Failed(why),
                        });
                        (self.wake)();
                    }
                }
                Ok(())
            }
            Job::Stop => {
                let all: Vec<worker::Handle> =
                    self.workers.borrow_mut().drain().map(|(_, h)| h).collect();
                for h in all {
                    h.stop();
                }
                Ok(())
            }
        }
    }

    #[cfg(test)]
    /// How many times record calls on database `id` had to wait for a chain
    /// lock held by someone else (each wait is one wake-up, never a poll).
    pub fn chain_waits(&self, id: u32) -> u64 {
        self.workers.borrow().get(&id).map_or(0, |h| {
            h.chain_waits.load(std::sync::atomic::Ordering::Relaxed)
        })
    }
}

#[cfg(test)]
mod tests;
