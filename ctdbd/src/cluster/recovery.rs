//! The leader's recovery run, after Samba's recovery helper: a sequence of
//! control batches to the nodes taking part, each waiting for every typed
//! reply before the next.
//!
//! 1. GET_NODEMAP from the leader: the connected nodes; GET_NODEMAP from
//!    each: those that see themselves active take part; GET_CAPABILITIES;
//!    GET_DBMAP (the databases and who has them).
//! 2. SET_RECMODE active, a new vnn map of the lmaster-capable nodes,
//!    START_RECOVERY, SETVNNMAP.
//! 3. GET_DBNAME of every database from the nodes that have it (all must
//!    agree), DB_ATTACH where a database is missing (those only the leader
//!    has first, as Samba's parallel recovery attaches them).
//! 4. For each database: DB_FREEZE, DB_TRANSACTION_START (tid =
//!    generation), collect (volatile: DB_PULL from every node at once, the
//!    copy of each record Samba's pull from one node after another would
//!    keep; persistent and replicated: GET_DB_SEQNUM and DB_PULL from the
//!    node with the highest), WIPE_DATABASE,
//!    DB_PUSH_START, the record buffers as messages, DB_PUSH_CONFIRM
//!    (counts must match), DB_TRANSACTION_COMMIT, DB_THAW.
//! 5. SET_RECMODE normal, END_RECOVERY.
//!
//! Pulled records are merged into a [`RecoveryDb`] as they arrive and are
//! pushed from it a few buffers per step, so the database is held once.

use super::batch::{Batch, BatchError, Request, Tags};
use super::recdb::{RecdbError, RecoveryDb};
use super::{log, vnnmap, Action, ControlAnswer, Level, Tag, Time};
use ctdb_protocol::packet::CONTROL_FLAG_ATTACH_RECOVERY;
use ctdb_protocol::types::{
    PullDbExt, TransDb, VnnMap, DB_FLAGS_PERSISTENT, DB_FLAGS_READONLY, DB_FLAGS_REPLICATED,
    DB_FLAGS_STICKY, LMASTER_ANY, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_INACTIVE, RECOVERY_ACTIVE,
    RECOVERY_NORMAL,
};
use ctdb_protocol::{ControlReply, ControlRequest, DbId, Generation, Pnn, Srvid};
use std::fmt;

/// What a recovery run needs to know.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The node running it.
    pub leader: Pnn,
    /// The generation it installs.
    pub generation: Generation,
    /// How long each batch may take (RecoverTimeout).
    pub timeout_ms: u64,
    /// Bytes after which a pushed record buffer ends (RecBufferSizeLimit).
    pub buffer_limit: usize,
    /// Record buffers sent per step before yielding.
    pub buffers_per_step: usize,
}

/// Why a recovery run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryError {
    /// A batch of controls failed.
    Control(BatchError),
    /// A reply had an unexpected type.
    UnexpectedReply(Pnn),
    /// No node takes part.
    NoNodes,
    /// Two nodes disagree on a database's flags.
    DbFlags(DbId),
    /// Two nodes disagree on a database's name.
    DbName(DbId, Pnn),
    /// The recovery database failed.
    Recdb(RecdbError),
    /// A pulled buffer was malformed or for another database.
    BadPull(Pnn, DbId),
    /// A node sent another number of records than it announced.
    PullCount {
        /// The node.
        pnn: Pnn,
        /// Records it announced.
        announced: u32,
        /// Records that arrived.
        received: u32,
    },
    /// A node received another number of records than were pushed.
    PushCount {
        /// The node.
        pnn: Pnn,
        /// Records it confirmed.
        confirmed: u32,
        /// Records pushed.
        pushed: u32,
    },
}

