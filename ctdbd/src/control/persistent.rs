//! Persistent and replicated databases across nodes: TRANS3_COMMIT sends the
//! client's transaction, as UPDATE_RECORD, to every active node of the vnn
//! map (this node included) and answers the client once every one of them
//! stored it; UPDATE_RECORD stores such a buffer in one tdb transaction.
//!
//! Failure is Samba's: a node that refuses, or is lost (its pending control
//! fails), puts this node into recovery mode and the client's answer waits
//! for the end of the recovery (END_RECOVERY calls
//! [`Daemon::finish_trans3_commits`], status 2), which rolls the database
//! with the highest sequence number out to every node.  The client then
//! reads its local sequence number: unchanged, it commits again; one higher,
//! the recovery carried its commit.  ControlTimeout without an answer, in
//! normal mode, answers status 1.

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, DbContinuation, ReplyTo};
use crate::db::{Op, Reply};
use crate::ltdb::{self, Kind};
use crate::requests::{Completion, Tag};
use crate::transport::Origin;
use crate::{log_err, log_info};
use ctdb_protocol::ltdb::RecBuffer;
use ctdb_protocol::packet::ReqControl;
use ctdb_protocol::types::{
    NODE_FLAGS_DISCONNECTED, NODE_FLAGS_INACTIVE, RECOVERY_ACTIVE, RECOVERY_NORMAL,
};
use ctdb_protocol::{ControlOpcode, Layout, Pnn, Srvid};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::Trans3Commit, trans3_commit);
    r.add(ControlOpcode::UpdateRecord, update_record);
}

/// Status of a TRANS3_COMMIT that ControlTimeout ended (Samba's).
pub const STATUS_COMMIT_TIMED_OUT: i32 = 1;
/// Status of a TRANS3_COMMIT that a recovery ended (Samba's).
pub const STATUS_COMMIT_ENDED_BY_RECOVERY: i32 = 2;
/// Status of an UPDATE_RECORD whose store failed (Samba's child writes 1).
pub const STATUS_STORE_FAILED: i32 = 1;

/// A TRANS3_COMMIT waiting for the nodes' UPDATE_RECORD answers.
pub struct PendingCommit {
    /// Identifies this commit (its ControlTimeout timer's tag).
    pub id: Tag,
    /// The client's request, answered when the commit ends.
    pub client: ReplyTo,
    /// The client asked for no answer.
    pub noreply: bool,
    /// Nodes whose answer has not come yet.
    pub waiting: Vec<Pnn>,
    /// A node failed it: the answer waits for the recovery.
    pub failed: bool,
}

/// The commits in flight, at most one per database.
#[derive(Default)]
pub struct Commits {
    /// By db_id.
    by_db: HashMap<u32, PendingCommit>,
}

impl Commits {
    /// The commit in flight on `db_id`, if any.
    pub fn get(&self, db_id: u32) -> Option<&PendingCommit> {
        self.by_db.get(&db_id)
    }

    /// True when `client` has a commit in flight on any database.
    fn has_client(&self, client: Origin) -> bool {
        self.by_db.values().any(|c| c.client.origin == client)
    }
}

/// The tdb sequence numbers of the databases with ENABLE_SEQNUM, as last
/// seen (None until the first look), by db_id.
#[derive(Default)]
pub struct SeqnumWatch {
    last: HashMap<u32, Option<u64>>,
}

/// The records of a marshall buffer as (key, header, value).
type Records = Vec<(Vec<u8>, ltdb::Header, Vec<u8>)>;

/// Splits a marshall buffer into its records; Err when one has no header.
fn records_of(buf: &RecBuffer) -> Result<Records, ()> {
    let mut recs = Vec::with_capacity(buf.records.len());
    for rec in &buf.records {
        let (h, value) = rec.header().map_err(|_| ())?;
        recs.push((rec.key.clone(), ltdb::Header::from(h), value.to_vec()));
    }
    Ok(recs)
}

