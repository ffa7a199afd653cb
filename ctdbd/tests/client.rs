//! The client core (`ctdb-client`, under libctdb's C API) against a real
//! one-node ctdbd of ours on 127.0.19.1: getters, attach, record locks with
//! writes that survive a relock, traverse, messages between two
//! connections, the leader broadcast, and a daemon killed mid-request.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctdb_client::{ClientError, Connection, Event, Getter, LockAttempt, LockId, RequestId};
use ctdb_protocol::{Pnn, Srvid};

const ADDRESS: &str = "127.0.19.1";

struct Daemon {
    base: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let _ = std::fs::remove_dir_all(dir);
        for sub in [
            "db/volatile",
            "db/persistent",
            "db/state",
            "events/legacy",
            "run",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("nodes"), format!("{ADDRESS}\n")).unwrap();
        let conf = format!(
            "[logging]\n\tlocation = file:{b}/log.ctdb\n\tlog level = NOTICE\n[cluster]\n\tnode address = {ADDRESS}\n\tcluster lock = {b}/cluster.lock\n\tleader timeout = 2\n[database]\n\tvolatile database directory = {b}/db/volatile\n\tpersistent database directory = {b}/db/persistent\n\tstate database directory = {b}/db/state\n[failover]\n\tdisabled = true\n",
            b = dir.display()
        );
        std::fs::write(dir.join("ctdb.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ctdbd"))
            .arg("--interactive")
            .env("CTDB_TEST_MODE", "yes")
            .env("CTDB_BASE", dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ctdbd");
        Daemon {
            base: dir.to_path_buf(),
            child: Some(child),
        }
    }

