//! A deterministic simulation of 3 to 5 nodes, each a [`Recoverd`] over a
//! model of its main daemon's server side, connected by a simulated network
//! with seeded message loss, delays, partitions, crashes and lost cluster
//! locks. Invariants are checked after every step; at the end the network
//! heals, every node restarts and the cluster must settle.
//!
//! `SIM_SEEDS=n` runs n seeds per scenario, `SIM_SEED=s` one seed,
//! `SIM_VERBOSE=1` prints every seed's outcome (see `make sim`).

use super::{Action, ControlAnswer, Event, LockOutcome, Recoverd, Settings, Tag, Time};
use ctdb_protocol::ltdb::{LtdbHeader, RecBuffer, RecData, DB_SEQNUM_KEY};
use ctdb_protocol::messages::SrvidMessage;
use ctdb_protocol::types::{
    DbIdEntry, DbMap, NodeAndFlags, NodeMap, VnnMap, CAP_LMASTER, CAP_RECMASTER,
    DB_FLAGS_PERSISTENT, NODE_FLAGS_BANNED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_STOPPED,
    RECOVERY_ACTIVE, RECOVERY_NORMAL,
};
use ctdb_protocol::wire::{SockAddr, Timeval};
use ctdb_protocol::{ControlReply, ControlRequest, DbId, Generation, Layout, Pnn, Srvid};
use std::collections::{BTreeMap, BTreeSet};

const VOLATILE: DbId = DbId(0x1000_0001);
const PERSISTENT: DbId = DbId(0x2000_0002);
const KEYS: u32 = 6;

/// A small deterministic random source (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What a scenario turns on.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    nodes: usize,
    lock: bool,
    partitions: bool,
    loss_per_mille: u64,
    chaos_ms: u64,
    settle_ms: u64,
    /// The last node fails every DB_PULL while the chaos lasts (it must be
    /// banned, and the others recover without it).
    faulty_pull: bool,
}

/// Records by key.
type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// The model of one database on one node.
#[derive(Clone, Debug, Default)]
struct DbModel {
    name: String,
    flags: u8,
    records: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The model of one node's main daemon (the server side of the controls).
#[derive(Debug)]
struct Server {
    recmode: u32,
    vnnmap: VnnMap,
    dbs: BTreeMap<DbId, DbModel>,
    frozen: BTreeSet<DbId>,
    txn: BTreeMap<DbId, (u32, Records)>,
    push: BTreeMap<Srvid, (DbId, u32)>,
    registered: BTreeSet<Srvid>,
    /// This node's own flags (STOPPED by `ctdb stop`).
    own_flags: u32,
    /// Other nodes' flags as the leader pushed them (MODIFY_FLAGS).
    peer_flags: BTreeMap<Pnn, u32>,
    /// Bumped by every SET_BAN_STATE, so that an older ban's end is ignored.
    ban_epoch: u32,
}

impl Server {
    /// A node's daemon as it starts: the volatile database attached when
    /// `volatile` (a restarted node has it again only through a recovery),
    /// the persistent one when its file is there.
    fn new(pnn: Pnn, persistent: Option<DbModel>, volatile: bool) -> Server {
        let mut dbs = BTreeMap::new();
        if volatile {
            dbs.insert(
                VOLATILE,
                DbModel {
                    name: "volatile.tdb".into(),
                    ..Default::default()
                },
            );
        }
        if let Some(p) = persistent {
            dbs.insert(PERSISTENT, p);
        }
        Server {
            recmode: RECOVERY_ACTIVE,
            vnnmap: VnnMap {
                generation: Generation::INVALID,
                map: vec![pnn],
            },
            dbs,
            frozen: BTreeSet::new(),
            txn: BTreeMap::new(),
            push: BTreeMap::new(),
            registered: BTreeSet::new(),
            own_flags: 0,
            peer_flags: BTreeMap::new(),
            ban_epoch: 0,
        }
    }

    fn seqnum(&self) -> u64 {
        self.dbs
            .get(&PERSISTENT)
            .and_then(|d| d.records.get(DB_SEQNUM_KEY))
            .and_then(|v| v.get(24..32))
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
    }

