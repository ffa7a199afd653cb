//! Tests of the database workers, with Debian's libtdb in a python child
//! process standing in for a client (smbd, the ctdb tool).

use super::*;
use crate::ltdb;
use std::io::Read;
use std::time::Instant;

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

fn op(tx: &Workers, rx: &Receiver<Done>, id: u32, op: Op) -> Reply {
    tx.send(Job::Op { id, tag: 9, op }).unwrap();
    match rx.recv().unwrap() {
        Done::Op { tag, reply } => {
            assert_eq!(tag, 9);
            reply
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Starts an empty set of workers for node 0.
fn workers() -> (Workers, Receiver<Done>) {
    spawn(0, Arc::new(|| {}))
}

/// Every item of a traverse, in order, until its end.
fn traverse_all(tx: &Workers, id: u32, with_empty: bool) -> Result<Vec<traverse::Record>, String> {
    let (sink, stream) = traverse::stream_pair();
    tx.send(Job::Op {
        id,
        tag: 7,
        op: Op::Traverse { with_empty, sink },
    })
    .unwrap();
    let mut recs = Vec::new();
    loop {
        match stream.0.recv_timeout(Duration::from_secs(10)) {
            Ok(traverse::Item::Batch(b)) => recs.extend(b),
            Ok(traverse::Item::End(Ok(n))) => {
                assert_eq!(n as usize, recs.len());
                return Ok(recs);
            }
            Ok(traverse::Item::End(Err(e))) => return Err(e),
            Ok(traverse::Item::Buffer(..)) => panic!("a traverse sends batches"),
            Err(e) => panic!("traverse stream: {e}"),
        }
    }
}

fn open(
    tx: &Workers,
    rx: &Receiver<Done>,
    id: u32,
    path: PathBuf,
    kind: Kind,
) -> Result<(), String> {
    open_with(tx, rx, id, path, kind, false)
}

/// Opens a database, with robust mutexes for chain locks if `mutexes`.
fn open_with(
    tx: &Workers,
    rx: &Receiver<Done>,
    id: u32,
    path: PathBuf,
    kind: Kind,
    mutexes: bool,
) -> Result<(), String> {
    let flags = if kind == Kind::Persistent {
        DB_FLAGS_PERSISTENT
    } else {
        0
    };
    let tdb_flags = tdb_flags(flags, mutexes);
    assert!(
        !mutexes || tdb_flags & tdb_engine::flags::MUTEX_LOCKING != 0,
        "robust mutexes are needed for the daemon's default (tdb mutexes = true)"
    );
    tx.send(Job::Open {
        id,
        path,
        hash_size: 131,
        tdb_flags,
        max_dead: 5,
        kind,
    })
    .unwrap();
    match rx.recv().unwrap() {
        Done::Opened { id: got, result } => {
            assert_eq!(got, id);
            result
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn helper_thread_opens_and_reports() {
    let dir = tmpdir("open");
    let (tx, rx) = workers();
    let path = dir.join("t.tdb.0");
    open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
    assert!(path.exists());
    assert!(open(&tx, &rx, 2, dir.join("no/such/dir.tdb"), Kind::Volatile).is_err());
    assert!(matches!(op(&tx, &rx, 2, Op::GetSeqnum), Reply::Failed(_)));
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A record as a traverse with empty records reports it.
fn record(tx: &Workers, _rx: &Receiver<Done>, id: u32, key: &[u8]) -> Option<(Header, Vec<u8>)> {
    let recs = traverse_all(tx, id, true).unwrap();
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
    libtdb_client_flags(path, 0, script)
}

/// libtdb_client opening the file with these tdb flags.
fn libtdb_client_flags(path: &std::path::Path, flags: u32, script: &str) -> std::process::Child {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/libtdb.so.1",
        "/usr/lib/aarch64-linux-gnu/libtdb.so.1",
        "/usr/lib/libtdb.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Debian's libtdb.so.1 (package libtdb1, installed by scripts/deps.sh)");
    let prog = format!(
        "import ctypes,sys,time\nlib=ctypes.CDLL('{lib}')\nlib.tdb_open.restype=ctypes.c_void_p\nt=lib.tdb_open(sys.argv[1].encode(),0,{flags},2,0)\nassert t\n\
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
    let (tx, rx) = workers();
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
    let recs = traverse_all(&tx, 1, false).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].0, b"k1");
    assert_eq!(&recs[0].1[ltdb::HEADER_LEN..], b"hello");
    let recs = traverse_all(&tx, 1, true).unwrap();
    assert_eq!(recs.len(), 2);
    // Wipe inside a recovery transaction empties the database.
    assert_eq!(op(&tx, &rx, 1, Op::TransactionStart), Reply::Ok);
    assert_eq!(op(&tx, &rx, 1, Op::Wipe), Reply::Ok);
    assert_eq!(op(&tx, &rx, 1, Op::TransactionCommit), Reply::Ok);
    assert!(record(&tx, &rx, 1, b"k1").is_none());
    let recs = traverse_all(&tx, 1, true).unwrap();
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
    assert_eq!(
        op(
            &tx,
            &rx,
            1,
            Op::PushStore {
                recs,
                vnn_map: vec![]
            }
        ),
        Reply::Ok
    );
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
    std::fs::remove_dir_all(&dir).unwrap();
}

fn vacuum(tx: &Workers, rx: &Receiver<Done>, id: u32, full: bool) -> Reply {
    op(
        tx,
        rx,
        id,
        Op::Vacuum {
            name: "v.tdb".into(),
            full,
            repack_limit: 10_000,
            max_run: Duration::from_secs(120),
            vnn_map: Vec::new(),
            alone: true,
        },
    )
}

#[test]
fn vacuum_deletes_queued_empty_records_and_skips_busy_chains() {
    let dir = tmpdir("vacuum");
    let (tx, rx) = workers();
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
                recs: vec![(b"full".to_vec(), Header::default(), b"x".to_vec())],
                vnn_map: vec![]
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
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The next reply, with the time it came.
fn next_op(rx: &Receiver<Done>) -> (u64, Reply, Instant) {
    match rx.recv_timeout(Duration::from_secs(10)).expect("a reply") {
        Done::Op { tag, reply } => (tag, reply, Instant::now()),
        other => panic!("unexpected {other:?}"),
    }
}

fn call(key: &[u8]) -> Op {
    Op::Call {
        key: key.to_vec(),
        callid: CALL_NULL_FUNC,
    }
}

/// A key of the test databases (hash size 131) whose chain differs from
/// that of `other`.
fn key_on_other_chain(other: &[u8]) -> Vec<u8> {
    let chain = |k: &[u8]| tdb_engine::hash::jenkins_hash(k) % 131;
    (0..)
        .map(|i| format!("other{i}").into_bytes())
        .find(|k| chain(k) != chain(other))
        .unwrap()
}

/// A client holds the chain lock of "k" for 600 ms. The call on "k" waits
/// for it without polling (one chain wait, one wake-up) and completes soon
/// after the release; a call on another chain of the same database and an
/// operation on another database are not held up behind it.
fn busy_chain_is_waited_for_without_polling(mutexes: bool) {
    let tag = if mutexes { "chainmutex" } else { "chainfcntl" };
    let dir = tmpdir(tag);
    let (tx, rx) = workers();
    let path = dir.join("v.tdb.0");
    open_with(&tx, &rx, 1, path.clone(), Kind::Volatile, mutexes).unwrap();
    open(&tx, &rx, 2, dir.join("w.tdb.0"), Kind::Volatile).unwrap();
    let flags = tdb_flags(0, mutexes);
    let script = "assert lib.tdb_chainlock(ctypes.c_void_p(t),key(b'k'))==0\nprint('x',flush=True)\ntime.sleep(0.6)\nlib.tdb_chainunlock(ctypes.c_void_p(t),key(b'k'))\nprint('y',flush=True)\ntime.sleep(0.2)";
    let mut child = libtdb_client_flags(&path, flags, script);
    let mut b = [0u8; 2];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let start = Instant::now();
    tx.send(Job::Op {
        id: 1,
        tag: 1,
        op: call(b"k"),
    })
    .unwrap();
    let other = key_on_other_chain(b"k");
    tx.send(Job::Op {
        id: 1,
        tag: 2,
        op: call(&other),
    })
    .unwrap();
    tx.send(Job::Op {
        id: 2,
        tag: 3,
        op: Op::GetSeqnum,
    })
    .unwrap();
    let mut early = vec![next_op(&rx), next_op(&rx)];
    early.sort_by_key(|(t, _, _)| *t);
    assert_eq!(early[0].0, 2, "the other chain answered first");
    assert_eq!(early[1].0, 3, "the other database answered first");
    for (_, _, at) in &early {
        assert!(at.duration_since(start) < Duration::from_millis(450));
    }
    let (t1, reply, at) = next_op(&rx);
    assert_eq!(t1, 1);
    assert_eq!(
        reply,
        Reply::Call {
            status: 0,
            data: vec![]
        }
    );
    // The child unlocks and then says so: the reply cannot come before.
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut b[..1])
        .unwrap();
    assert_eq!(b[0], b'y');
    let waited = at.duration_since(start);
    assert!(
        waited >= Duration::from_millis(550),
        "did not wait: {waited:?}"
    );
    // Released at about 600 ms; the call came soon after.
    assert!(
        waited < Duration::from_millis(900),
        "slow after release: {waited:?}"
    );
    assert_eq!(tx.chain_waits(1), 1, "one wait, no retries");
    assert!(child.wait().unwrap().success());
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn busy_chain_is_waited_for_without_polling_fcntl() {
    busy_chain_is_waited_for_without_polling(false);
}

#[test]
fn busy_chain_is_waited_for_without_polling_mutex() {
    assert!(
        tdb_flags(0, true) & tdb_engine::flags::MUTEX_LOCKING != 0,
        "robust mutexes are needed for the daemon's default (tdb mutexes = true)"
    );
    busy_chain_is_waited_for_without_polling(true);
}

/// A client holds the allrecord lock of one database for 1 s: a wipe on
/// it waits, while record calls on another database go on completing. With
/// one thread for every database they would all wait behind the wipe.
#[test]
fn busy_database_does_not_delay_another() {
    let dir = tmpdir("busydb");
    let (tx, rx) = workers();
    let busy = dir.join("busy.tdb.0");
    open(&tx, &rx, 1, busy.clone(), Kind::Volatile).unwrap();
    open(&tx, &rx, 2, dir.join("free.tdb.0"), Kind::Volatile).unwrap();
    let script =
        "assert lib.tdb_lockall(ctypes.c_void_p(t))==0\nprint('x',flush=True)\ntime.sleep(1.0)";
    let mut child = libtdb_client(&busy, script);
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let start = Instant::now();
    tx.send(Job::Op {
        id: 1,
        tag: 100,
        op: Op::Wipe,
    })
    .unwrap();
    for i in 0..50u64 {
        let key = format!("key{i}").into_bytes();
        tx.send(Job::Op {
            id: 2,
            tag: i,
            op: call(&key),
        })
        .unwrap();
        let (tag, reply, at) = next_op(&rx);
        assert_eq!(tag, i, "the call on the free database came first");
        assert_eq!(
            reply,
            Reply::Call {
                status: 0,
                data: vec![]
            }
        );
        assert!(at.duration_since(start) < Duration::from_millis(800));
    }
    let (tag, reply, at) = next_op(&rx);
    assert_eq!((tag, reply), (100, Reply::Ok));
    assert!(at.duration_since(start) >= Duration::from_millis(900));
    assert!(child.wait().unwrap().success());
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A traverse streams in bounded batches: while nobody reads its stream,
/// the walk pauses with no more than STREAM_BATCHES batches queued (plus
/// the one it has ready) and the worker serves other operations; read, the
/// records come whole and in the order of a traverse by Debian's libtdb,
/// then the end with their number.
#[test]
fn traverse_streams_in_bounded_batches() {
    let dir = tmpdir("stream");
    let (tx, rx) = workers();
    open(&tx, &rx, 1, dir.join("big.tdb.0"), Kind::Persistent).unwrap();
    let n = 3000usize;
    let recs: Vec<_> = (0..n)
        .map(|i| {
            let h = Header {
                rsn: 1,
                ..Header::default()
            };
            (format!("rec{i}").into_bytes(), h, vec![b'v'; 100])
        })
        .collect();
    assert_eq!(
        op(
            &tx,
            &rx,
            1,
            Op::PersistentStore {
                recs,
                replace_only: false
            }
        ),
        Reply::Ok
    );
    let (sink, stream) = traverse::stream_pair();
    tx.send(Job::Op {
        id: 1,
        tag: 5,
        op: Op::Traverse {
            with_empty: false,
            sink,
        },
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(stream.0.len(), traverse::STREAM_BATCHES, "the walk waits");
    // While the walk waits for its reader, the database's other work goes on.
    tx.send(Job::Op {
        id: 1,
        tag: 8,
        op: Op::Barrier,
    })
    .unwrap();
    match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(Done::Op { tag: 8, reply }) => assert_eq!(reply, Reply::Ok),
        other => panic!("the worker is held up by the paused traverse: {other:?}"),
    }
    assert_eq!(stream.0.len(), traverse::STREAM_BATCHES);
    let mut got = Vec::new();
    let mut batches = 0;
    let count = loop {
        match stream.0.recv_timeout(Duration::from_secs(10)).unwrap() {
            traverse::Item::Batch(b) => {
                // A batch ends at a chain boundary (about 23 records a chain here).
                assert!(!b.is_empty() && b.len() < traverse::BATCH_RECORDS + 100);
                batches += 1;
                got.extend(b);
            }
            traverse::Item::End(r) => break r.unwrap(),
            traverse::Item::Buffer(..) => panic!("a traverse sends batches"),
        }
    };
    assert_eq!(count as usize, n);
    assert!(batches >= n / traverse::BATCH_RECORDS);
    let mut keys: Vec<Vec<u8>> = got.iter().map(|(k, _)| k.clone()).collect();
    assert!(got.iter().all(|(_, v)| v.len() == ltdb::HEADER_LEN + 100));
    keys.dedup();
    assert_eq!(keys.len(), n, "no record twice");
    // The order is that of a traverse by Debian's libtdb.
    let script = "TF=ctypes.CFUNCTYPE(ctypes.c_int,ctypes.c_void_p,D,D,ctypes.c_void_p)\n\
                  def cb(_t,k,v,_p):\n    print(ctypes.string_at(k.p,k.n).decode())\n    return 0\n\
                  assert lib.tdb_traverse_read(ctypes.c_void_p(t),TF(cb),None)==3000\nsys.stdout.flush()";
    let child = libtdb_client(&dir.join("big.tdb.0"), script);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let theirs: Vec<Vec<u8>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect();
    assert_eq!(keys, theirs);
    assert_eq!(op(&tx, &rx, 1, Op::Barrier), Reply::Ok);
    // A stream dropped half way stops the walk; the worker goes on serving.
    let (sink, stream) = traverse::stream_pair();
    tx.send(Job::Op {
        id: 1,
        tag: 6,
        op: Op::Traverse {
            with_empty: false,
            sink,
        },
    })
    .unwrap();
    let first = stream.0.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(first, traverse::Item::Batch(_)));
    drop(stream);
    assert_eq!(op(&tx, &rx, 1, Op::GetSeqnum), Reply::Seqnum(0));
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A panic in database work fails that operation and reports the database
/// unhealthy; its worker and the other databases go on.
#[test]
fn panic_marks_database_unhealthy() {
    let dir = tmpdir("panic");
    let (tx, rx) = workers();
    open(&tx, &rx, 1, dir.join("a.tdb.0"), Kind::Volatile).unwrap();
    open(&tx, &rx, 2, dir.join("b.tdb.0"), Kind::Volatile).unwrap();
    tx.send(Job::Op {
        id: 1,
        tag: 1,
        op: Op::Panic,
    })
    .unwrap();
    match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
        Done::Unhealthy { id, reason } => {
            assert_eq!(id, 1);
            assert!(reason.contains("test-only panic"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let (tag, reply, _) = next_op(&rx);
    assert_eq!(tag, 1);
    assert!(matches!(reply, Reply::Failed(why) if why.contains("panic")));
    assert_eq!(
        op(&tx, &rx, 2, call(b"k")),
        Reply::Call {
            status: 0,
            data: vec![]
        }
    );
    assert_eq!(
        op(&tx, &rx, 1, call(b"k")),
        Reply::Call {
            status: 0,
            data: vec![]
        }
    );
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A client holds the allrecord lock while calls on 100 different chains
/// come in (more than one database may have chain-wait threads at once):
/// each call waits once, none polls, and all complete after the release.
fn allrecord_lock_is_waited_for(mutexes: bool) {
    let tag = if mutexes { "allmutex" } else { "allfcntl" };
    let dir = tmpdir(tag);
    let (tx, rx) = workers();
    let path = dir.join("v.tdb.0");
    open_with(&tx, &rx, 1, path.clone(), Kind::Volatile, mutexes).unwrap();
    let script =
        "assert lib.tdb_lockall(ctypes.c_void_p(t))==0\nprint('x',flush=True)\ntime.sleep(0.4)";
    let mut child = libtdb_client_flags(&path, tdb_flags(0, mutexes), script);
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let start = Instant::now();
    let chain = |k: &[u8]| tdb_engine::hash::jenkins_hash(k) % 131;
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<Vec<u8>> = (0..)
        .map(|i| format!("key{i}").into_bytes())
        .filter(|k| seen.insert(chain(k)))
        .take(100)
        .collect();
    for (i, k) in keys.iter().enumerate() {
        tx.send(Job::Op {
            id: 1,
            tag: i as u64,
            op: call(k),
        })
        .unwrap();
    }
    let mut tags = Vec::new();
    for _ in 0..keys.len() {
        let (tag, reply, at) = next_op(&rx);
        assert_eq!(
            reply,
            Reply::Call {
                status: 0,
                data: vec![]
            }
        );
        assert!(at.duration_since(start) >= Duration::from_millis(300));
        tags.push(tag);
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    tags.sort();
    assert_eq!(tags, (0..keys.len() as u64).collect::<Vec<_>>());
    assert_eq!(tx.chain_waits(1), keys.len() as u64, "one wait per call");
    assert!(child.wait().unwrap().success());
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn allrecord_lock_is_waited_for_fcntl() {
    allrecord_lock_is_waited_for(false);
}

#[test]
fn allrecord_lock_is_waited_for_mutex() {
    allrecord_lock_is_waited_for(true);
}

/// Detach and attach again while the old worker is still busy: the new
/// worker opens the file only after the old one closed it (a tdb can be
/// open once per process).
#[test]
fn reattach_waits_for_the_previous_worker() {
    let dir = tmpdir("reattach");
    let (tx, rx) = workers();
    let path = dir.join("r.tdb.0");
    open(&tx, &rx, 1, path.clone(), Kind::Volatile).unwrap();
    let script =
        "assert lib.tdb_lockall(ctypes.c_void_p(t))==0\nprint('x',flush=True)\ntime.sleep(0.3)";
    let mut child = libtdb_client(&path, script);
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    tx.send(Job::Op {
        id: 1,
        tag: 1,
        op: Op::Wipe,
    })
    .unwrap();
    tx.send(Job::Op {
        id: 1,
        tag: 2,
        op: Op::Close,
    })
    .unwrap();
    tx.send(Job::Open {
        id: 1,
        path: path.clone(),
        hash_size: 131,
        tdb_flags: tdb_flags(0, false),
        max_dead: 5,
        kind: Kind::Volatile,
    })
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    }
    assert!(
        matches!(
            got[0],
            Done::Op {
                tag: 1,
                reply: Reply::Ok
            }
        ),
        "{got:?}"
    );
    assert!(
        matches!(
            got[1],
            Done::Op {
                tag: 2,
                reply: Reply::Ok
            }
        ),
        "{got:?}"
    );
    assert!(
        matches!(
            got[2],
            Done::Opened {
                id: 1,
                result: Ok(())
            }
        ),
        "{got:?}"
    );
    assert_eq!(
        op(&tx, &rx, 1, call(b"k")),
        Reply::Call {
            status: 0,
            data: vec![]
        }
    );
    assert!(child.wait().unwrap().success());
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A traverse that reaches a chain a client holds pauses there without
/// holding up the worker: calls on the database complete meanwhile, and
/// after the release the traverse reports every record, in order.
fn traverse_waits_for_busy_chain(mutexes: bool) {
    let tag = if mutexes { "travmutex" } else { "travfcntl" };
    let dir = tmpdir(tag);
    let (tx, rx) = workers();
    let path = dir.join("t.tdb.0");
    open_with(&tx, &rx, 1, path.clone(), Kind::Volatile, mutexes).unwrap();
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("rec{i}").into_bytes()).collect();
    let recs = keys
        .iter()
        .map(|k| (k.clone(), Header::default(), b"value".to_vec()))
        .collect();
    assert_eq!(
        op(
            &tx,
            &rx,
            1,
            Op::PushStore {
                recs,
                vnn_map: vec![]
            }
        ),
        Reply::Ok
    );
    let before = traverse_all(&tx, 1, false).unwrap();
    assert_eq!(before.len(), keys.len());
    let script = "assert lib.tdb_chainlock(ctypes.c_void_p(t),key(b'rec7'))==0\nprint('x',flush=True)\ntime.sleep(0.8)";
    let mut child = libtdb_client_flags(&path, tdb_flags(0, mutexes), script);
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let start = Instant::now();
    let (sink, stream) = traverse::stream_pair();
    tx.send(Job::Op {
        id: 1,
        tag: 50,
        op: Op::Traverse {
            with_empty: false,
            sink,
        },
    })
    .unwrap();
    let other = key_on_other_chain(b"rec7");
    for i in 0..5 {
        tx.send(Job::Op {
            id: 1,
            tag: i,
            op: call(&other),
        })
        .unwrap();
        let (t, reply, at) = next_op(&rx);
        assert_eq!(t, i);
        assert!(matches!(reply, Reply::Call { status: 0, .. }));
        assert!(at.duration_since(start) < Duration::from_millis(600));
    }
    let mut got = Vec::new();
    let end = loop {
        match stream.0.recv_timeout(Duration::from_secs(10)).unwrap() {
            traverse::Item::Batch(b) => got.extend(b),
            traverse::Item::End(r) => break r.unwrap(),
            traverse::Item::Buffer(..) => panic!("a traverse sends batches"),
        }
    };
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "did not wait"
    );
    assert!(tx.chain_waits(1) >= 1);
    // The calls' record (created on another chain) may or may not be seen;
    // the stored records all are, in the order of the first traverse.
    let seen: Vec<&Vec<u8>> = got
        .iter()
        .map(|(k, _)| k)
        .filter(|k| keys.contains(k))
        .collect();
    let expected: Vec<&Vec<u8>> = before.iter().map(|(k, _)| k).collect();
    assert_eq!(seen, expected);
    assert_eq!(end as usize, got.len());
    assert!(child.wait().unwrap().success());
    tx.send(Job::Stop).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn traverse_waits_for_busy_chain_fcntl() {
    traverse_waits_for_busy_chain(false);
}

#[test]
fn traverse_waits_for_busy_chain_mutex() {
    traverse_waits_for_busy_chain(true);
}