/// TRANS3_COMMIT from a local client: UPDATE_RECORD to every active node of
/// the vnn map; the reply waits for all of them.
fn trans3_commit(d: &mut Daemon, req: &Request) -> Outcome {
    if d.state.recmode != RECOVERY_NORMAL {
        log_info!("rejecting ctdb_control_trans3_commit when recovery active");
        return Outcome::status(-1);
    }
    if req.client().is_none() {
        log_err!("can not match persistent_store to a client. Returning error");
        return Outcome::status(-1);
    }
    if d.commits.has_client(req.origin) {
        log_err!("ERROR: trans3_commit: a commit of this client is active");
        return Outcome::status(-1);
    }
    let Ok(buf) = RecBuffer::decode(req.data()) else {
        return Outcome::fail("bad marshall buffer");
    };
    let id = buf.db_id.0;
    if d.find_db(id).is_none() {
        log_err!(
            "ctdb_control_trans3_commit: Unknown database db_id[0x{:08x}]",
            id
        );
        return Outcome::status(-1);
    }
    if d.commits.get(id).is_some() {
        log_err!(
            "Error: ctdb_control_trans3_commit called while a transaction commit is active. db_id[0x{:08x}]",
            id
        );
        return Outcome::status(-1);
    }
    let Ok(recs) = records_of(&buf) else {
        return Outcome::fail("record without header");
    };
    let targets = d.active_vnnmap();
    if targets.is_empty() {
        return Outcome::status(0);
    }
    let timeout = Duration::from_secs(d.state.tunables.control_timeout as u64);
    let commit = d.track_with(
        |tag| Box::new(move |d: &mut Daemon, done| d.commit_expired(id, tag, done)),
        Some(timeout),
    );
    d.commits.by_db.insert(
        id,
        PendingCommit {
            id: commit,
            client: req.reply_to(),
            noreply: req.noreply(),
            waiting: targets.clone(),
            failed: false,
        },
    );
    for pnn in targets {
        let then: DbContinuation =
            Box::new(move |d: &mut Daemon, done| d.commit_answered(id, commit, pnn, done));
        if pnn.0 == d.state.pnn {
            d.store_update(id, recs.clone(), then);
        } else {
            let data = req.data().to_vec();
            d.send_node_control(pnn, ControlOpcode::UpdateRecord, data, Some(then));
        }
    }
    Outcome::Later
}

/// UPDATE_RECORD: stores a marshall buffer in one transaction (a volatile
/// database only replaces records it has).  Status 1 when the store failed.
fn update_record(d: &mut Daemon, req: &Request) -> Outcome {
    if d.state.recmode != RECOVERY_NORMAL {
        log_info!("rejecting ctdb_control_update_record when recovery active");
        return Outcome::status(-1);
    }
    let Ok(buf) = RecBuffer::decode(req.data()) else {
        return Outcome::fail("bad marshall buffer");
    };
    let id = buf.db_id.0;
    // A database still opening (its attach came just before) takes the
    // store after its open.
    let Some(db) = d.dbs.iter().find(|db| db.id == id) else {
        log_err!(
            "Unknown database 0x{:08x} in ctdb_control_update_record",
            id
        );
        return Outcome::status(-1);
    };
    if let Some(why) = &db.unhealthy {
        log_err!(
            "db({}) unhealty in ctdb_control_update_record: {}",
            db.name,
            why
        );
        return Outcome::status(-1);
    }
    let Ok(recs) = records_of(&buf) else {
        return Outcome::fail("record without header");
    };
    let to = req.reply_to();
    let noreply = req.noreply();
    let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
        if noreply {
            return;
        }
        let status = match done {
            Completion::Answered(Reply::Ok) => 0,
            _ => STATUS_STORE_FAILED,
        };
        d.answer_request(to, status, &[], None);
    });
    d.store_update(id, recs, then);
    Outcome::Later
}

impl Daemon {
    /// Every node of the vnn map that is active (not disconnected, banned,
    /// stopped or deleted), in map order.
    pub(crate) fn active_vnnmap(&self) -> Vec<Pnn> {
        self.state
            .vnn_map
            .iter()
            .copied()
            .filter(|p| self.node_flags(*p) & NODE_FLAGS_INACTIVE == 0)
            .collect()
    }

    /// Every active node (what CTDB_BROADCAST_ACTIVE reaches), by pnn.
    pub(crate) fn active_nodes(&self) -> Vec<Pnn> {
        self.known_nodes()
            .filter(|p| self.node_flags(*p) & NODE_FLAGS_INACTIVE == 0)
            .collect()
    }

    /// Every connected node (what CTDB_BROADCAST_CONNECTED reaches), by pnn.
    pub(crate) fn connected_nodes(&self) -> Vec<Pnn> {
        self.known_nodes()
            .filter(|p| self.node_flags(*p) & NODE_FLAGS_DISCONNECTED == 0)
            .collect()
    }