    fn usable(&self, db: DbId) -> bool {
        self.recmode == RECOVERY_NORMAL && !self.frozen.contains(&db) && self.dbs.contains_key(&db)
    }
}

struct Node {
    alive: bool,
    inc: u32,
    rd: Recoverd,
    server: Server,
}

#[derive(Debug)]
enum Item {
    Rd {
        node: usize,
        inc: u32,
        ev: Event,
    },
    Ctl {
        from: usize,
        from_inc: u32,
        to: usize,
        to_inc: u32,
        tag: Tag,
        req: ControlRequest,
        flags: u32,
    },
    Msg {
        from: usize,
        to: usize,
        to_inc: u32,
        srvid: Srvid,
        data: Vec<u8>,
    },
    /// The lock helper's answer to attempt `attempt` of a node (stale
    /// attempts are dropped, as the driver drops a stopped helper's answer).
    LockAnswer {
        node: usize,
        inc: u32,
        attempt: u32,
        outcome: LockOutcome,
    },
    Chaos,
    /// A node's ban (of epoch `epoch`) is over.
    Unban {
        node: usize,
        inc: u32,
        epoch: u32,
    },
}

/// The last acknowledged persistent commit of a key.
#[derive(Debug)]
struct Acked {
    seqnum: u64,
    record: Vec<u8>,
    /// A recovery ran without any node that had the commit among the
    /// nodes with the highest sequence number (CTDB has no quorum: a
    /// cluster formed by other nodes, e.g. while every holder was down or
    /// cut off, goes on without it and its history wins or loses by
    /// sequence number when they meet again). Samba loses such a commit
    /// by design; it is no longer checked.
    orphaned: bool,
}

/// One simulated cluster.
pub struct Sim {
    sc: Scenario,
    rng: Rng,
    now: Time,
    seq: u64,
    queue: BTreeMap<(Time, u64), Item>,
    nodes: Vec<Node>,
    group: Vec<u8>,
    link_clock: BTreeMap<(usize, usize), Time>,
    lock_holder: Option<usize>,
    /// Per node: the current lock attempt, and whether its Held answer
    /// reached the node (only then can the lock be lost).
    lock_attempt: Vec<(u32, bool)>,
    chaos: bool,
    volatile_best: BTreeMap<Vec<u8>, u64>,
    acked: BTreeMap<Vec<u8>, Acked>,
    generations: BTreeSet<Generation>,
    counts: BTreeMap<&'static str, u64>,
    trace: bool,
}

fn settings(pnn: usize, lock: bool, now: Time, seed: u64) -> Settings {
    Settings {
        pnn: Pnn(pnn as u32),
        cluster_lock: lock,
        capabilities: CAP_RECMASTER | CAP_LMASTER,
        start_wall: Timeval {
            sec: 1_700_000_000 + (now.0 / 1000) as i64,
            usec: (now.0 % 1000) as i64 * 1000,
        },
        recover_interval_ms: 1000,
        election_timeout_ms: 3000,
        leader_timeout_ms: 5000,
        leader_broadcast_ms: 1000,
        recover_timeout_ms: 3000,
        rerecovery_timeout_ms: 5000,
        buffer_limit: 120,
        buffers_per_step: 2,
        ban_period_s: 30,
        grace_period_ms: 120_000,
        seed,
        failover_disabled: false,
    }
}

fn header(rsn: u64, dmaster: usize) -> LtdbHeader {
    LtdbHeader {
        rsn,
        dmaster: Pnn(dmaster as u32),
        ..Default::default()
    }
}

fn record(h: &LtdbHeader, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    h.encode(&mut v);
    v.extend_from_slice(value);
    v
}

fn ok(reply: ControlReply) -> ControlAnswer {
    ControlAnswer {
        status: 0,
        data: reply.to_bytes(),
        errmsg: None,
    }
}

fn fail(msg: &str) -> ControlAnswer {
    ControlAnswer {
        status: -1,
        data: Vec::new(),
        errmsg: Some(msg.into()),
    }
}

impl Sim {
    /// A cluster of fresh nodes for `seed`.
    pub fn new(sc: Scenario, seed: u64) -> Sim {
        let mut sim = Sim {
            sc,
            rng: Rng(seed),
            now: Time(0),
            seq: 0,
            queue: BTreeMap::new(),
            nodes: Vec::new(),
            group: vec![0; sc.nodes],
            link_clock: BTreeMap::new(),
            lock_holder: None,
            lock_attempt: vec![(0, false); sc.nodes],
            chaos: true,
            volatile_best: BTreeMap::new(),
            acked: BTreeMap::new(),
            generations: BTreeSet::new(),
            counts: BTreeMap::new(),
            trace: std::env::var("SIM_TRACE").is_ok(),
        };
        for i in 0..sc.nodes {
            let persistent = DbModel {
                name: "persistent.tdb".into(),
                flags: DB_FLAGS_PERSISTENT,
                records: BTreeMap::new(),
            };
            let s = settings(i, sc.lock, Time(0), seed.wrapping_add(i as u64));
            sim.nodes.push(Node {
                alive: true,
                inc: 0,
                rd: Recoverd::new(s),
                server: Server::new(Pnn(i as u32), Some(persistent), true),
            });
            let at = Time(sim.rng.below(500));
            sim.schedule(
                at,
                Item::Rd {
                    node: i,
                    inc: 0,
                    ev: Event::Start,
                },
            );
        }
        sim.schedule(Time(100), Item::Chaos);
        sim
    }