    fn socket(&self) -> PathBuf {
        self.base.join("run/ctdbd.socket")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Waits for request `id` and fails the test on a broken connection.
fn wait(c: &mut Connection, id: RequestId) {
    c.wait(id, |_, _| {});
    assert!(c.is_done(id), "request {id:?} did not end");
}

/// Connects once the socket is there and the node is out of recovery.
fn connect_ready(d: &Daemon) -> Connection {
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok(mut c) = Connection::connect(&d.socket()) {
            let id = c.get(Pnn::CURRENT_NODE, Getter::Recmode);
            wait(&mut c, id);
            if c.recmode_of(id) == Ok(0) {
                return c;
            }
        }
        assert!(Instant::now() < end, "ctdbd did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lock_now(c: &mut Connection, db: ctdb_client::DbHandle, key: &[u8]) -> LockId {
    match c.lock_record(db, key, false).unwrap() {
        LockAttempt::Held(lock) => lock,
        LockAttempt::Pending(id) => {
            wait(c, id);
            c.locked(id).unwrap()
        }
    }
}

fn machine_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("ctdb-client-127.0.19.1.lock"))
        .unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

fn check_getters(c: &mut Connection) {
    let ids: Vec<(Getter, RequestId)> = [
        Getter::Pnn,
        Getter::Recmode,
        Getter::Capabilities,
        Getter::NodeMap,
        Getter::VnnMap,
        Getter::Ifaces,
        Getter::PublicIps,
    ]
    .into_iter()
    .map(|g| (g, c.get(Pnn::CURRENT_NODE, g)))
    .collect();
    assert_eq!(
        c.num_out_queue(),
        ids.len(),
        "all queued before any service"
    );
    for (_, id) in &ids {
        wait(c, *id);
    }
    assert_eq!(c.pnn_of(ids[0].1), Ok(Pnn(0)));
    assert_eq!(c.pnn(), Some(Pnn(0)));
    assert_eq!(c.recmode_of(ids[1].1), Ok(0));
    assert!(
        c.capabilities_of(ids[2].1).unwrap() & 0x2 != 0,
        "LMASTER capability"
    );
    let map = c.nodemap_of(ids[3].1).unwrap();
    assert_eq!(map.0.len(), 1);
    assert_eq!(map.0[0].addr.ip().unwrap().to_string(), ADDRESS);
    assert_eq!(c.vnnmap_of(ids[4].1).unwrap().map, vec![Pnn(0)]);
    for (_, id) in ids {
        c.free(id);
    }
    let leader = c.leader();
    wait(c, leader);
    assert_eq!(c.leader_of(leader), Ok(Pnn(0)));
}

fn check_records(c: &mut Connection) {
    let attach = c.attach("client_test.tdb", false);
    wait(c, attach);
    let db = c.attached(attach).unwrap();
    let lock = lock_now(c, db, b"key-1");
    assert!(
        c.record(lock).unwrap().data.is_empty(),
        "a new record is empty"
    );
    assert_eq!(c.record(lock).unwrap().header.dmaster, Pnn(0));
    assert_eq!(
        c.lock_record(db, b"key-2", false),
        Err(ClientError::LockHeld)
    );
    c.write_record(lock, b"value one").unwrap();
    c.release(lock).unwrap();
    assert_eq!(c.release(lock), Err(ClientError::NotHeld));
    let again = lock_now(c, db, b"key-1");
    assert_eq!(c.record(again).unwrap().data, b"value one");
    c.release(again).unwrap();

    let trav = c.traverse(db).unwrap();
    let mut seen = Vec::new();
    c.wait(trav, |_, e| {
        if let Event::TraverseRecord { key, data, .. } = e {
            seen.push((key, data));
        }
    });
    c.result(trav).unwrap();
    assert_eq!(seen, vec![(b"key-1".to_vec(), b"value one".to_vec())]);

    let db_id = c.database(db).unwrap().id;
    let stats = c.get(Pnn::CURRENT_NODE, Getter::DbStatistics(db_id));
    wait(c, stats);
    c.db_statistics_of(stats).unwrap();
    let persistent = c.attach("client_test_p.tdb", true);
    wait(c, persistent);
    let pdb = c.attached(persistent).unwrap();
    let pid = c.database(pdb).unwrap().id;
    let seq = c.get(Pnn::CURRENT_NODE, Getter::DbSeqnum(pid));
    wait(c, seq);
    assert_eq!(c.db_seqnum_of(seq), Ok(0));
    c.detach(pdb);
    c.detach(db);
}

fn check_messages(a: &mut Connection, b: &mut Connection) {
    let srvid = Srvid(0xCE00_0000_0000_0042);
    let reg = b.register_srvid(srvid);
    wait(b, reg);
    b.reply_status(reg).unwrap();
    a.send_message(Pnn(0), srvid, b"hello").unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = None;
    while got.is_none() && Instant::now() < end {
        let (r, w) = a.poll_once(10);
        a.service(r, w);
        let (r, w) = b.poll_once(100);
        for e in b.service(r, w) {
            if let Event::Message { srvid: s, data } = e {
                got = Some((s, data));
            }
        }
    }
    assert_eq!(got, Some((srvid, b"hello".to_vec())));
    let dereg = b.deregister_srvid(srvid);
    wait(b, dereg);
    b.reply_status(dereg).unwrap();
}

#[test]
fn client_core_against_our_daemon() {
    let _serial = machine_lock();
    let dir = std::env::temp_dir().join(format!("ctdb-client-{}", std::process::id()));
    let mut d = Daemon::start(&dir);
    let mut c = connect_ready(&d);
    check_getters(&mut c);
    check_records(&mut c);
    let mut other = connect_ready(&d);
    check_messages(&mut c, &mut other);

    // A request in flight when the daemon dies ends with Disconnected.
    let pending = c.get(Pnn::CURRENT_NODE, Getter::NodeMap);
    let (r, w) = c.poll_once(100);
    c.service(r, w);
    d.kill();
    let started = Instant::now();
    c.wait(pending, |_, _| {});
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.is_broken());
    let done = c.result(pending).err();
    assert!(
        done == Some(ClientError::Disconnected) || c.nodemap_of(pending).is_ok(),
        "{done:?}"
    );
    assert_eq!(
        c.lock_record(ctdb_client::DbHandle(0), b"k", false).err(),
        Some(ClientError::Disconnected)
    );
}