    /// The pnns of the nodes file that are not deleted.
    fn known_nodes(&self) -> impl Iterator<Item = Pnn> + '_ {
        self.state
            .nodes
            .iter()
            .filter(|n| !n.deleted)
            .map(|n| Pnn(n.pnn))
    }

    /// The NODE_FLAGS_* of a node as this node sees them.
    pub(crate) fn node_flags(&self, pnn: Pnn) -> u32 {
        self.link_flags(pnn.0)
    }

    /// Sends a control from this daemon to another node through the node
    /// transport.  With `then`, the reply is awaited (ControlTimeout; a node
    /// that dies fails it) and `then` gets it as `Reply::Control`; without,
    /// the control asks for no reply.
    pub(crate) fn send_node_control(
        &mut self,
        to: Pnn,
        opcode: ControlOpcode,
        data: Vec<u8>,
        then: Option<DbContinuation>,
    ) {
        let body = ReqControl {
            opcode,
            srvid: Srvid(0),
            client_id: 0,
            flags: 0,
            data,
        };
        match then {
            Some(then) => self.send_req_control(
                to,
                body,
                None,
                Box::new(
                    move |d: &mut Daemon, r: ctdb_protocol::packet::ReplyControl| {
                        let reply = Reply::Control {
                            status: r.status,
                            data: r.data,
                            errmsg: r.errmsg,
                        };
                        then(d, Completion::Answered(reply));
                    },
                ),
            ),
            None => self.send_control_noreply(to, body),
        }
    }

    /// Stores an UPDATE_RECORD buffer on this node, counted as Samba counts
    /// its write children.
    fn store_update(&mut self, id: u32, recs: Records, then: DbContinuation) {
        // The catalogue entry, ready or still opening.
        let replace_only = self
            .dbs
            .iter()
            .any(|db| db.id == id && db.kind() == Kind::Volatile);
        self.stats.childwrite_calls += 1;
        self.stats.pending_childwrite_calls += 1;
        let started = Instant::now();
        let counted: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            d.stats.pending_childwrite_calls = d.stats.pending_childwrite_calls.saturating_sub(1);
            if let Completion::Answered(Reply::Ok) = done {
                d.stats
                    .childwrite_latency
                    .update(started.elapsed().as_secs_f64());
            }
            then(d, done);
        });
        let op = Op::PersistentStore { recs, replace_only };
        self.submit(id, op, counted, None);
    }

    /// One node answered a commit's UPDATE_RECORD.  During a recovery the
    /// answer is ignored (the recovery ends the commit); a failure puts this
    /// node into recovery mode; the last success answers the client.
    fn commit_answered(&mut self, db_id: u32, commit: Tag, pnn: Pnn, done: Completion<Reply>) {
        if self.state.recmode != RECOVERY_NORMAL {
            log_info!("ctdb_persistent_callback: ignoring reply during recovery");
            return;
        }
        let Some(c) = self
            .commits
            .by_db
            .get_mut(&db_id)
            .filter(|c| c.id == commit)
        else {
            return;
        };
        let failure = match done {
            Completion::Answered(Reply::Ok) => None,
            Completion::Answered(Reply::Control { status: 0, .. }) => None,
            Completion::Answered(Reply::Control { status, errmsg, .. }) => {
                Some(format!("status {status} ({})", errmsg.unwrap_or_default()))
            }
            Completion::Answered(Reply::Failed(why)) => Some(why),
            Completion::Answered(other) => Some(format!("{other:?}")),
            Completion::TimedOut => Some("timed out".into()),
        };
        if let Some(why) = failure {
            log_err!("ctdb_persistent_callback failed on node {}: {}", pnn.0, why);
            c.failed = true;
            // Samba's way to have the leader run a recovery, which ends the
            // commit.
            self.state.recmode = RECOVERY_ACTIVE;
            return;
        }
        c.waiting.retain(|p| *p != pnn);
        if c.waiting.is_empty() && !c.failed {
            self.end_commit(db_id, 0, None);
        }
    }

    /// ControlTimeout passed: in normal mode the client gets status 1; during
    /// a recovery the commit waits for its end.
    fn commit_expired(&mut self, db_id: u32, commit: Tag, done: Completion<Reply>) {
        if done != Completion::TimedOut {
            return;
        }
        if self.state.recmode != RECOVERY_NORMAL {
            log_info!("ctdb_persistent_store_timeout: ignoring timeout during recovery");
            return;
        }
        if self.commits.get(db_id).is_some_and(|c| c.id == commit) {
            let msg = "timeout in ctdb_persistent_state";
            self.end_commit(db_id, STATUS_COMMIT_TIMED_OUT, Some(msg));
        }
    }

    /// Answers the client of the commit on `db_id` and forgets it; its
    /// timer is retired and late node answers are ignored.
    fn end_commit(&mut self, db_id: u32, status: i32, msg: Option<&str>) {
        let Some(c) = self.commits.by_db.remove(&db_id) else {
            return;
        };
        if !c.noreply {
            self.answer_request(c.client, status, &[], msg);
        }
        // A no-op when the timer is what ended it.
        self.answer(c.id, Reply::Ok);
    }

    /// END_RECOVERY: every commit still waiting is answered with status 2
    /// (its client checks the sequence number and commits again if the
    /// recovery did not carry it).  Does nothing outside normal mode.
    pub(crate) fn finish_trans3_commits(&mut self) {
        if self.state.recmode != RECOVERY_NORMAL {
            log_info!(
                "ctdb_persistent_finish_trans3_commits: skipping execution when recovery is active"
            );
            return;
        }
        let dbs: Vec<u32> = self.commits.by_db.keys().copied().collect();
        for db_id in dbs {
            let msg = "trans3 commit ended by recovery";
            self.end_commit(db_id, STATUS_COMMIT_ENDED_BY_RECOVERY, Some(msg));
        }
    }

    /// A client went away: its commit stays (the nodes may still store it)
    /// but nobody is answered.
    pub(crate) fn commits_client_gone(&mut self, client: Origin) {
        for c in self.commits.by_db.values_mut() {
            if c.client.origin == client {
                c.noreply = true;
            }
        }
    }

    /// ENABLE_SEQNUM: from now on, every SeqnumInterval ms, a change of the
    /// database's tdb sequence number is told to the other active nodes
    /// with UPDATE_SEQNUM (NOREPLY), as Samba's daemon polls it.
    pub(crate) fn watch_seqnum(&mut self, db_id: u32) {
        if self.seqnums.last.contains_key(&db_id) {
            return;
        }
        self.seqnums.last.insert(db_id, None);
        self.look_at_seqnum(db_id);
    }

    /// Reads the tdb sequence number now; the answer compares it and arms
    /// the next look.
    fn look_at_seqnum(&mut self, db_id: u32) {
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            if let Completion::Answered(Reply::Seqnum(now)) = done {
                d.seqnum_seen(db_id, now);
            }
            d.arm_seqnum_look(db_id);
        });
        self.submit(db_id, Op::TdbSeqnum, then, None);
    }

    /// The next look, SeqnumInterval ms from now, while the database is
    /// attached.
    fn arm_seqnum_look(&mut self, db_id: u32) {
        if self.find_db(db_id).is_none() {
            self.seqnums.last.remove(&db_id);
            return;
        }
        let every = Duration::from_millis(u64::from(self.state.tunables.seqnum_interval.max(1)));
        self.track(
            Box::new(move |d: &mut Daemon, done| {
                if done == Completion::TimedOut {
                    d.look_at_seqnum(db_id);
                }
            }),
            Some(every),
        );
    }

    /// A look found `now`: a change since the last one goes to the other
    /// active nodes.
    fn seqnum_seen(&mut self, db_id: u32, now: u64) {
        let Some(last) = self.seqnums.last.get_mut(&db_id) else {
            return;
        };
        let changed = last.is_some_and(|l| l != now);
        *last = Some(now);
        if !changed {
            return;
        }
        let me = self.state.pnn;
        for pnn in self.active_nodes() {
            if pnn.0 != me {
                let data = db_id.to_le_bytes().to_vec();
                self.send_node_control(pnn, ControlOpcode::UpdateSeqnum, data, None);
            }
        }
    }

    /// UPDATE_SEQNUM from another node bumped the number to the u64 in
    /// `data`: that is no change of this node's to tell the others.
    pub(crate) fn seqnum_updated(&mut self, db_id: u32, data: &[u8]) {
        let Ok(b) = <[u8; 8]>::try_from(data) else {
            return;
        };
        if let Some(last) = self.seqnums.last.get_mut(&db_id) {
            *last = Some(u64::from_le_bytes(b));
        }
    }
}

