//! Databases.  The event loop keeps the catalogue (id, name, flags, path);
//! the tdb handles live on one helper thread that does every tdb call, so a
//! slow open, lock or fsync never stalls the loop.  Finished jobs come back
//! through a crossbeam channel and wake the loop with a mio::Waker.

use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ltdb::{self, Header, Kind, NodeView};
use crate::vacuum::{self, DeleteQueue};
use ctdb_protocol::types::{DB_FLAGS_PERSISTENT, DB_FLAGS_REPLICATED};
use tdb_engine::TdbError;

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
        if mutexes && tdb_engine::mutex::runtime_check_for_robust_mutexes() {
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
    /// A buffer was malformed or a store failed: the confirm fails.
    pub failed: bool,
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

/// Record-call function ids every database supports.
pub const CALL_NULL_FUNC: u32 = 0xFF00_0001;
pub const CALL_FETCH_FUNC: u32 = 0xFF00_0002;
pub const CALL_FETCH_WITH_HEADER_FUNC: u32 = 0xFF00_0003;

pub enum Job {
    Open {
        id: u32,
        path: PathBuf,
        hash_size: u32,
        tdb_flags: u32,
        max_dead: u32,
        kind: Kind,
    },
    /// An operation on an open database; `tag` comes back with the reply.
    Op {
        id: u32,
        tag: u64,
        op: Op,
    },
    Stop,
}

#[derive(Clone, Debug)]
pub enum Op {
    /// REQ_CALL on this node as dmaster: run the call function, store the
    /// record back (bumping the rsn) and return the reply data.
    Call {
        key: Vec<u8>,
        callid: u32,
    },
    /// Every record (header included) a traverse should report.
    Traverse {
        with_empty: bool,
    },
    /// The persistent sequence number (0 when unset).
    GetSeqnum,
    /// TRANS3_COMMIT / UPDATE_RECORD: store (key, header, value) records in
    /// one tdb transaction, refusing an older rsn for changed data.
    PersistentStore {
        recs: Vec<(Vec<u8>, Header, Vec<u8>)>,
    },
    TransactionStart,
    Wipe,
    /// Records of a DB_PUSH buffer: (key, header, value), stored as the
    /// daemon stores records, read-only flags cleared.
    PushStore {
        recs: Vec<(Vec<u8>, Header, Vec<u8>)>,
    },
    /// Does nothing; its reply orders a control after earlier operations.
    Barrier,
    TransactionCommit,
    TransactionCancel,
    /// SET_DB_READONLY: open (creating) the read-only tracking database
    /// `<path>.RO` next to the database.
    OpenTracking {
        path: PathBuf,
        hash_size: u32,
    },
    Close,
    /// ENABLE_SEQNUM: the daemon's handle bumps the tdb sequence number on
    /// every store from now on.
    EnableSeqnum,
    /// UPDATE_SEQNUM from another node: bump the tdb sequence number.
    IncrementSeqnum,
    /// SCHEDULE_FOR_DELETION: queue an emptied record for the next vacuum
    /// run (with the header the client stored).
    ScheduleForDeletion {
        key: Vec<u8>,
        header: Header,
    },
    /// One vacuum run of a volatile database (see vacuum.rs).
    Vacuum {
        name: String,
        full: bool,
        repack_limit: u32,
        max_run: Duration,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Call {
        status: i32,
        data: Vec<u8>,
    },
    Records(Vec<(Vec<u8>, Vec<u8>)>),
    Seqnum(u64),
    Ok,
    Failed(String),
    /// A vacuum run hit VacuumMaxRunTime and stopped.
    TimedOut,
}

pub enum Done {
    Opened { id: u32, result: Result<(), String> },
    Op { tag: u64, reply: Reply },
}

struct OpenDb {
    tdb: Box<tdb_engine::Tdb>,
    kind: Kind,
    /// The read-only delegation tracking database, once SET_DB_READONLY ran.
    tracking: Option<Box<tdb_engine::Tdb>>,
    /// Empty records waiting for the next vacuum run (volatile dbs).
    queue: DeleteQueue,
}

/// Starts the helper thread; `wake` is called after each reply is queued.
pub fn spawn(
    pnn: u32,
    wake: Arc<dyn Fn() + Send + Sync>,
) -> (Sender<Job>, Receiver<Done>, std::thread::JoinHandle<()>) {
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let node = NodeView { pnn, lmaster: pnn };
    let h = std::thread::Builder::new()
        .name("ctdbd-db".into())
        .spawn(move || {
            let mut open: HashMap<u32, OpenDb> = HashMap::new();
            // Record calls whose chain lock a client holds: retried shortly,
            // so one busy record never stalls the other databases.
            let mut retry: VecDeque<(u32, u64, Op)> = VecDeque::new();
            loop {
                let job = if retry.is_empty() {
                    match job_rx.recv() {
                        Ok(j) => Some(j),
                        Err(_) => break,
                    }
                } else {
                    match job_rx.recv_timeout(Duration::from_millis(2)) {
                        Ok(j) => Some(j),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                        Err(_) => break,
                    }
                };
                match job {
                    Some(Job::Open {
                        id,
                        path,
                        hash_size,
                        tdb_flags,
                        max_dead,
                        kind,
                    }) => {
                        let result = open_tdb(&path, hash_size, tdb_flags).map(|mut t| {
                            t.set_max_dead(max_dead as i32);
                            open.insert(
                                id,
                                OpenDb {
                                    tdb: t,
                                    kind,
                                    tracking: None,
                                    queue: DeleteQueue::default(),
                                },
                            );
                        });
                        let _ = done_tx.send(Done::Opened { id, result });
                        wake();
                    }
                    Some(Job::Op { id, tag, op }) => retry.push_back((id, tag, op)),
                    Some(Job::Stop) => break,
                    None => {}
                }
                let mut again = VecDeque::new();
                while let Some((id, tag, op)) = retry.pop_front() {
                    match run_op(&mut open, node, id, &op) {
                        Some(reply) => {
                            let _ = done_tx.send(Done::Op { tag, reply });
                            wake();
                        }
                        None => again.push_back((id, tag, op)),
                    }
                }
                retry = again;
            }
            for (_, d) in open.drain() {
                close_db(d);
            }
        })
        .expect("spawn db thread");
    (job_tx, done_rx, h)
}

fn close_db(d: OpenDb) -> Reply {
    if let Some(t) = d.tracking {
        let _ = t.close();
    }
    match d.tdb.close() {
        Ok(()) => Reply::Ok,
        Err(e) => terr("close", e),
    }
}

fn terr(what: &str, e: TdbError) -> Reply {
    Reply::Failed(format!("{what}: {}", e.message()))
}

/// Runs one operation; None means "a client holds the lock, try again".
fn run_op(open: &mut HashMap<u32, OpenDb>, node: NodeView, id: u32, op: &Op) -> Option<Reply> {
    if let Op::Close = op {
        return Some(match open.remove(&id) {
            Some(d) => close_db(d),
            None => Reply::Failed("database not open".into()),
        });
    }
    let Some(db) = open.get_mut(&id) else {
        return Some(Reply::Failed(format!("database 0x{id:08x} not open")));
    };
    if let Op::OpenTracking { path, hash_size } = op {
        if db.tracking.is_some() {
            return Some(Reply::Ok);
        }
        use tdb_engine::flags::*;
        return Some(
            match open_tdb(path, *hash_size, NOLOCK | CLEAR_IF_FIRST | NOSYNC) {
                Ok(t) => {
                    db.tracking = Some(t);
                    Reply::Ok
                }
                Err(e) => Reply::Failed(e),
            },
        );
    }
    let kind = db.kind;
    let t = &mut db.tdb;
    let q = &mut db.queue;
    Some(match op {
        Op::Call { key, callid } => {
            match t.chainlock_nonblock(key) {
                Ok(()) => {}
                Err(TdbError::Lock) => return None,
                Err(e) => return Some(terr("chainlock", e)),
            }
            let r = call_locked(t, q, kind, node, key, *callid);
            let _ = t.chainunlock(key);
            r
        }
        Op::Traverse { with_empty } => {
            let mut recs = Vec::new();
            let mut cb = |_: &mut tdb_engine::Tdb, k: &[u8], v: &[u8]| {
                if kind == Kind::Volatile {
                    // Only records with a value, and only those this node is
                    // the dmaster of (the authoritative copy).
                    match Header::decode(v) {
                        Some(h)
                            if h.dmaster == node.pnn
                                && (*with_empty || v.len() > ltdb::HEADER_LEN) => {}
                        _ => return false,
                    }
                }
                recs.push((k.to_vec(), v.to_vec()));
                false
            };
            match t.traverse_read(Some(&mut cb)) {
                Ok(_) => Reply::Records(recs),
                Err(e) => terr("traverse", e),
            }
        }
        Op::GetSeqnum => match ltdb::fetch(t, kind, node, ltdb::DB_SEQNUM_KEY, q) {
            Ok((_, data)) if data.len() == 8 => {
                Reply::Seqnum(u64::from_le_bytes(data[..].try_into().unwrap()))
            }
            Ok(_) => Reply::Seqnum(0),
            Err(e) => terr("fetch seqnum", e),
        },
        Op::PersistentStore { recs } => {
            if let Err(e) = t.transaction_start() {
                return Some(terr("transaction start", e));
            }
            for (key, header, data) in recs {
                let (old, olddata) = match ltdb::fetch(t, kind, node, key, q) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = t.transaction_cancel();
                        return Some(terr("fetch old record", e));
                    }
                };
                if old.rsn >= header.rsn && olddata != *data {
                    let _ = t.transaction_cancel();
                    return Some(Reply::Failed(format!(
                        "existing header for db_id 0x{id:08x} has larger RSN {} than new RSN {} in persistent store",
                        old.rsn, header.rsn
                    )));
                }
                let mut h = *header;
                match ltdb::store(t, kind, node, key, &mut h, data) {
                    Ok(a) => q.apply(key, &h, a),
                    Err(e) => {
                        let _ = t.transaction_cancel();
                        return Some(terr("store", e));
                    }
                }
            }
            match t.transaction_commit() {
                Ok(()) => Reply::Ok,
                Err(e) => terr("transaction commit", e),
            }
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
        Op::PushStore { recs } => {
            for (key, header, data) in recs {
                let mut h = *header;
                h.flags &= !ltdb::REC_RO_FLAGS;
                match ltdb::store(t, kind, node, key, &mut h, data) {
                    Ok(a) => q.apply(key, &h, a),
                    Err(e) => return Some(terr("push store", e)),
                }
            }
            Reply::Ok
        }
        Op::Barrier => Reply::Ok,
        Op::ScheduleForDeletion { key, header } => {
            if kind == Kind::Volatile {
                q.insert(key, header);
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
                return Some(Reply::Failed(format!(
                    "not vacuuming non-volatile database {name}"
                )));
            }
            let params = vacuum::RunParams {
                full: *full,
                repack_limit: *repack_limit,
                deadline: std::time::Instant::now() + *max_run,
            };
            match vacuum::run(t, q, node, name, params) {
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
        Op::Close | Op::OpenTracking { .. } => unreachable!(),
    })
}

/// A record call with the chain locked: this node is dmaster of the record
/// (it is the only node), so the call runs locally and the record is stored
/// back, which is what "immediate migration" amounts to here.
fn call_locked(
    t: &mut tdb_engine::Tdb,
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

fn open_tdb(
    path: &std::path::Path,
    hash_size: u32,
    tdb_flags: u32,
) -> Result<Box<tdb_engine::Tdb>, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "path contains NUL".to_string())?;
    let opts = tdb_engine::OpenOptions {
        hash_size: hash_size as i32,
        tdb_flags,
        open_flags: libc::O_CREAT | libc::O_RDWR,
        mode: 0o600,
        ..Default::default()
    };
    tdb_engine::Tdb::open(Some(&c), opts).map_err(|e| {
        format!(
            "Failed to open tdb '{}': {}",
            path.display(),
            std::io::Error::from_raw_os_error(e.errno)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn db_ids_match_samba() {
        // Values printed by Debian's ctdbd for the same names.
        assert_eq!(db_id("foo.tdb"), 0x88127240);
        assert_eq!(db_id("bar.tdb"), 0xc36f2793);
        assert_eq!(db_id("rep.tdb"), 0x64c8480e);
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ctdbd-db-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn op(tx: &Sender<Job>, rx: &Receiver<Done>, id: u32, op: Op) -> Reply {
        tx.send(Job::Op { id, tag: 9, op }).unwrap();
        match rx.recv().unwrap() {
            Done::Op { tag, reply } => {
                assert_eq!(tag, 9);
                reply
            }
            Done::Opened { .. } => panic!("unexpected open reply"),
        }
    }

    fn open(
        tx: &Sender<Job>,
        rx: &Receiver<Done>,
        id: u32,
        path: PathBuf,
        kind: Kind,
    ) -> Result<(), String> {
        let flags = if kind == Kind::Persistent {
            DB_FLAGS_PERSISTENT
        } else {
            0
        };
        tx.send(Job::Open {
            id,
            path,
            hash_size: 131,
            tdb_flags: tdb_flags(flags, false),
            max_dead: 5,
            kind,
        })
        .unwrap();
        match rx.recv().unwrap() {
            Done::Opened { id: got, result } => {
                assert_eq!(got, id);
                result
            }
            Done::Op { .. } => panic!("unexpected op reply"),
        }
    }

    #[test]
    fn helper_thread_opens_and_reports() {
        let dir = tmpdir("open");
        let (tx, rx, h) = spawn(0, Arc::new(|| {}));
        let path = dir.join("t.tdb.0");
        open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
        assert!(path.exists());
        assert!(open(&tx, &rx, 2, dir.join("no/such/dir.tdb"), Kind::Volatile).is_err());
        assert!(matches!(op(&tx, &rx, 2, Op::GetSeqnum), Reply::Failed(_)));
        tx.send(Job::Stop).unwrap();
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A record as a traverse with empty records reports it.
    fn record(
        tx: &Sender<Job>,
        rx: &Receiver<Done>,
        id: u32,
        key: &[u8],
    ) -> Option<(Header, Vec<u8>)> {
        let Reply::Records(recs) = op(tx, rx, id, Op::Traverse { with_empty: true }) else {
            panic!()
        };
        recs.into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| (Header::decode(&v).unwrap(), v[ltdb::HEADER_LEN..].to_vec()))
    }

    /// A python helper using Samba's libtdb through ctypes, standing in for a
    /// client process (a tdb can be open once per process, and fcntl locks
    /// are per process, so this must be another process). The script runs
    /// with `lib`, `t` (the tdb open on `path`) and `key()` defined. Debian's
    /// libtdb1 and python3 come from scripts/deps.sh; a machine without them
    /// fails the test rather than skipping it.
    fn libtdb_client(path: &std::path::Path, script: &str) -> std::process::Child {
        let lib = [
            "/usr/lib/x86_64-linux-gnu/libtdb.so.1",
            "/usr/lib/aarch64-linux-gnu/libtdb.so.1",
            "/usr/lib/libtdb.so.1",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Debian's libtdb.so.1 (package libtdb1, installed by scripts/deps.sh)");
        let prog = format!(
            "import ctypes,sys,time\nlib=ctypes.CDLL('{lib}')\nlib.tdb_open.restype=ctypes.c_void_p\nt=lib.tdb_open(sys.argv[1].encode(),0,0,2,0)\nassert t\n\
             class D(ctypes.Structure): _fields_=[('p',ctypes.c_char_p),('n',ctypes.c_size_t)]\n\
             def key(b): return D(b,len(b))\n{script}\n"
        );
        std::process::Command::new("python3")
            .arg("-c")
            .arg(prog)
            .arg(path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3")
    }

    #[test]
    fn record_calls_follow_samba_rsn_rules() {
        let dir = tmpdir("call");
        let (tx, rx, h) = spawn(0, Arc::new(|| {}));
        let path = dir.join("v.tdb.0");
        open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
        // Migrating a missing record creates it with rsn 2 (initial header
        // stored once by the fetch, once more after the call), dmaster 0.
        let r = op(
            &tx,
            &rx,
            1,
            Op::Call {
                key: b"k1".to_vec(),
                callid: CALL_NULL_FUNC,
            },
        );
        assert_eq!(
            r,
            Reply::Call {
                status: 0,
                data: vec![]
            }
        );
        let (hd, data) = record(&tx, &rx, 1, b"k1").unwrap();
        assert_eq!((hd.rsn, hd.dmaster, hd.flags), (2, 0, 0));
        assert!(data.is_empty());
        // Samba's client library writes the value under its own chain lock,
        // keeping the header (what `ctdb writekey` does).
        let script = format!(
            "h=bytes.fromhex('{}')\nassert lib.tdb_chainlock(ctypes.c_void_p(t),key(b'k1'))==0\n\
             assert lib.tdb_store(ctypes.c_void_p(t),key(b'k1'),key(h+b'hello'),1)==0\nlib.tdb_chainunlock(ctypes.c_void_p(t),key(b'k1'))",
            hd.encode().iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut child = libtdb_client(&path, &script);
        assert!(child.wait().unwrap().success());
        // FETCH returns the value; FETCH_WITH_HEADER the header before the
        // call's own store; each call bumps the rsn.
        let r = op(
            &tx,
            &rx,
            1,
            Op::Call {
                key: b"k1".to_vec(),
                callid: CALL_FETCH_FUNC,
            },
        );
        assert_eq!(
            r,
            Reply::Call {
                status: 0,
                data: b"hello".to_vec()
            }
        );
        let r = op(
            &tx,
            &rx,
            1,
            Op::Call {
                key: b"k1".to_vec(),
                callid: CALL_FETCH_WITH_HEADER_FUNC,
            },
        );
        let Reply::Call { status: 0, data } = r else {
            panic!("{r:?}")
        };
        assert_eq!(Header::decode(&data).unwrap().rsn, 3);
        assert_eq!(&data[ltdb::HEADER_LEN..], b"hello");
        assert_eq!(record(&tx, &rx, 1, b"k1").unwrap().0.rsn, 4);
        // An unknown function: status 0, nothing stored for an existing record.
        let r = op(
            &tx,
            &rx,
            1,
            Op::Call {
                key: b"k1".to_vec(),
                callid: 77,
            },
        );
        assert_eq!(
            r,
            Reply::Call {
                status: 0,
                data: vec![]
            }
        );
        assert_eq!(record(&tx, &rx, 1, b"k1").unwrap().0.rsn, 4);
        // The seqnum fetch leaves an empty record behind (rsn 1) and reads 0.
        assert_eq!(op(&tx, &rx, 1, Op::GetSeqnum), Reply::Seqnum(0));
        assert_eq!(record(&tx, &rx, 1, ltdb::DB_SEQNUM_KEY).unwrap().0.rsn, 1);
        // Traverse reports only records with a value, header included.
        let Reply::Records(recs) = op(&tx, &rx, 1, Op::Traverse { with_empty: false }) else {
            panic!()
        };
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].0, b"k1");
        assert_eq!(&recs[0].1[ltdb::HEADER_LEN..], b"hello");
        let Reply::Records(recs) = op(&tx, &rx, 1, Op::Traverse { with_empty: true }) else {
            panic!()
        };
        assert_eq!(recs.len(), 2);
        // Wipe inside a recovery transaction empties the database.
        assert_eq!(op(&tx, &rx, 1, Op::TransactionStart), Reply::Ok);
        assert_eq!(op(&tx, &rx, 1, Op::Wipe), Reply::Ok);
        assert_eq!(op(&tx, &rx, 1, Op::TransactionCommit), Reply::Ok);
        assert!(record(&tx, &rx, 1, b"k1").is_none());
        let Reply::Records(recs) = op(&tx, &rx, 1, Op::Traverse { with_empty: true }) else {
            panic!()
        };
        assert!(recs.is_empty());
        // A restore pushes records inside the recovery transaction: read-only
        // flags are cleared and, this node being dmaster, the rsn goes up.
        assert_eq!(op(&tx, &rx, 1, Op::TransactionStart), Reply::Ok);
        let hd = Header {
            rsn: 7,
            dmaster: 0,
            reserved1: 0,
            flags: ltdb::REC_RO_HAVE_READONLY | 0x10,
        };
        let recs = vec![
            (b"p1".to_vec(), hd, b"pv".to_vec()),
            (b"p2".to_vec(), Header { dmaster: 3, ..hd }, b"x".to_vec()),
        ];
        assert_eq!(op(&tx, &rx, 1, Op::PushStore { recs }), Reply::Ok);
        assert_eq!(op(&tx, &rx, 1, Op::Barrier), Reply::Ok);
        assert_eq!(op(&tx, &rx, 1, Op::TransactionCommit), Reply::Ok);
        let (h1, v1) = record(&tx, &rx, 1, b"p1").unwrap();
        assert_eq!((h1.rsn, h1.flags, v1.as_slice()), (8, 0x10, &b"pv"[..]));
        // Another node's copy is stored with its rsn unchanged, and (not
        // being this node's) a traverse leaves it out.
        assert!(record(&tx, &rx, 1, b"p2").is_none());
        assert_eq!(op(&tx, &rx, 1, Op::Close), Reply::Ok);
        assert!(matches!(op(&tx, &rx, 1, Op::GetSeqnum), Reply::Failed(_)));
        tx.send(Job::Stop).unwrap();
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn vacuum(tx: &Sender<Job>, rx: &Receiver<Done>, id: u32, full: bool) -> Reply {
        op(
            tx,
            rx,
            id,
            Op::Vacuum {
                name: "v.tdb".into(),
                full,
                repack_limit: 10_000,
                max_run: Duration::from_secs(120),
            },
        )
    }

    #[test]
    fn vacuum_deletes_queued_empty_records_and_skips_busy_chains() {
        let dir = tmpdir("vacuum");
        let (tx, rx, h) = spawn(0, Arc::new(|| {}));
        let path = dir.join("v.tdb.0");
        open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
        // Two keys on different hash chains (hash size 131 here).
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("key{i}").into_bytes()).collect();
        let busy = keys[0].clone();
        let chain = |k: &[u8]| tdb_engine::hash::jenkins_hash(k) % 131;
        let free = keys
            .iter()
            .find(|k| chain(k) != chain(&busy))
            .unwrap()
            .clone();
        // Record calls leave empty records that the daemon's own store queues.
        for k in [&busy, &free] {
            assert_eq!(
                op(
                    &tx,
                    &rx,
                    1,
                    Op::Call {
                        key: k.clone(),
                        callid: CALL_NULL_FUNC
                    }
                ),
                Reply::Call {
                    status: 0,
                    data: vec![]
                }
            );
        }
        // A record with a value, queued by a client with a stale header: the
        // value keeps it.
        assert_eq!(
            op(
                &tx,
                &rx,
                1,
                Op::PushStore {
                    recs: vec![(b"full".to_vec(), Header::default(), b"x".to_vec())]
                }
            ),
            Reply::Ok
        );
        let (fh, _) = record(&tx, &rx, 1, b"full").unwrap();
        assert_eq!(
            op(
                &tx,
                &rx,
                1,
                Op::ScheduleForDeletion {
                    key: b"full".to_vec(),
                    header: fh
                }
            ),
            Reply::Ok
        );
        // A client holds the chain lock of `busy` while the vacuum runs.
        let script = format!(
            "assert lib.tdb_chainlock(ctypes.c_void_p(t),key(bytes.fromhex('{}')))==0\nprint('x',flush=True)\ntime.sleep(0.5)",
            busy.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut child = libtdb_client(&path, &script);
        let mut b = [0u8; 1];
        child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
        let start = std::time::Instant::now();
        assert_eq!(vacuum(&tx, &rx, 1, false), Reply::Ok);
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "vacuum waited for a client's lock"
        );
        assert!(record(&tx, &rx, 1, &free).is_none());
        assert!(record(&tx, &rx, 1, &busy).is_some());
        assert_eq!(record(&tx, &rx, 1, b"full").unwrap().1, b"x");
        assert!(child.wait().unwrap().success());
        // The busy record left the queue (as in Samba, where the parent's
        // queue is cleared when the run starts): a fast run keeps it...
        assert_eq!(vacuum(&tx, &rx, 1, false), Reply::Ok);
        assert!(record(&tx, &rx, 1, &busy).is_some());
        // ...and the full scan finds it.
        assert_eq!(vacuum(&tx, &rx, 1, true), Reply::Ok);
        assert!(record(&tx, &rx, 1, &busy).is_none());
        assert_eq!(record(&tx, &rx, 1, b"full").unwrap().1, b"x");
        // Persistent databases are not vacuumed.
        let pp = dir.join("p.tdb.0");
        open(&tx, &rx, 2, pp, Kind::Persistent).unwrap();
        assert!(matches!(vacuum(&tx, &rx, 2, false), Reply::Failed(_)));
        tx.send(Job::Stop).unwrap();
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn busy_chain_is_retried_not_waited_on() {
        let dir = tmpdir("busy");
        let (tx, rx, h) = spawn(0, Arc::new(|| {}));
        let path = dir.join("v.tdb.0");
        open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
        let p2 = dir.join("w.tdb.0");
        open(&tx, &rx, 2, p2, Kind::Volatile).unwrap();
        // Another process holds the chain lock of "k" (fcntl locks are per
        // process, so a child holds it).
        let script = "assert lib.tdb_chainlock(ctypes.c_void_p(t),key(b'k'))==0\nprint('x',flush=True)\ntime.sleep(0.3)";
        let mut child = libtdb_client(&path, script);
        let mut b = [0u8; 1];
        child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
        let start = std::time::Instant::now();
        tx.send(Job::Op {
            id: 1,
            tag: 1,
            op: Op::Call {
                key: b"k".to_vec(),
                callid: CALL_NULL_FUNC,
            },
        })
        .unwrap();
        tx.send(Job::Op {
            id: 2,
            tag: 2,
            op: Op::GetSeqnum,
        })
        .unwrap();
        // The other database answers while the call waits for the lock.
        match rx.recv().unwrap() {
            Done::Op { tag, .. } => assert_eq!(tag, 2),
            _ => panic!(),
        }
        assert!(start.elapsed() < Duration::from_millis(250));
        match rx.recv().unwrap() {
            Done::Op { tag, reply } => {
                assert_eq!(tag, 1);
                assert_eq!(
                    reply,
                    Reply::Call {
                        status: 0,
                        data: vec![]
                    }
                );
            }
            _ => panic!(),
        }
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(child.wait().unwrap().success());
        tx.send(Job::Stop).unwrap();
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
