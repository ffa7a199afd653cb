//! A real 3-node cluster of our ctdbd on 127.0.12.1-3 (port 4379) with a
//! shared cluster lock file, driven with Debian's `ctdb` tool: the nodes
//! elect one leader that holds the lock, recover to one generation, agree
//! on `ctdb leader`, `getreclock` and `status`; after the leader's SIGKILL
//! another node takes the lock and recovers the survivors; the killed node
//! rejoins after a restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODES: usize = 3;

struct Node {
    base: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::File::create(self.base.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ctdbd"))
            .arg("--interactive")
            .env("CTDB_TEST_MODE", "yes")
            .env("CTDB_BASE", &self.base)
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ctdbd");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn ctdb(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .arg("10")
            .arg("ctdb")
            .args(args)
            .env("CTDB_TEST_MODE", "yes")
            .env("CTDB_BASE", &self.base)
            .output()
            .expect("Debian's ctdb tool (scripts/deps.sh)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

struct Cluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn layout(dir: &Path) -> Cluster {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let nodes_file: String = (1..=NODES).map(|i| format!("127.0.12.{i}\n")).collect();
    let lock = dir.join("cluster.lock");
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let base = dir.join(format!("n{i}"));
        for sub in [
            "db/volatile",
            "db/persistent",
            "db/state",
            "events/legacy",
            "run",
        ] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        std::fs::write(base.join("nodes"), &nodes_file).unwrap();
        let conf = format!(
            "[logging]\n\tlocation = file:{b}/log.ctdb\n\tlog level = NOTICE\n[cluster]\n\tnode address = 127.0.12.{a}\n\tcluster lock = {l}\n[database]\n\tvolatile database directory = {b}/db/volatile\n\tpersistent database directory = {b}/db/persistent\n\tstate database directory = {b}/db/state\n[failover]\n\tdisabled = true\n",
            b = base.display(),
            a = i + 1,
            l = lock.display()
        );
        std::fs::write(base.join("ctdb.conf"), conf).unwrap();
        nodes.push(Node { base, child: None });
    }
    Cluster {
        dir: dir.to_path_buf(),
        nodes,
    }
}

/// One node's view from `ctdb status`: (OK nodes, generation, recovery
/// mode line, leader line).
fn view(n: &Node) -> (usize, String, String, String) {
    let s = n.ctdb(&["status"]);
    let field = |p: &str| {
        s.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or("")
            .to_string()
    };
    let ok = s
        .lines()
        .filter(|l| l.starts_with("pnn:") && l.contains(" OK"))
        .count();
    (
        ok,
        field("Generation:"),
        field("Recovery mode:"),
        field("Leader:"),
    )
}

/// Waits until the nodes `alive` all show `ok` nodes OK, normal mode and
/// one generation and leader; returns the leader's pnn.
fn settle(c: &Cluster, alive: &[usize], ok: usize, what: &str) -> usize {
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let views: Vec<_> = alive.iter().map(|i| view(&c.nodes[*i])).collect();
        let agreed = views.iter().all(|v| {
            v.0 == ok && v.2 == "Recovery mode:NORMAL (0)" && v.1 == views[0].1 && v.3 == views[0].3
        }) && !views[0].3.is_empty();
        if agreed {
            let leader: usize = views[0].3.trim_start_matches("Leader:").parse().unwrap();
            return leader;
        }
        if Instant::now() > end {
            let logs: Vec<String> = alive
                .iter()
                .map(|i| {
                    std::fs::read_to_string(c.nodes[*i].base.join("stderr.log")).unwrap_or_default()
                })
                .collect();
            panic!(
                "{what}: the nodes did not settle: {views:?}\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Serialises runs of this test on one machine (several checkouts may run
/// it at once; the addresses are fixed).
fn machine_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("ctdbd-recoverd-cluster-127.0.12.lock"))
        .unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

#[test]
fn three_nodes_elect_recover_and_fail_over() {
    let _serial = machine_lock();
    let dir = std::env::temp_dir().join(format!("recoverd-cluster-{}", std::process::id()));
    let mut c = layout(&dir);
    let started = Instant::now();
    for n in &mut c.nodes {
        n.start();
    }
    let all: Vec<usize> = (0..NODES).collect();
    let leader = settle(&c, &all, NODES, "start");
    eprintln!("3 nodes OK after {:?}", started.elapsed());
    let lock = c.dir.join("cluster.lock");
    for n in &c.nodes {
        assert_eq!(n.ctdb(&["leader"]).trim(), leader.to_string());
        assert_eq!(n.ctdb(&["getreclock"]).trim(), lock.display().to_string());
    }
    // `ctdb sync` waits for the leader's takeover run.
    assert!(c.nodes[(leader + 1) % NODES].ctdb(&["sync"]).is_empty());

    c.nodes[leader].kill();
    let rest: Vec<usize> = all.iter().copied().filter(|i| *i != leader).collect();
    let new_leader = settle(&c, &rest, NODES - 1, "after the leader's SIGKILL");
    assert_ne!(new_leader, leader);
    let log = std::fs::read_to_string(c.nodes[new_leader].base.join("stderr.log")).unwrap();
    assert!(log.contains("Took cluster lock"), "{log}");

    c.nodes[leader].start();
    let last = settle(&c, &all, NODES, "after the restart");
    assert_eq!(last, new_leader, "the lock holder stays leader");
}