/// A few daemons wired together in one thread for tests: packets a daemon
/// queues for another node are handed to that node's `packet`, database
/// work runs on the real workers, and what goes to local clients is kept.
#[cfg(test)]
pub(crate) mod testing {
    use crate::actions::Action;
    use crate::daemon::Daemon;
    use crate::dispatch::tests::node_daemon;
    use crate::transport::{ClientId, Origin};
    use ctdb_protocol::packet::ReqControl;
    use ctdb_protocol::{ControlOpcode, Header, Operation, Packet, Pnn, Srvid};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// Nodes 0..n of a test cluster.
    pub struct Cluster {
        /// The daemons, by pnn.
        pub nodes: Vec<Daemon>,
        dirs: Vec<PathBuf>,
        /// Packets each node sent to its local clients: (node, client, packet).
        pub to_clients: Vec<(u32, ClientId, Vec<u8>)>,
        /// Node-to-node packets: (from, to, packet).
        pub wire: Vec<(u32, u32, Vec<u8>)>,
        /// Nodes whose incoming packets are dropped (a dead node).
        pub dead: Vec<u32>,
        next_reqid: u32,
        /// Client connections kept open.
        keep: Vec<std::os::unix::net::UnixStream>,
    }

    impl Cluster {
        /// `n` nodes, every one in the vnn map and active.
        pub fn new(tag: &str, n: u32) -> Cluster {
            let mut nodes = Vec::new();
            let mut dirs = Vec::new();
            for pnn in 0..n {
                let (d, dir) = node_daemon(tag, pnn, n);
                nodes.push(d);
                dirs.push(dir);
            }
            Cluster {
                nodes,
                dirs,
                to_clients: Vec::new(),
                wire: Vec::new(),
                dead: Vec::new(),
                next_reqid: 100,
                keep: Vec::new(),
            }
        }