    fn schedule(&mut self, at: Time, item: Item) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), item);
    }

    fn count(&mut self, what: &'static str) {
        if self.trace {
            println!("{:>7} sim: {what}", self.now.0);
        }
        *self.counts.entry(what).or_default() += 1;
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        a == b || (self.nodes[b].alive && self.nodes[a].alive && self.group[a] == self.group[b])
    }

    /// Queues `item` on the link a→b: in order, delayed, maybe lost.
    fn send_link(&mut self, a: usize, b: usize, item: Item) {
        if a == b {
            let at = self.now.after_ms(self.rng.below(2));
            let at = at.max(*self.link_clock.get(&(a, b)).unwrap_or(&Time(0)));
            self.link_clock.insert((a, b), at);
            self.schedule(at, item);
            return;
        }
        if !self.connected(a, b) {
            return;
        }
        if self.chaos && self.rng.chance(self.sc.loss_per_mille) {
            self.count("lost packets");
            return;
        }
        let at = self.now.after_ms(1 + self.rng.below(20));
        let at = at.max(*self.link_clock.get(&(a, b)).unwrap_or(&Time(0)));
        self.link_clock.insert((a, b), at);
        self.schedule(at, item);
    }

    fn nodemap(&self, i: usize) -> NodeMap {
        NodeMap(
            (0..self.nodes.len())
                .map(|j| {
                    let s = &self.nodes[i].server;
                    let known = if i == j {
                        s.own_flags
                    } else {
                        s.peer_flags.get(&Pnn(j as u32)).copied().unwrap_or(0)
                    };
                    let link = if self.connected(i, j) {
                        0
                    } else {
                        NODE_FLAGS_DISCONNECTED
                    };
                    NodeAndFlags {
                        pnn: Pnn(j as u32),
                        flags: known | link,
                        addr: SockAddr::Other([0; 28]),
                    }
                })
                .collect(),
        )
    }

    fn run_actions(&mut self, i: usize, actions: Vec<Action>) {
        let inc = self.nodes[i].inc;
        for a in actions {
            match a {
                Action::Control {
                    tag,
                    to,
                    request,
                    flags,
                    ..
                } => {
                    let to = to.0 as usize;
                    if to >= self.nodes.len() || !self.connected(i, to) {
                        let ev = Event::Reply {
                            tag,
                            answer: fail("node is disconnected"),
                        };
                        self.schedule(self.now, Item::Rd { node: i, inc, ev });
                        continue;
                    }
                    let to_inc = self.nodes[to].inc;
                    let item = Item::Ctl {
                        from: i,
                        from_inc: inc,
                        to,
                        to_inc,
                        tag,
                        req: request,
                        flags,
                    };
                    self.send_link(i, to, item);
                }
                Action::Message { to, srvid, data } => {
                    let targets: Vec<usize> = if to.is_broadcast() {
                        (0..self.nodes.len())
                            .filter(|j| self.connected(i, *j))
                            .collect()
                    } else {
                        vec![to.0 as usize]
                    };
                    let n = self.nodes.len();
                    for t in targets.into_iter().filter(|t| *t < n) {
                        let to_inc = self.nodes[t].inc;
                        let item = Item::Msg {
                            from: i,
                            to: t,
                            to_inc,
                            srvid,
                            data: data.clone(),
                        };
                        self.send_link(i, t, item);
                    }
                }
                Action::Register(s) => {
                    self.nodes[i].server.registered.insert(s);
                }
                Action::Deregister(s) => {
                    self.nodes[i].server.registered.remove(&s);
                }
                Action::Timer { at, timer } => self.schedule(
                    at,
                    Item::Rd {
                        node: i,
                        inc,
                        ev: Event::Timer(timer),
                    },
                ),
                Action::TakeLock => {
                    let outcome = match self.lock_holder {
                        None => {
                            self.lock_holder = Some(i);
                            LockOutcome::Held
                        }
                        Some(h) if h == i => LockOutcome::Held,
                        Some(_) => LockOutcome::Contended,
                    };
                    let attempt = self.lock_attempt[i].0 + 1;
                    self.lock_attempt[i] = (attempt, false);
                    let at = self.now.after_ms(1 + self.rng.below(10));
                    let item = Item::LockAnswer {
                        node: i,
                        inc,
                        attempt,
                        outcome,
                    };
                    self.schedule(at, item);
                }
                Action::ReleaseLock => {
                    self.lock_attempt[i] = (self.lock_attempt[i].0 + 1, false);
                    if self.lock_holder == Some(i) {
                        self.lock_holder = None;
                    }
                }
                Action::Continue => self.schedule(
                    self.now,
                    Item::Rd {
                        node: i,
                        inc,
                        ev: Event::Continue,
                    },
                ),
                Action::Log(level, text) => {
                    if self.trace {
                        println!("{:>7} n{i}/{inc} {level:?}: {text}", self.now.0);
                    }
                }
            }
        }
    }

    fn deliver_rd(&mut self, i: usize, ev: Event) {
        let actions = self.nodes[i].rd.handle(self.now, ev);
        self.run_actions(i, actions);
    }

    fn step(&mut self) -> Option<Result<(), String>> {
        let ((at, _), item) = self.queue.pop_first()?;
        self.now = at;
        let crash = match item {
            Item::Rd { node, inc, ev } => {
                if self.nodes[node].alive && self.nodes[node].inc == inc {
                    self.deliver_rd(node, ev);
                }
                false
            }
            Item::Ctl {
                from,
                from_inc,
                to,
                to_inc,
                tag,
                req,
                flags,
            } => {
                if self.nodes[to].alive && self.nodes[to].inc == to_inc && self.connected(from, to)
                {
                    let answer = self.serve(to, from, &req, flags);
                    let ev = Event::Reply { tag, answer };
                    self.send_link(
                        to,
                        from,
                        Item::Rd {
                            node: from,
                            inc: from_inc,
                            ev,
                        },
                    );
                }
                false
            }
            Item::Msg {
                from,
                to,
                to_inc,
                srvid,
                data,
            } => {
                if self.nodes[to].alive && self.nodes[to].inc == to_inc && self.connected(from, to)
                {
                    self.message(to, srvid, data);
                }
                false
            }
            Item::LockAnswer {
                node,
                inc,
                attempt,
                outcome,
            } => {
                if self.lock_attempt[node].0 == attempt {
                    self.lock_attempt[node].1 = outcome == LockOutcome::Held;
                    self.deliver_rd_if(node, inc, Event::Lock(outcome));
                }
                false
            }
            Item::Chaos => self.chaos_step(),
            Item::Unban { node, inc, epoch } => {
                let n = &mut self.nodes[node];
                if n.alive && n.inc == inc && n.server.ban_epoch == epoch {
                    n.server.own_flags &= !NODE_FLAGS_BANNED;
                }
                false
            }
        };
        Some(self.check(crash))
    }

    /// A message arrived at node `i`'s daemon.
    fn message(&mut self, i: usize, srvid: Srvid, data: Vec<u8>) {
        if let Some((db, n)) = self.nodes[i].server.push.get(&srvid).copied() {
            if let (Ok(buf), Some((_, staged))) = (
                RecBuffer::decode(&data),
                self.nodes[i].server.txn.get_mut(&db),
            ) {
                for r in &buf.records {
                    staged.insert(r.key.clone(), r.data.clone());
                }
                self.nodes[i]
                    .server
                    .push
                    .insert(srvid, (db, n + buf.records.len() as u32));
            }
            return;
        }
        if self.nodes[i].server.registered.contains(&srvid) {
            self.deliver_rd(i, Event::Message { srvid, data });
        }
    }

    /// The server side of one control on node `i`, asked by node `from`.
    fn serve(&mut self, i: usize, from: usize, req: &ControlRequest, _flags: u32) -> ControlAnswer {
        use ControlRequest as R;
        if let R::SetVnnMap(v) = req {
            self.note_generation(v);
        }
        let nodemap = self.nodemap(i);
        let s = &mut self.nodes[i].server;
        match req {
            R::GetNodeMap => ok(ControlReply::GetNodeMap(nodemap)),
            R::GetRecmode => ControlAnswer {
                status: s.recmode as i32,
                data: Vec::new(),
                errmsg: None,
            },
            R::GetVnnMap => ok(ControlReply::GetVnnMap(s.vnnmap.clone())),
            R::GetCapabilities => ok(ControlReply::GetCapabilities(CAP_RECMASTER | CAP_LMASTER)),
            R::GetAllTunables => ok(ControlReply::GetAllTunables(sim_tunables())),
            // The simulated nodes have no public addresses.
            R::GetPublicIps => ok(ControlReply::GetPublicIps(Default::default())),
            R::GetDbMap => ok(ControlReply::GetDbMap(DbMap(
                s.dbs
                    .iter()
                    .map(|(id, d)| DbIdEntry {
                        db_id: *id,
                        flags: d.flags,
                    })
                    .collect(),
            ))),
            R::SetRecmode(m) => {
                s.recmode = *m;
                ok(ControlReply::Empty)
            }
            R::ModifyFlags(c) => {
                if c.pnn.0 as usize != i {
                    s.peer_flags
                        .insert(c.pnn, c.new_flags & !NODE_FLAGS_DISCONNECTED);
                }
                ok(ControlReply::Empty)
            }
            R::StartRecovery | R::EndRecovery | R::IpReallocated => ok(ControlReply::Empty),
            R::SetBanState(b) if b.pnn.0 as usize == i => {
                self.ban(i, b.time);
                ok(ControlReply::Empty)
            }
            R::SetVnnMap(v) => {
                s.vnnmap = v.clone();
                ok(ControlReply::Empty)
            }
            R::GetDbName(id) => match s.dbs.get(id) {
                Some(d) => ok(ControlReply::GetDbName(d.name.clone())),
                None => fail("no such database"),
            },
            R::DbAttach(name) | R::DbAttachPersistent(name) => {
                let (id, flags) = if matches!(req, R::DbAttach(_)) {
                    (VOLATILE, 0)
                } else {
                    (PERSISTENT, DB_FLAGS_PERSISTENT)
                };
                s.dbs.entry(id).or_insert(DbModel {
                    name: name.clone(),
                    flags,
                    records: BTreeMap::new(),
                });
                ok(ControlReply::DbAttach(id))
            }
            _ => self.serve_db(i, from, req),
        }
    }

    /// The server side of the database controls of a recovery on node `i`.
    fn serve_db(&mut self, i: usize, from: usize, req: &ControlRequest) -> ControlAnswer {
        use ControlRequest as R;
        let faulty = self.sc.faulty_pull && self.chaos && i == self.nodes.len() - 1;
        let s = &mut self.nodes[i].server;
        match req {
            R::DbFreeze(id) => {
                s.frozen.insert(*id);
                ok(ControlReply::Empty)
            }
            R::DbThaw(id) => {
                s.frozen.remove(id);
                s.txn.remove(id);
                s.push.retain(|_, (db, _)| db != id);
                ok(ControlReply::Empty)
            }
            R::DbTransactionStart(t) => match s.dbs.get(&t.db_id) {
                Some(d) if s.frozen.contains(&t.db_id) => {
                    let copy = d.records.clone();
                    s.txn.insert(t.db_id, (t.tid, copy));
                    ok(ControlReply::Empty)
                }
                _ => fail("database not frozen"),
            },
            R::GetDbSeqnum(p) if p.db_id == PERSISTENT => ok(ControlReply::GetDbSeqnum(s.seqnum())),
            R::DbPull(_) if faulty => fail("faulty node"),
            R::DbPull(ext) => {
                let Some(d) = s
                    .dbs
                    .get(&ext.db_id)
                    .filter(|_| s.frozen.contains(&ext.db_id))
                else {
                    return fail("database not frozen");
                };
                let recs: Vec<RecData> = d
                    .records
                    .iter()
                    .map(|(k, v)| RecData {
                        reqid: 0,
                        key: k.clone(),
                        data: v.clone(),
                    })
                    .collect();
                let count = recs.len() as u32;
                let inc = self.nodes[from].inc;
                for chunk in recs.chunks(3) {
                    let data = RecBuffer {
                        db_id: ext.db_id,
                        records: chunk.to_vec(),
                    }
                    .to_bytes();
                    self.send_link(
                        i,
                        from,
                        Item::Msg {
                            from: i,
                            to: from,
                            to_inc: inc,
                            srvid: ext.srvid,
                            data,
                        },
                    );
                }
                ok(ControlReply::DbPull(count))
            }
            R::WipeDatabase(t) => match s.txn.get_mut(&t.db_id) {
                Some((tid, staged)) if *tid == t.tid => {
                    staged.clear();
                    ok(ControlReply::Empty)
                }
                _ => fail("no transaction"),
            },
            R::DbPushStart(ext) => {
                if !s.txn.contains_key(&ext.db_id) {
                    return fail("no transaction");
                }
                s.push.retain(|_, (db, _)| *db != ext.db_id);
                s.push.insert(ext.srvid, (ext.db_id, 0));
                ok(ControlReply::Empty)
            }
            R::DbPushConfirm(id) => {
                let found = s
                    .push
                    .iter()
                    .find(|(_, (db, _))| db == id)
                    .map(|(k, v)| (*k, v.1));
                match found {
                    Some((srvid, n)) => {
                        s.push.remove(&srvid);
                        ok(ControlReply::DbPushConfirm(n))
                    }
                    None => fail("no push"),
                }
            }
            R::DbTransactionCommit(t) => match s.txn.remove(&t.db_id) {
                Some((tid, staged)) if tid == t.tid => {
                    if let Some(d) = s.dbs.get_mut(&t.db_id) {
                        d.records = staged;
                    }
                    ok(ControlReply::Empty)
                }
                _ => fail("no transaction"),
            },
            _ => fail("not modelled"),
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive)
            .collect()
    }

    /// The nodes a client operation on `x` must reach: every node of its
    /// vnn map, connected, in normal mode with the same generation.
    fn quorum(&self, x: usize, db: DbId) -> Option<Vec<usize>> {
        let s = &self.nodes[x].server;
        if !self.nodes[x].alive || !s.usable(db) || s.vnnmap.generation == Generation::INVALID {
            return None;
        }
        let members: Vec<usize> = s.vnnmap.map.iter().map(|p| p.0 as usize).collect();
        for m in &members {
            let ms = &self.nodes[*m].server;
            if !self.connected(x, *m) || !ms.usable(db) || ms.vnnmap != s.vnnmap {
                return None;
            }
        }
        members.contains(&x).then_some(members)
    }

    fn write_volatile(&mut self, x: usize) {
        let Some(members) = self.quorum(x, VOLATILE) else {
            return;
        };
        let key = format!("key{}", self.rng.below(KEYS as u64)).into_bytes();
        let rsn = self
            .nodes
            .iter()
            .filter_map(|n| {
                n.server
                    .dbs
                    .get(&VOLATILE)?
                    .records
                    .get(&key)
                    .map(|v| LtdbHeader::split(v).unwrap().0.rsn)
            })
            .max()
            .unwrap_or(0)
            .max(self.volatile_best.get(&key).copied().unwrap_or(0))
            + 1;
        for m in members {
            if let Some(v) = self.nodes[m]
                .server
                .dbs
                .get_mut(&VOLATILE)
                .unwrap()
                .records
                .get_mut(&key)
            {
                let (mut h, value) = LtdbHeader::split(v).unwrap();
                h.dmaster = Pnn(x as u32);
                let updated = record(&h, value);
                *v = updated;
            }
        }
        let value = format!("v{rsn}").into_bytes();
        let rec = record(&header(rsn, x), &value);
        self.nodes[x]
            .server
            .dbs
            .get_mut(&VOLATILE)
            .unwrap()
            .records
            .insert(key.clone(), rec);
        self.volatile_best.insert(key, rsn);
        self.count("volatile writes");
    }

    fn commit_persistent(&mut self, x: usize) {
        let Some(members) = self.quorum(x, PERSISTENT) else {
            return;
        };
        let seqnum = self.nodes[x].server.seqnum() + 1;
        if members
            .iter()
            .any(|m| self.nodes[*m].server.seqnum() + 1 != seqnum)
        {
            panic!(
                "persistent seqnums differ among the active nodes at t={}",
                self.now.0
            );
        }
        let key = format!("pkey{}", self.rng.below(KEYS as u64)).into_bytes();
        let value = record(&header(seqnum, x), format!("p{seqnum}").as_bytes());
        let seq = record(&header(seqnum, x), &seqnum.to_le_bytes());
        for m in members {
            let d = self.nodes[m].server.dbs.get_mut(&PERSISTENT).unwrap();
            d.records.insert(key.clone(), value.clone());
            d.records.insert(DB_SEQNUM_KEY.to_vec(), seq.clone());
        }
        self.acked.insert(
            key,
            Acked {
                seqnum,
                record: value,
                orphaned: false,
            },
        );
        self.count("persistent commits");
    }

    /// A recovery installs a new generation on its nodes: the commits that
    /// none of its nodes with the highest sequence number holds cannot
    /// survive it (see [`Acked::orphaned`]).
    fn note_generation(&mut self, v: &VnnMap) {
        if !self.generations.insert(v.generation) {
            return;
        }
        let members: Vec<usize> = v.map.iter().map(|p| p.0 as usize).collect();
        let top = members
            .iter()
            .map(|m| self.nodes[*m].server.seqnum())
            .max()
            .unwrap_or(0);
        let best: Vec<usize> = members
            .into_iter()
            .filter(|m| self.nodes[*m].server.seqnum() == top)
            .collect();
        let mut orphaned = 0;
        for (k, a) in self.acked.iter_mut().filter(|(_, a)| !a.orphaned) {
            let held = best.iter().all(|m| {
                self.nodes[*m]
                    .server
                    .dbs
                    .get(&PERSISTENT)
                    .and_then(|d| d.records.get(k))
                    == Some(&a.record)
            });
            if !held {
                a.orphaned = true;
                orphaned += 1;
            }
        }
        for _ in 0..orphaned {
            self.count("orphaned commits");
        }
    }

    fn max_acked_seqnum(&self) -> u64 {
        self.acked
            .values()
            .filter(|a| !a.orphaned)
            .map(|a| a.seqnum)
            .max()
            .unwrap_or(0)
    }

    fn crash(&mut self, x: usize) {
        let n = &mut self.nodes[x];
        n.alive = false;
        n.inc += 1;
        self.lock_attempt[x] = (self.lock_attempt[x].0 + 1, false);
        if self.lock_holder == Some(x) {
            self.lock_holder = None;
        }
        self.count("crashes");
    }

    /// SET_BAN_STATE on node `i`: banned (inactive, recovery mode active)
    /// for `secs` seconds.
    fn ban(&mut self, i: usize, secs: u32) {
        let inc = self.nodes[i].inc;
        let s = &mut self.nodes[i].server;
        s.ban_epoch += 1;
        if secs == 0 {
            s.own_flags &= !NODE_FLAGS_BANNED;
            return;
        }
        s.own_flags |= NODE_FLAGS_BANNED;
        s.recmode = RECOVERY_ACTIVE;
        let item = Item::Unban {
            node: i,
            inc,
            epoch: s.ban_epoch,
        };
        self.schedule(self.now.after_ms(u64::from(secs) * 1000), item);
        self.count("bans");
        if self.sc.faulty_pull && i == self.nodes.len() - 1 {
            self.count("bans of the faulty node");
        }
    }

    fn restart(&mut self, x: usize) {
        let inc = self.nodes[x].inc + 1;
        let persistent = self.nodes[x].server.dbs.get(&PERSISTENT).cloned();
        let seed = self.rng.next();
        let n = &mut self.nodes[x];
        n.inc = inc;
        n.alive = true;
        n.rd = Recoverd::new(settings(x, self.sc.lock, self.now, seed));
        n.server = Server::new(Pnn(x as u32), persistent, false);
        self.schedule(
            self.now,
            Item::Rd {
                node: x,
                inc,
                ev: Event::Start,
            },
        );
        self.count("restarts");
    }

    /// One random fault or client operation; returns true for a crash.
    fn chaos_step(&mut self) -> bool {
        if !self.chaos {
            return false;
        }
        let next = self.now.after_ms(20 + self.rng.below(200));
        self.schedule(next, Item::Chaos);
        let n = self.nodes.len() as u64;
        let x = self.rng.below(n) as usize;
        let roll = self.rng.below(1000);
        match roll {
            0..=399 => self.write_volatile(x),
            400..=599 => self.commit_persistent(x),
            600..=614 if self.nodes[x].alive => {
                self.crash(x);
                return true;
            }
            615..=699 => {
                if let Some(d) = (0..self.nodes.len()).find(|i| !self.nodes[*i].alive) {
                    self.restart(d);
                }
            }
            700..=719 if self.sc.partitions => {
                for g in self.group.iter_mut() {
                    *g = 0;
                }
                let cut = 1 + self.rng.below(n - 1) as usize;
                for i in 0..self.nodes.len() {
                    if self.rng.chance(500) || i == cut {
                        self.group[i] = 1;
                    }
                }
                self.count("partitions");
            }
            720..=769 => self.group.iter_mut().for_each(|g| *g = 0),
            770..=775 if self.sc.lock => {
                let answered = |h: usize| self.lock_attempt[h].1;
                if let Some(h) = self.lock_holder.filter(|h| answered(*h)) {
                    self.lock_holder = None;
                    self.lock_attempt[h] = (self.lock_attempt[h].0 + 1, false);
                    let inc = self.nodes[h].inc;
                    self.count("locks lost");
                    self.deliver_rd_if(h, inc, Event::LockLost);
                }
            }
            776..=785 if self.nodes[x].alive => {
                // `ctdb recover` on node x: its recovery mode becomes active.
                self.nodes[x].server.recmode = RECOVERY_ACTIVE;
                self.count("ctdb recover");
            }
            786..=795 => {
                // `ctdb sync` asks the leader for a takeover run.
                let leader = self.nodes[x].rd.leader();
                if self.nodes[x].alive && (leader.0 as usize) < self.nodes.len() {
                    let m = SrvidMessage {
                        pnn: Pnn(x as u32),
                        srvid: Srvid(0),
                    };
                    let item = Item::Msg {
                        from: x,
                        to: leader.0 as usize,
                        to_inc: self.nodes[leader.0 as usize].inc,
                        srvid: Srvid::TAKEOVER_RUN,
                        data: m.to_bytes(),
                    };
                    self.send_link(x, leader.0 as usize, item);
                }
            }
            796..=805 if self.nodes[x].alive => {
                // `ctdb stop` / `ctdb continue` on node x.
                let s = &mut self.nodes[x].server;
                s.own_flags ^= NODE_FLAGS_STOPPED;
                if s.own_flags & NODE_FLAGS_STOPPED != 0 {
                    s.recmode = RECOVERY_ACTIVE;
                    self.count("ctdb stop");
                } else {
                    self.count("ctdb continue");
                }
            }
            _ => {}
        }
        false
    }

    fn deliver_rd_if(&mut self, i: usize, inc: u32, ev: Event) {
        if self.nodes[i].alive && self.nodes[i].inc == inc {
            self.deliver_rd(i, ev);
        }
    }

    /// The invariants checked after every step.
    fn check(&mut self, crashed: bool) -> Result<(), String> {
        if self.sc.lock {
            for i in self.live() {
                if self.nodes[i].rd.leads_with_lock() && self.lock_holder != Some(i) {
                    return Err(format!(
                        "node {i} leads with the cluster lock, but the lock is held by {:?}",
                        self.lock_holder
                    ));
                }
            }
        }
        let mut best: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for i in self.live() {
            let Some(db) = self.nodes[i].server.dbs.get(&VOLATILE) else {
                continue;
            };
            for (k, v) in &db.records {
                let rsn = LtdbHeader::split(v).unwrap().0.rsn;
                let e = best.entry(k.clone()).or_default();
                *e = (*e).max(rsn);
            }
        }
        if !crashed {
            for (k, rsn) in &self.volatile_best {
                let now = best.get(k).copied().unwrap_or(0);
                if now < *rsn {
                    return Err(format!(
                        "the newest copy of {} (rsn {rsn}) was lost: the best left is rsn {now}",
                        String::from_utf8_lossy(k)
                    ));
                }
            }
        }
        self.volatile_best = best;
        let max_seqnum = self
            .nodes
            .iter()
            .map(|n| n.server.seqnum())
            .max()
            .unwrap_or(0);
        let acked = self.max_acked_seqnum();
        if max_seqnum < acked {
            return Err(format!(
                "acknowledged persistent commit {acked} lost (highest seqnum left {max_seqnum})"
            ));
        }
        Ok(())
    }

    /// The checks once the cluster has settled.
    fn check_settled(&self) -> Result<(), String> {
        let leaders: BTreeSet<Pnn> = self.nodes.iter().map(|n| n.rd.leader()).collect();
        if leaders.len() != 1 {
            return Err(format!("nodes disagree on the leader: {leaders:?}"));
        }
        let leader = *leaders.iter().next().unwrap();
        if leader == Pnn::UNKNOWN || !self.nodes[leader.0 as usize].rd.leads_with_lock() {
            return Err(format!("no node leads (leader {leader})"));
        }
        if self.sc.lock && self.lock_holder != Some(leader.0 as usize) {
            return Err(format!(
                "leader {leader} does not hold the lock ({:?})",
                self.lock_holder
            ));
        }
        let first = &self.nodes[0].server;
        let all: Vec<Pnn> = (0..self.nodes.len() as u32).map(Pnn).collect();
        for (i, n) in self.nodes.iter().enumerate() {
            let s = &n.server;
            if s.recmode != RECOVERY_NORMAL {
                return Err(format!("node {i} is still in recovery mode"));
            }
            if s.vnnmap != first.vnnmap
                || s.vnnmap.map != all
                || s.vnnmap.generation == Generation::INVALID
            {
                return Err(format!(
                    "node {i} has vnnmap {:?}, node 0 {:?}",
                    s.vnnmap, first.vnnmap
                ));
            }
            if !s.frozen.is_empty() {
                return Err(format!("node {i} still has frozen databases"));
            }
            let volatile = |s: &Server| s.dbs.get(&VOLATILE).map(|d| d.records.clone());
            // A database any node has is attached everywhere by recovery;
            // one every node lost (all restarted) is gone, as in Samba.
            if volatile(s) != volatile(first) {
                return Err(format!("node {i}'s volatile records differ from node 0's"));
            }
            if s.dbs[&PERSISTENT].records != first.dbs[&PERSISTENT].records {
                return Err(format!(
                    "node {i}'s persistent records differ from node 0's"
                ));
            }
        }
        let settled = first.dbs.get(&VOLATILE).map(|d| &d.records);
        if settled.is_none() && !self.volatile_best.is_empty() {
            return Err("the volatile database is gone though records survive".into());
        }
        for (k, v) in settled.into_iter().flatten() {
            let rsn = LtdbHeader::split(v).unwrap().0.rsn;
            if self.volatile_best.get(k) != Some(&rsn) {
                return Err(format!(
                    "record {} settled at rsn {rsn}, not the newest",
                    String::from_utf8_lossy(k)
                ));
            }
        }
        for (k, a) in self.acked.iter().filter(|(_, a)| !a.orphaned) {
            if first.dbs[&PERSISTENT].records.get(k) != Some(&a.record) {
                return Err(format!(
                    "acknowledged commit {} of {} is lost",
                    a.seqnum,
                    String::from_utf8_lossy(k)
                ));
            }
        }
        if first.seqnum() < self.max_acked_seqnum() {
            return Err(format!(
                "persistent seqnum {} < last acknowledged {}",
                first.seqnum(),
                self.max_acked_seqnum()
            ));
        }
        Ok(())
    }

    /// Runs the chaos phase, heals everything and lets the cluster settle.
    pub fn run(&mut self) -> Result<(), String> {
        let chaos_end = Time(self.sc.chaos_ms);
        while self
            .queue
            .first_key_value()
            .is_some_and(|((t, _), _)| *t < chaos_end)
        {
            self.step()
                .unwrap()
                .map_err(|e| format!("t={}ms: {e}", self.now.0))?;
        }
        self.now = chaos_end;
        self.chaos = false;
        self.group.iter_mut().for_each(|g| *g = 0);
        for d in 0..self.nodes.len() {
            if !self.nodes[d].alive {
                self.restart(d);
            }
        }
        for n in self.nodes.iter_mut() {
            n.server.own_flags &= !(NODE_FLAGS_STOPPED | NODE_FLAGS_BANNED);
            n.server.ban_epoch += 1;
        }
        // `ctdb recover`: the settled state is that of a recovery of
        // everything that happened (volatile records are not replicated
        // otherwise).
        self.nodes[0].server.recmode = RECOVERY_ACTIVE;
        let end = chaos_end.after_ms(self.sc.settle_ms);
        while self
            .queue
            .first_key_value()
            .is_some_and(|((t, _), _)| *t < end)
        {
            self.step()
                .unwrap()
                .map_err(|e| format!("t={}ms: {e}", self.now.0))?;
        }
        if self.trace {
            for (i, n) in self.nodes.iter().enumerate() {
                let s = &n.server;
                println!(
                    "node {i}: {} server recmode={} flags={:#x} peers={:?}",
                    n.rd.summary(),
                    s.recmode,
                    s.own_flags,
                    s.peer_flags
                );
            }
        }
        self.check_settled()
            .map_err(|e| format!("after settling: {e}"))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// Runs a scenario over the seeds the environment asks for; panics naming
/// the first failing seed.  Returns how many bans the seeds saw.
fn run_seeds(name: &str, sc: Scenario, default_seeds: u64) -> BTreeMap<&'static str, u64> {
    let verbose = std::env::var("SIM_VERBOSE").is_ok();
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => (1..=env_u64("SIM_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut recoveries = 0u64;
    for seed in &seeds {
        let mut sim = Sim::new(sc, *seed);
        let result = sim.run();
        recoveries += sim
            .nodes
            .iter()
            .map(|n| n.rd.recoveries() as u64)
            .sum::<u64>();
        for (k, v) in &sim.counts {
            *totals.entry(k).or_default() += v;
        }
        if verbose {
            println!(
                "sim {name} seed {seed}: {}",
                result.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
            );
        }
        if let Err(e) = result {
            panic!("simulation {name} failed with seed {seed}: {e}\nreproduce: SIM_SEED={seed} SIM_VERBOSE=1 cargo test -p ctdbd sim_{name} -- --nocapture");
        }
    }
    println!(
        "sim {name}: {} seeds passed; {recoveries} recoveries by the survivors; {totals:?}",
        seeds.len()
    );
    totals
}

#[test]
fn sim_lock() {
    let sc = Scenario {
        nodes: 3,
        lock: true,
        partitions: true,
        loss_per_mille: 5,
        chaos_ms: 30_000,
        settle_ms: 40_000,
        faulty_pull: false,
    };
    run_seeds("lock", sc, 60);
}

#[test]
fn sim_lock5() {
    let sc = Scenario {
        nodes: 5,
        lock: true,
        partitions: true,
        loss_per_mille: 5,
        chaos_ms: 30_000,
        settle_ms: 40_000,
        faulty_pull: false,
    };
    run_seeds("lock5", sc, 40);
}

#[test]
fn sim_nolock() {
    let sc = Scenario {
        nodes: 4,
        lock: false,
        partitions: false,
        loss_per_mille: 5,
        chaos_ms: 30_000,
        settle_ms: 40_000,
        faulty_pull: false,
    };
    run_seeds("nolock", sc, 60);
}

#[test]
fn sim_nolock_partitions() {
    // Without a cluster lock a partition elects a leader on each side, and
    // each side commits on its own (their histories meet again by sequence
    // number, see `Acked::orphaned`). Loss is off so that the sides only
    // diverge by partitions.
    let sc = Scenario {
        nodes: 3,
        lock: false,
        partitions: true,
        loss_per_mille: 0,
        chaos_ms: 30_000,
        settle_ms: 40_000,
        faulty_pull: false,
    };
    run_seeds("nolock_partitions", sc, 40);
}

#[test]
fn sim_faulty_node_is_banned() {
    // One node fails every DB_PULL: recoveries fail because of it until the
    // leader bans it, then the others recover without it.  No other fault.
    let sc = Scenario {
        nodes: 3,
        lock: true,
        partitions: false,
        loss_per_mille: 0,
        chaos_ms: 30_000,
        settle_ms: 40_000,
        faulty_pull: true,
    };
    let totals = run_seeds("faulty_node_is_banned", sc, 10);
    let banned = totals.get("bans of the faulty node").copied().unwrap_or(0);
    assert!(
        banned >= 5,
        "the faulty node was banned {banned} times in 10 seeds"
    );
}

/// The tunables every modelled node reports: the timers of `settings`.
fn sim_tunables() -> ctdb_protocol::tunables::TunableList {
    let mut t = ctdb_protocol::tunables::TunableList::default();
    for (name, v) in [
        ("RecoverInterval", 1),
        ("ElectionTimeout", 3),
        ("RecoverTimeout", 3),
        ("RerecoveryTimeout", 5),
        ("RecBufferSizeLimit", 120),
        ("RecoveryBanPeriod", 30),
        ("RecoveryGracePeriod", 120),
    ] {
        assert!(t.set(name, v), "{name} is a tunable");
    }
    t
}