impl RecoveryError {
    /// The node whose answer made the run fail, if one did.
    pub fn culprit(&self) -> Option<Pnn> {
        match self {
            RecoveryError::Control(e) => Some(e.pnn()),
            RecoveryError::UnexpectedReply(p)
            | RecoveryError::DbName(_, p)
            | RecoveryError::BadPull(p, _)
            | RecoveryError::PullCount { pnn: p, .. }
            | RecoveryError::PushCount { pnn: p, .. } => Some(*p),
            RecoveryError::NoNodes | RecoveryError::DbFlags(_) | RecoveryError::Recdb(_) => None,
        }
    }
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Control(e) => write!(f, "{e}"),
            RecoveryError::UnexpectedReply(p) => write!(f, "unexpected reply from node {p}"),
            RecoveryError::NoNodes => write!(f, "no active nodes"),
            RecoveryError::DbFlags(id) => write!(f, "incompatible database flags for {id}"),
            RecoveryError::DbName(id, p) => {
                write!(f, "incompatible database name for {id} on node {p}")
            }
            RecoveryError::Recdb(e) => write!(f, "{e}"),
            RecoveryError::BadPull(p, id) => {
                write!(f, "invalid DB_PULL records for {id} from node {p}")
            }
            RecoveryError::PullCount {
                pnn,
                announced,
                received,
            } => write!(
                f,
                "mismatch ({received} != {announced}) in DB_PULL records from node {pnn}"
            ),
            RecoveryError::PushCount {
                pnn,
                confirmed,
                pushed,
            } => {
                write!(f, "node {pnn} received {confirmed} of {pushed} records")
            }
        }
    }
}

/// Where a run stands after an event.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Still running.
    Running,
    /// Finished: every node is in normal mode with this vnn map.
    Done(VnnMap),
    /// Failed (nodes may be left in recovery mode; the next run repairs).
    Failed(RecoveryError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    LocalNodemap,
    Nodemaps,
    Capabilities,
    Dbmaps,
    Active,
    StartRecovery,
    SetVnnmap,
    DbNames,
    Attach,
    Freeze,
    TransactionStart,
    Seqnums,
    Pull,
    Wipe,
    PushStart,
    Pushing,
    PushConfirm,
    Commit,
    Thaw,
    Normal,
    EndRecovery,
}

/// One node's DB_PULL of the database being recovered.
#[derive(Debug)]
struct Pull {
    /// The node pulled from.
    pnn: Pnn,
    /// Where its record buffers come.
    srvid: Srvid,
    /// Records received so far.
    received: u32,
}

#[derive(Debug)]
struct Db {
    id: DbId,
    flags: u8,
    holders: Vec<Pnn>,
    name: String,
}

impl Db {
    fn whole_copy(&self) -> bool {
        self.flags & (DB_FLAGS_PERSISTENT | DB_FLAGS_REPLICATED) != 0
    }
}

/// One recovery run.
pub struct RecoveryRun {
    s: RunSettings,
    step: Step,
    batch: Batch,
    nodes: Vec<Pnn>,
    caps: Vec<(Pnn, u32)>,
    dbs: Vec<Db>,
    db: usize,
    vnnmap: VnnMap,
    recdb: Option<RecoveryDb>,
    pulls: Vec<Pull>,
    pull_error: Option<RecoveryError>,
    push_srvid: Srvid,
    pushed: u32,
}

type Step2 = Result<Progress, RecoveryError>;

impl RecoveryRun {
    /// Starts a run: asks the leader for its nodemap.
    pub fn start(now: Time, tags: &mut Tags, s: RunSettings, out: &mut Vec<Action>) -> RecoveryRun {
        log(
            out,
            Level::Notice,
            format!("Recovery started, generation {}", s.generation),
        );
        let batch = Batch::send(
            tags,
            now,
            s.timeout_ms,
            vec![Request::new(s.leader, ControlRequest::GetNodeMap)],
            out,
        );
        RecoveryRun {
            vnnmap: VnnMap::default(),
            s,
            step: Step::LocalNodemap,
            batch,
            nodes: Vec::new(),
            caps: Vec::new(),
            dbs: Vec::new(),
            db: 0,
            recdb: None,
            pulls: Vec::new(),
            pull_error: None,
            push_srvid: Srvid(0),
            pushed: 0,
        }
    }

    /// A control reply arrived; true in the result's `Option` when it was
    /// this run's.
    pub fn on_reply(
        &mut self,
        now: Time,
        tags: &mut Tags,
        tag: Tag,
        a: &ControlAnswer,
        out: &mut Vec<Action>,
    ) -> Option<Progress> {
        if !self.batch.answer(tag, a) {
            return None;
        }
        Some(self.after_batch(now, tags, out))
    }

    /// A batch deadline fired.
    pub fn on_deadline(
        &mut self,
        now: Time,
        tags: &mut Tags,
        id: u32,
        out: &mut Vec<Action>,
    ) -> Option<Progress> {
        if !self.batch.deadline(id) {
            return None;
        }
        Some(self.after_batch(now, tags, out))
    }