        /// A real client connection to node `pnn`'s socket, accepted; its
        /// stream stays open as long as the cluster.
        pub fn connect(&mut self, pnn: u32) -> ClientId {
            let d = &mut self.nodes[pnn as usize];
            let before: Vec<ClientId> = d.transport.live().map(|(c, _)| c).collect();
            let s = std::os::unix::net::UnixStream::connect(self.dirs[pnn as usize].join("sock"))
                .unwrap();
            d.transport.accept_clients();
            let id = d
                .transport
                .live()
                .map(|(c, _)| c)
                .find(|c| !before.contains(c))
                .expect("accepted client");
            self.keep.push(s);
            id
        }

        /// Sends a control from `client` on node `pnn` and runs the
        /// cluster until it settles; returns the reqid used.
        pub fn control(
            &mut self,
            pnn: u32,
            client: ClientId,
            op: ControlOpcode,
            data: Vec<u8>,
        ) -> u32 {
            self.control_srvid(pnn, client, op, 0, data)
        }

        /// `control` with the control's srvid argument set.
        pub fn control_srvid(
            &mut self,
            pnn: u32,
            client: ClientId,
            op: ControlOpcode,
            srvid: u64,
            data: Vec<u8>,
        ) -> u32 {
            self.next_reqid += 1;
            let reqid = self.next_reqid;
            let body = ReqControl {
                opcode: op,
                srvid: Srvid(srvid),
                client_id: 0,
                flags: 0,
                data,
            };
            let h = Header::new(Operation::ReqControl, Pnn::CURRENT_NODE, Pnn(pnn), reqid);
            let pkt = Packet::ReqControl(body).encode(h);
            self.nodes[pnn as usize]
                .packet(Origin::Client(client), &pkt)
                .unwrap();
            self.settle();
            reqid
        }

        /// The REPLY_CONTROL node `pnn` sent its client for `reqid`: (status,
        /// data).
        pub fn reply(&self, pnn: u32, reqid: u32) -> Option<(i32, Vec<u8>)> {
            self.to_clients
                .iter()
                .filter(|(n, _, _)| *n == pnn)
                .find_map(|(_, _, p)| match Packet::decode(p) {
                    Ok((h, Packet::ReplyControl(r))) if h.reqid == reqid => {
                        Some((r.status, r.data))
                    }
                    _ => None,
                })
        }