    /// A message arrived: records of the running pulls go into the recovery
    /// database.
    pub fn on_message(&mut self, srvid: Srvid, data: &[u8]) -> bool {
        if self.step != Step::Pull {
            return false;
        }
        let Some(source) = self.pulls.iter().position(|p| p.srvid == srvid) else {
            return false;
        };
        let db_id = self.dbs[self.db].id;
        let pnn = self.pulls[source].pnn;
        let result = match self.recdb.as_mut() {
            Some(r) => match r.add_buffer(data, source as u32) {
                Ok((id, n)) if id == db_id => Ok(n),
                Ok(_) | Err(RecdbError::BadBuffer(_)) | Err(RecdbError::ShortRecord) => {
                    Err(RecoveryError::BadPull(pnn, db_id))
                }
                Err(e) => Err(RecoveryError::Recdb(e)),
            },
            None => Ok(0),
        };
        match result {
            Ok(n) => self.pulls[source].received += n,
            Err(e) => {
                if self.pull_error.is_none() {
                    self.pull_error = Some(e);
                }
            }
        }
        true
    }

    /// The driver executed the previous actions: push more buffers.
    pub fn on_continue(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Progress {
        if self.step != Step::Pushing {
            return Progress::Running;
        }
        match self.push_some(now, tags, out) {
            Ok(()) => Progress::Running,
            Err(e) => self.fail(e, out),
        }
    }

    /// Stops the run (the leader changed): releases what it registered.
    pub fn abort(&mut self, out: &mut Vec<Action>) {
        for p in self.pulls.drain(..) {
            out.push(Action::Deregister(p.srvid));
        }
        self.recdb = None;
    }

    fn fail(&mut self, e: RecoveryError, out: &mut Vec<Action>) -> Progress {
        self.abort(out);
        log(out, Level::Error, format!("Recovery failed: {e}"));
        Progress::Failed(e)
    }

    fn after_batch(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Progress {
        if !self.batch.is_complete() {
            return Progress::Running;
        }
        if let Some(e) = self.batch.failure.take() {
            return self.fail(RecoveryError::Control(e), out);
        }
        match self.advance(now, tags, out) {
            Ok(p) => p,
            Err(e) => self.fail(e, out),
        }
    }

    fn send(
        &mut self,
        now: Time,
        tags: &mut Tags,
        step: Step,
        reqs: Vec<Request>,
        out: &mut Vec<Action>,
    ) -> Step2 {
        self.step = step;
        log(out, Level::Debug, format!("recovery step {step:?}"));
        self.batch = Batch::send(tags, now, self.s.timeout_ms, reqs, out);
        if self.batch.is_complete() {
            // Nothing to wait for (no nodes to ask).
            return self.advance(now, tags, out);
        }
        Ok(Progress::Running)
    }

    fn to_all(&self, request: ControlRequest) -> Vec<Request> {
        self.nodes
            .iter()
            .map(|p| Request::new(*p, request.clone()))
            .collect()
    }

    fn replies<T>(
        &self,
        pick: impl Fn(&ControlReply) -> Option<T>,
    ) -> Result<Vec<(Pnn, T)>, RecoveryError> {
        let mut v = Vec::new();
        for a in &self.batch.replies {
            v.push((
                a.pnn,
                pick(&a.reply).ok_or(RecoveryError::UnexpectedReply(a.pnn))?,
            ));
        }
        Ok(v)
    }

    fn trans(&self) -> TransDb {
        TransDb {
            db_id: self.dbs[self.db].id,
            tid: self.s.generation.0,
        }
    }

    fn advance(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        match self.step {
            Step::LocalNodemap => {
                let maps = self.replies(|r| match r {
                    ControlReply::GetNodeMap(m) => Some(m.clone()),
                    _ => None,
                })?;
                let map = maps.into_iter().next().ok_or(RecoveryError::NoNodes)?.1;
                self.nodes = map
                    .0
                    .iter()
                    .filter(|n| n.flags & NODE_FLAGS_DISCONNECTED == 0)
                    .map(|n| n.pnn)
                    .collect();
                let reqs = self.to_all(ControlRequest::GetNodeMap);
                self.send(now, tags, Step::Nodemaps, reqs, out)
            }
            Step::Nodemaps => {
                let maps = self.replies(|r| match r {
                    ControlReply::GetNodeMap(m) => Some(m.clone()),
                    _ => None,
                })?;
                let active = |p: Pnn| {
                    maps.iter().any(|(from, m)| {
                        *from == p
                            && m.0
                                .iter()
                                .any(|n| n.pnn == p && n.flags & NODE_FLAGS_INACTIVE == 0)
                    })
                };
                self.nodes.retain(|p| active(*p));
                if self.nodes.is_empty() {
                    return Err(RecoveryError::NoNodes);
                }
                let reqs = self.to_all(ControlRequest::GetCapabilities);
                self.send(now, tags, Step::Capabilities, reqs, out)
            }
            Step::Capabilities => {
                let caps = self.replies(|r| match r {
                    ControlReply::GetCapabilities(c) => Some(*c),
                    _ => None,
                })?;
                self.caps = self
                    .nodes
                    .iter()
                    .map(|p| (*p, caps.iter().find(|(q, _)| q == p).map_or(0, |c| c.1)))
                    .collect();
                let reqs = self.to_all(ControlRequest::GetDbMap);
                self.send(now, tags, Step::Dbmaps, reqs, out)
            }
            Step::Dbmaps => {
                self.collect_dbmaps()?;
                let reqs = self.to_all(ControlRequest::SetRecmode(RECOVERY_ACTIVE));
                self.send(now, tags, Step::Active, reqs, out)
            }
            Step::Active => {
                log(out, Level::Notice, "Set recovery mode to ACTIVE".into());
                self.vnnmap = vnnmap::build(self.s.generation, &self.caps, self.s.leader);
                let reqs = self.to_all(ControlRequest::StartRecovery);
                self.send(now, tags, Step::StartRecovery, reqs, out)
            }
            Step::StartRecovery => {
                let reqs = self.to_all(ControlRequest::SetVnnMap(self.vnnmap.clone()));
                self.send(now, tags, Step::SetVnnmap, reqs, out)
            }
            Step::SetVnnmap => self.ask_names(now, tags, out),
            Step::DbNames => self.attach_missing(now, tags, out),
            Step::Attach => {
                self.db = 0;
                self.start_db(now, tags, out)
            }
            Step::Thaw => {
                self.db += 1;
                self.start_db(now, tags, out)
            }
            Step::Normal => {
                log(out, Level::Notice, "Set recovery mode to NORMAL".into());
                let reqs = self.to_all(ControlRequest::EndRecovery);
                self.send(now, tags, Step::EndRecovery, reqs, out)
            }
            Step::EndRecovery => {
                log(
                    out,
                    Level::Notice,
                    format!(
                        "Recovery complete: {} databases, generation {}",
                        self.dbs.len(),
                        self.s.generation
                    ),
                );
                Ok(Progress::Done(self.vnnmap.clone()))
            }
            _ => self.advance_db(now, tags, out),
        }
    }

    fn collect_dbmaps(&mut self) -> Result<(), RecoveryError> {
        let maps = self.replies(|r| match r {
            ControlReply::GetDbMap(m) => Some(m.clone()),
            _ => None,
        })?;
        self.dbs.clear();
        for pnn in self.nodes.clone() {
            let Some((_, map)) = maps.iter().find(|(p, _)| *p == pnn) else {
                continue;
            };
            for e in &map.0 {
                let flags = e.flags & !(DB_FLAGS_READONLY | DB_FLAGS_STICKY);
                match self.dbs.iter_mut().find(|d| d.id == e.db_id) {
                    Some(d) if d.flags != flags => return Err(RecoveryError::DbFlags(e.db_id)),
                    Some(d) => d.holders.push(pnn),
                    None => self.dbs.push(Db {
                        id: e.db_id,
                        flags,
                        holders: vec![pnn],
                        name: String::new(),
                    }),
                }
            }
        }
        Ok(())
    }

    fn start_db(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        let Some(db) = self.dbs.get(self.db) else {
            let reqs = self.to_all(ControlRequest::SetRecmode(RECOVERY_NORMAL));
            return self.send(now, tags, Step::Normal, reqs, out);
        };
        let reqs = self.to_all(ControlRequest::DbFreeze(db.id));
        self.send(now, tags, Step::Freeze, reqs, out)
    }

    /// GET_DBNAME of every database from the nodes that have it.
    fn ask_names(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        let reqs = self
            .dbs
            .iter()
            .flat_map(|db| {
                db.holders
                    .iter()
                    .map(|p| Request::new(*p, ControlRequest::GetDbName(db.id)))
            })
            .collect();
        self.send(now, tags, Step::DbNames, reqs, out)
    }

    /// Takes the names (every holder must agree) and attaches each database
    /// where it is missing. Samba recovers every database at once, so a
    /// database only the leader has (its name is known first) is attached
    /// before those other nodes have too; the order is kept, as it shows in
    /// `ctdb getdbmap` on the nodes where they are created.
    fn attach_missing(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        for db in &mut self.dbs {
            let names: Vec<(Pnn, &String)> = self
                .batch
                .replies
                .iter()
                .filter(|a| a.db_id == Some(db.id))
                .filter_map(|a| match &a.reply {
                    ControlReply::GetDbName(n) => Some((a.pnn, n)),
                    _ => None,
                })
                .collect();
            let first = names.first().map(|(_, n)| (*n).clone()).unwrap_or_default();
            if let Some((p, _)) = names.iter().find(|(_, n)| **n != first) {
                return Err(RecoveryError::DbName(db.id, *p));
            }
            db.name = first;
        }
        let leader_only = |db: &Db| db.holders == [self.s.leader];
        let order = self
            .dbs
            .iter()
            .filter(|d| leader_only(d))
            .chain(self.dbs.iter().filter(|d| !leader_only(d)));
        let mut reqs = Vec::new();
        for db in order {
            let request = if db.flags & DB_FLAGS_PERSISTENT != 0 {
                ControlRequest::DbAttachPersistent(db.name.clone())
            } else if db.flags & DB_FLAGS_REPLICATED != 0 {
                ControlRequest::DbAttachReplicated(db.name.clone())
            } else {
                ControlRequest::DbAttach(db.name.clone())
            };
            for p in self.nodes.iter().filter(|p| !db.holders.contains(p)) {
                reqs.push(Request {
                    flags: CONTROL_FLAG_ATTACH_RECOVERY,
                    ..Request::new(*p, request.clone())
                });
            }
        }
        self.send(now, tags, Step::Attach, reqs, out)
    }

    fn advance_db(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        let db_id = self.dbs[self.db].id;
        match self.step {
            Step::Freeze => {
                let reqs = self.to_all(ControlRequest::DbTransactionStart(self.trans()));
                self.send(now, tags, Step::TransactionStart, reqs, out)
            }
            Step::TransactionStart => {
                let db = &self.dbs[self.db];
                self.recdb = Some(RecoveryDb::new(db.id, db.whole_copy(), self.s.leader));
                if self.dbs[self.db].whole_copy() {
                    let reqs = self.to_all(ControlRequest::GetDbSeqnum(
                        ctdb_protocol::types::DbIdPadded { db_id },
                    ));
                    return self.send(now, tags, Step::Seqnums, reqs, out);
                }
                let from = self.nodes.clone();
                self.start_pulls(from, now, tags, out)
            }
            Step::Seqnums => {
                let seqnums = self.replies(|r| match r {
                    ControlReply::GetDbSeqnum(s) => Some(*s),
                    _ => None,
                })?;
                let mut best: Option<(Pnn, u64)> = None;
                for p in &self.nodes {
                    if let Some((_, s)) = seqnums.iter().find(|(q, _)| q == p) {
                        if best.is_none_or(|(_, b)| *s > b) {
                            best = Some((*p, *s));
                        }
                    }
                }
                let (pnn, seqnum) = best.ok_or(RecoveryError::NoNodes)?;
                log(
                    out,
                    Level::Info,
                    format!(
                        "Pull persistent db {} from node {pnn} with seqnum {seqnum:#x}",
                        self.dbs[self.db].name
                    ),
                );
                self.start_pulls(vec![pnn], now, tags, out)
            }
            Step::Pull => self.pull_done(now, tags, out),
            Step::Wipe => {
                self.push_srvid = tags.recovery_srvid();
                let ext = PullDbExt {
                    db_id,
                    lmaster: Pnn(0),
                    srvid: self.push_srvid,
                };
                let reqs = self.to_all(ControlRequest::DbPushStart(ext));
                self.send(now, tags, Step::PushStart, reqs, out)
            }
            Step::PushStart => {
                self.step = Step::Pushing;
                self.pushed = 0;
                self.push_some(now, tags, out)?;
                Ok(Progress::Running)
            }
            Step::PushConfirm => {
                let counts = self.replies(|r| match r {
                    ControlReply::DbPushConfirm(n) => Some(*n),
                    _ => None,
                })?;
                if let Some((pnn, n)) = counts.iter().find(|(_, n)| *n != self.pushed) {
                    return Err(RecoveryError::PushCount {
                        pnn: *pnn,
                        confirmed: *n,
                        pushed: self.pushed,
                    });
                }
                let reqs = self.to_all(ControlRequest::DbTransactionCommit(self.trans()));
                self.send(now, tags, Step::Commit, reqs, out)
            }
            Step::Commit => {
                let reqs = self.to_all(ControlRequest::DbThaw(db_id));
                self.send(now, tags, Step::Thaw, reqs, out)
            }
            _ => Ok(Progress::Running),
        }
    }

    /// Sends DB_PULL to every node of `from` at once, each streaming to a
    /// srvid of its own; the records merge as they come, whatever the
    /// order (`merge::preferred` with the node's place in `from`).
    fn start_pulls(
        &mut self,
        from: Vec<Pnn>,
        now: Time,
        tags: &mut Tags,
        out: &mut Vec<Action>,
    ) -> Step2 {
        let db_id = self.dbs[self.db].id;
        self.pulls = from
            .into_iter()
            .map(|pnn| {
                let srvid = tags.recovery_srvid();
                out.push(Action::Register(srvid));
                Pull {
                    pnn,
                    srvid,
                    received: 0,
                }
            })
            .collect();
        let reqs = self
            .pulls
            .iter()
            .map(|p| {
                let ext = PullDbExt {
                    db_id,
                    lmaster: LMASTER_ANY,
                    srvid: p.srvid,
                };
                Request::new(p.pnn, ControlRequest::DbPull(ext))
            })
            .collect();
        self.send(now, tags, Step::Pull, reqs, out)
    }

    /// Every pull answered: each node's count must match the records that
    /// came; then the wipe.
    fn pull_done(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) -> Step2 {
        let pulls = std::mem::take(&mut self.pulls);
        for p in &pulls {
            out.push(Action::Deregister(p.srvid));
        }
        if let Some(e) = self.pull_error.take() {
            return Err(e);
        }
        let counts = self.replies(|r| match r {
            ControlReply::DbPull(n) => Some(*n),
            _ => None,
        })?;
        for p in &pulls {
            let announced = counts.iter().find(|(q, _)| *q == p.pnn).map_or(0, |c| c.1);
            if announced != p.received {
                return Err(RecoveryError::PullCount {
                    pnn: p.pnn,
                    announced,
                    received: p.received,
                });
            }
        }
        if let Some(r) = &self.recdb {
            log(
                out,
                Level::Debug,
                format!(
                    "pulled {} records of {}",
                    r.records(),
                    self.dbs[self.db].name
                ),
            );
        }
        let reqs = self.to_all(ControlRequest::WipeDatabase(self.trans()));
        self.send(now, tags, Step::Wipe, reqs, out)
    }

    fn push_some(
        &mut self,
        now: Time,
        tags: &mut Tags,
        out: &mut Vec<Action>,
    ) -> Result<(), RecoveryError> {
        for _ in 0..self.s.buffers_per_step.max(1) {
            let next = self
                .recdb
                .as_mut()
                .and_then(|r| r.next_buffer(self.s.buffer_limit));
            let Some((data, count)) = next else {
                self.recdb = None;
                let reqs = self.to_all(ControlRequest::DbPushConfirm(self.dbs[self.db].id));
                self.send(now, tags, Step::PushConfirm, reqs, out)?;
                return Ok(());
            };
            if count == 0 {
                continue;
            }
            self.pushed += count;
            // One message for all: the local daemon sends each connected
            // node its own copy (the same REQ_MESSAGE a message per node
            // gives; a node that takes no part has no push for the srvid
            // and drops it).
            out.push(Action::Message {
                to: Pnn::BROADCAST_CONNECTED,
                srvid: self.push_srvid,
                data,
            });
        }
        out.push(Action::Continue);
        Ok(())
    }
}