        /// Runs every node's actions, database work and traverses, routing
        /// node packets, until nothing has happened for a while.
        pub fn settle(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut quiet_since = Instant::now();
            while Instant::now() < deadline {
                let mut busy = false;
                for i in 0..self.nodes.len() {
                    busy |= self.step(i);
                }
                if busy {
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() > Duration::from_millis(150) {
                    return;
                } else {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            panic!("the test cluster did not settle");
        }

        /// One round of node `i`; true when it did something.
        fn step(&mut self, i: usize) -> bool {
            let d = &mut self.nodes[i];
            d.drain_db_replies();
            d.pump_traverses();
            let actions = d.outbox.take();
            let busy = !actions.is_empty();
            for a in actions {
                match a {
                    Action::Send { to, packet } => self.route(i as u32, to, packet),
                    Action::ArmTimer { .. } => {}
                    Action::Database(job) => self.nodes[i].submit_job(job),
                    Action::AnswerControl { reqid, reply } => {
                        self.nodes[i].answer_control(reqid, reply)
                    }
                }
            }
            busy
        }

        fn route(&mut self, from: u32, to: Origin, packet: Vec<u8>) {
            match to {
                Origin::Client(c) => self.to_clients.push((from, c, packet)),
                Origin::Node(p) => {
                    self.wire.push((from, p.0, packet.clone()));
                    if self.dead.contains(&p.0) || self.dead.contains(&from) {
                        return;
                    }
                    self.nodes[p.0 as usize]
                        .packet(Origin::Node(Pnn(from)), &packet)
                        .unwrap();
                }
            }
        }

        /// Attaches database `name` (with the attach control `op`) on every
        /// node through a client of each; returns its id.
        pub fn attach_everywhere(&mut self, name: &str, op: ControlOpcode) -> u32 {
            let mut id = 0;
            for pnn in 0..self.nodes.len() as u32 {
                let c = self.connect(pnn);
                let mut data = name.as_bytes().to_vec();
                data.push(0);
                let reqid = self.control(pnn, c, op, data);
                let (st, data) = self.reply(pnn, reqid).expect("attach reply");
                assert_eq!(st, 0, "attach on node {pnn}");
                id = u32::from_le_bytes(data[..4].try_into().unwrap());
            }
            self.wire.clear();
            id
        }

        /// The sequence number GET_DB_SEQNUM reports on node `pnn`.
        pub fn seqnum(&mut self, pnn: u32, db_id: u32) -> u64 {
            let c = self.connect(pnn);
            let reqid = self.control(
                pnn,
                c,
                ControlOpcode::GetDbSeqnum,
                u64::from(db_id).to_le_bytes().to_vec(),
            );
            let (st, data) = self.reply(pnn, reqid).expect("seqnum reply");
            assert_eq!(st, 0);
            u64::from_le_bytes(data[..8].try_into().unwrap())
        }

        /// The REPLY_CONTROL node `pnn` sent another node for `reqid`.
        pub fn reply_to_node(&self, pnn: u32, reqid: u32) -> Option<(i32, Vec<u8>)> {
            self.wire.iter().filter(|(f, _, _)| *f == pnn).find_map(
                |(_, _, p)| match Packet::decode(p) {
                    Ok((h, Packet::ReplyControl(r))) if h.reqid == reqid => {
                        Some((r.status, r.data))
                    }
                    _ => None,
                },
            )
        }

        /// The traverse records node `pnn` sent its clients on `srvid`, in
        /// order (the end marker is the empty one).
        pub fn records_to(&self, pnn: u32, srvid: u64) -> Vec<ctdb_protocol::ltdb::RecData> {
            use ctdb_protocol::Layout;
            self.to_clients
                .iter()
                .filter(|(n, _, _)| *n == pnn)
                .filter_map(|(_, _, p)| match Packet::decode(p) {
                    Ok((_, Packet::ReqMessage(m))) if m.srvid.0 == srvid => {
                        ctdb_protocol::ltdb::RecData::decode(&m.data).ok()
                    }
                    _ => None,
                })
                .collect()
        }

        /// The opcodes of the controls node `from` sent to node `to`.
        pub fn controls_sent(&self, from: u32, to: u32) -> Vec<ControlOpcode> {
            self.wire
                .iter()
                .filter(|(f, t, _)| *f == from && *t == to)
                .filter_map(|(_, _, p)| match Packet::decode(p) {
                    Ok((_, Packet::ReqControl(c))) => Some(c.opcode),
                    _ => None,
                })
                .collect()
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for d in &self.dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Cluster;
    use super::*;
    use crate::transport::ClientId;
    use ctdb_protocol::ltdb::{LtdbHeader, RecData, DB_SEQNUM_KEY};
    use ctdb_protocol::DbId;

    /// A transaction's buffer as ctdb's client sends it: the records and the
    /// sequence number record.
    fn transaction(db_id: u32, recs: &[(&str, &str)], seqnum: u64) -> Vec<u8> {
        buffer(db_id, recs, seqnum, Pnn(0))
    }

    /// Sends TRANS3_COMMIT of `transaction(db, recs, seqnum)` from `client`
    /// of node 0; returns the reqid.
    fn commit(
        c: &mut Cluster,
        client: ClientId,
        db: u32,
        recs: &[(&str, &str)],
        seqnum: u64,
    ) -> u32 {
        let t = transaction(db, recs, seqnum);
        c.control(0, client, ControlOpcode::Trans3Commit, t)
    }

    /// `commit`, then checks that it succeeded and every node's sequence
    /// number is `seqnum`.
    fn commit_everywhere(
        c: &mut Cluster,
        client: ClientId,
        db: u32,
        recs: &[(&str, &str)],
        seqnum: u64,
    ) {
        let reqid = commit(c, client, db, recs, seqnum);
        assert_eq!(c.reply(0, reqid), Some((0, Vec::new())));
        for pnn in 0..c.nodes.len() as u32 {
            assert_eq!(c.seqnum(pnn, db), seqnum, "node {pnn}");
        }
    }

    /// `transaction` with the headers naming `dmaster`.
    fn buffer(db_id: u32, recs: &[(&str, &str)], seqnum: u64, dmaster: Pnn) -> Vec<u8> {
        let h = LtdbHeader {
            rsn: seqnum,
            dmaster,
            reserved1: 0,
            flags: 0,
        };
        let mut records: Vec<RecData> = recs
            .iter()
            .map(|(k, v)| RecData::with_header(0, k.as_bytes(), &h, v.as_bytes()))
            .collect();
        records.push(RecData::with_header(
            0,
            DB_SEQNUM_KEY,
            &h,
            &seqnum.to_le_bytes(),
        ));
        RecBuffer {
            db_id: DbId(db_id),
            records,
        }
        .to_bytes()
    }

    #[test]
    fn a_commit_goes_to_every_node_and_answers_after_the_last() {
        let mut c = Cluster::new("commit", 3);
        let db = c.attach_everywhere("p.tdb", ControlOpcode::DbAttachPersistent);
        let client = c.connect(0);
        commit_everywhere(&mut c, client, db, &[("k", "v")], 1);
        for other in [1, 2] {
            assert_eq!(c.controls_sent(0, other), [ControlOpcode::UpdateRecord]);
        }
        commit_everywhere(&mut c, client, db, &[("k", "w")], 2);
    }

    #[test]
    fn an_attach_on_one_node_attaches_everywhere_and_commits_go_through() {
        let mut c = Cluster::new("attach", 3);
        let client = c.connect(0);
        let reqid = c.control(
            0,
            client,
            ControlOpcode::DbAttachPersistent,
            b"p.tdb\0".to_vec(),
        );
        let (st, data) = c.reply(0, reqid).unwrap();
        assert_eq!(st, 0);
        let db = u32::from_le_bytes(data[..4].try_into().unwrap());
        for pnn in [1, 2] {
            assert_eq!(c.controls_sent(0, pnn), [ControlOpcode::DbAttachPersistent]);
            assert!(c.nodes[pnn as usize].find_db(db).is_some(), "node {pnn}");
        }
        // Each node tells the others once when the database is new to it
        // (Samba's broadcast); a node that has it already stays quiet.
        for from in 0..3 {
            for to in (0..3).filter(|t| *t != from) {
                assert!(c.controls_sent(from, to).len() <= 1, "{from} -> {to}");
            }
        }
        commit_everywhere(&mut c, client, db, &[("k", "v")], 1);
    }

    #[test]
    fn the_answer_waits_for_a_silent_node_and_a_lost_node_ends_it_at_recovery() {
        let mut c = Cluster::new("silent", 3);
        let db = c.attach_everywhere("p.tdb", ControlOpcode::DbAttachPersistent);
        let client = c.connect(0);
        c.dead.push(2);
        let reqid = commit(&mut c, client, db, &[("k", "v")], 1);
        assert_eq!(c.reply(0, reqid), None, "node 2 has not answered");
        assert!(c.nodes[0].commits.get(db).is_some());
        // Node 2 is lost: its control fails, node 0 goes into recovery and
        // the client still waits.
        c.nodes[0].cancel_controls_to(Pnn(2));
        c.settle();
        assert_eq!(c.nodes[0].state.recmode, RECOVERY_ACTIVE);
        assert_eq!(c.reply(0, reqid), None);
        // A second commit on the database is refused meanwhile.
        assert_eq!(c.seqnum(1, db), 1, "node 1 stored it");
        // The recovery ends: the client learns the commit was cut short.
        c.nodes[0].state.recmode = RECOVERY_NORMAL;
        c.nodes[0].finish_trans3_commits();
        c.settle();
        assert_eq!(
            c.reply(0, reqid),
            Some((STATUS_COMMIT_ENDED_BY_RECOVERY, Vec::new()))
        );
        assert!(c.nodes[0].commits.get(db).is_none());
    }

    #[test]
    fn a_node_that_refuses_puts_the_commit_into_recovery() {
        let mut c = Cluster::new("refuse", 3);
        let db = c.attach_everywhere("p.tdb", ControlOpcode::DbAttachPersistent);
        // Node 2 is in recovery: it rejects UPDATE_RECORD.
        c.nodes[2].state.recmode = RECOVERY_ACTIVE;
        let client = c.connect(0);
        let reqid = commit(&mut c, client, db, &[("k", "v")], 1);
        assert_eq!(c.reply(0, reqid), None);
        assert_eq!(c.nodes[0].state.recmode, RECOVERY_ACTIVE);
        // While recovery is active, TRANS3_COMMIT is refused at once.
        let other = c.connect(0);
        let again = commit(&mut c, other, db, &[("k", "v")], 1);
        assert_eq!(c.reply(0, again), Some((-1, Vec::new())));
        // END_RECOVERY during the recovery leaves the commit waiting; after
        // it (recovery mode NORMAL) the client gets status 2.
        let leader = c.connect(0);
        c.control(0, leader, ControlOpcode::EndRecovery, Vec::new());
        assert_eq!(c.reply(0, reqid), None);
        c.nodes[0].state.recmode = RECOVERY_NORMAL;
        c.control(0, leader, ControlOpcode::EndRecovery, Vec::new());
        assert_eq!(
            c.reply(0, reqid).map(|r| r.0),
            Some(STATUS_COMMIT_ENDED_BY_RECOVERY)
        );
        assert!(c.nodes[0].commits.get(db).is_none());
    }

    #[test]
    fn control_timeout_in_normal_mode_answers_status_1() {
        let mut c = Cluster::new("timeout", 2);
        let db = c.attach_everywhere("p.tdb", ControlOpcode::DbAttachPersistent);
        let client = c.connect(0);
        c.dead.push(1);
        let reqid = commit(&mut c, client, db, &[("k", "v")], 1);
        assert_eq!(c.reply(0, reqid), None);
        let timer = c.nodes[0].commits.get(db).unwrap().id;
        c.nodes[0].expire(timer);
        c.settle();
        assert_eq!(
            c.reply(0, reqid).map(|r| r.0),
            Some(STATUS_COMMIT_TIMED_OUT)
        );
        // A late answer changes nothing.
        c.nodes[0].cancel_controls_to(Pnn(1));
        assert_eq!(c.nodes[0].state.recmode, RECOVERY_NORMAL);
    }

    #[test]
    fn a_changed_tdb_seqnum_is_told_to_the_other_nodes_once() {
        let mut c = Cluster::new("seqnum", 2);
        let db = c.attach_everywhere("v.tdb", ControlOpcode::DbAttach);
        for pnn in 0..2 {
            let client = c.connect(pnn);
            let r = c.control(
                pnn,
                client,
                ControlOpcode::EnableSeqnum,
                db.to_le_bytes().to_vec(),
            );
            assert_eq!(c.reply(pnn, r), Some((0, vec![])));
        }
        let last = |c: &Cluster, pnn: usize| c.nodes[pnn].seqnums.last.get(&db).copied();
        assert_eq!((last(&c, 0), last(&c, 1)), (Some(Some(0)), Some(Some(0))));
        // Nothing changed: a look tells nobody.
        c.nodes[0].look_at_seqnum(db);
        c.settle();
        assert!(c.wire.is_empty());
        // A store on node 0 bumps its number; the next look tells node 1,
        // whose number follows without being told back.
        let h = ltdb::Header {
            rsn: 1,
            ..Default::default()
        };
        let recs = vec![(b"k".to_vec(), h, b"v".to_vec())];
        c.nodes[0].submit_untracked(
            db,
            Op::PushStore {
                recs,
                vnn_map: Vec::new(),
            },
        );
        c.settle();
        c.nodes[0].look_at_seqnum(db);
        c.settle();
        assert_eq!(c.controls_sent(0, 1), [ControlOpcode::UpdateSeqnum]);
        assert_eq!(last(&c, 0), Some(Some(1)));
        assert_eq!(last(&c, 1), Some(Some(1)));
        c.nodes[1].look_at_seqnum(db);
        c.settle();
        assert!(c.controls_sent(1, 0).is_empty(), "no echo");
    }

    #[test]
    fn update_record_on_a_volatile_database_only_replaces() {
        let mut c = Cluster::new("replace", 2);
        let db = c.attach_everywhere("v.tdb", ControlOpcode::DbAttach);
        let h = ltdb::Header {
            rsn: 5,
            dmaster: 1,
            ..Default::default()
        };
        let existing = vec![(b"old".to_vec(), h, b"1".to_vec())];
        c.nodes[1].submit_untracked(
            db,
            Op::PushStore {
                recs: existing,
                vnn_map: Vec::new(),
            },
        );
        c.settle();
        let buf = buffer(db, &[("old", "2"), ("new", "3")], 9, Pnn(1));
        let pkt = crate::dispatch::tests::control(ControlOpcode::UpdateRecord, 0, 7, buf);
        c.nodes[1].packet(Origin::Node(Pnn(0)), &pkt).unwrap();
        c.settle();
        let (st, data) = c.reply_to_node(1, 7).unwrap();
        assert_eq!((st, data), (0, Vec::new()));
        let client = c.connect(1);
        let start = ctdb_protocol::types::TraverseStartExt {
            db_id: DbId(db),
            reqid: 3,
            srvid: Srvid(0xabc),
            with_empty_records: false,
        };
        c.control_srvid(1, client, ControlOpcode::RegisterSrvid, 0xabc, Vec::new());
        // Only node 1 holds records: ask node 1 alone.
        c.nodes[1].state.node_flags[0] = NODE_FLAGS_DISCONNECTED;
        c.control(1, client, ControlOpcode::TraverseStartExt, start.to_bytes());
        let keys: Vec<(Vec<u8>, Vec<u8>)> = c
            .records_to(1, 0xabc)
            .into_iter()
            .map(|r| {
                (
                    r.key,
                    r.data.get(ltdb::HEADER_LEN..).unwrap_or(&[]).to_vec(),
                )
            })
            .collect();
        assert_eq!(keys, [(b"old".to_vec(), b"2".to_vec()), (vec![], vec![])]);
    }
}
