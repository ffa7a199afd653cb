//! The databases concern on the loop's side: the catalogue (`DbInfo`), work
//! handed to the database side (every job goes out as an `Action::Database`,
//! in order) with its tracked continuation, the answers coming back, attach,
//! thaw.  Record calls are in `call.rs`; the tdb side is `db/`.

use crate::actions::Action;
use crate::control::{name_in, Outcome, Request};
use crate::daemon::{reply_of, Daemon, DbContinuation, ReplyTo};
use crate::db::{self, DbInfo, Done, Job, Op, Reply};
use crate::requests::Tag;
use crate::timers::TimerEvent;
use crate::{log_err, log_notice};
use ctdb_protocol::ltdb::RecData;
use ctdb_protocol::types::DB_FLAGS_PERSISTENT;
use ctdb_protocol::wire::Reader;
use ctdb_protocol::Layout;
use std::time::{Duration, Instant};

/// Catalogue bookkeeping run when a control's database work ends: it gets
/// the (status, data) of the work and returns the reply's.
pub type AfterWork = Box<dyn FnOnce(&mut Daemon, i32, Vec<u8>) -> (i32, Vec<u8>)>;

/// The (status, data) a control reply carries for a database answer.
fn control_result(reply: Reply) -> (i32, Vec<u8>) {
    match reply {
        Reply::Ok => (0, Vec::new()),
        Reply::Seqnum(n) => (0, n.to_le_bytes().to_vec()),
        Reply::Failed(why) => {
            log_err!("{}", why);
            (-1, Vec::new())
        }
        _ => (-1, Vec::new()),
    }
}

impl Daemon {
    /// The attached (open) database with this id.
    pub(crate) fn find_db(&self, id: u32) -> Option<&DbInfo> {
        self.dbs.iter().find(|d| d.id == id && d.ready)
    }

    /// The catalogue entry with this id, open or not.
    pub(crate) fn db_mut(&mut self, id: u32) -> Option<&mut DbInfo> {
        self.dbs.iter_mut().find(|d| d.id == id)
    }

    /// The attached database named by a leading u32 db_id.
    pub(crate) fn db_from_data(&self, data: &[u8]) -> Result<&DbInfo, Outcome> {
        let id = Reader::new(data)
            .u32("db_id")
            .map_err(|_| Outcome::fail("missing database id"))?;
        self.find_db(id).ok_or_else(|| {
            log_err!("Unknown db_id 0x{:08x}", id);
            Outcome::fail("unknown database")
        })
    }

    /// The id of the attached database named by a leading u32 db_id, if any.
    pub(crate) fn db_id_arg(&self, data: &[u8]) -> Option<u32> {
        let id = Reader::new(data).u32("db_id").ok()?;
        match self.find_db(id) {
            Some(_) => Some(id),
            None => {
                log_err!("Unknown db_id 0x{:08x}", id);
                None
            }
        }
    }

    /// Queues work on database `id` whose answer runs `then` (or times out
    /// after `timeout`).
    pub(crate) fn submit(
        &mut self,
        id: u32,
        op: Op,
        then: DbContinuation,
        timeout: Option<Duration>,
    ) -> Tag {
        let tag = self.track(then, timeout);
        self.outbox
            .push(Action::Database(Job::Op { id, tag: tag.0, op }));
        tag
    }

    /// Queues work on database `id` under a tag already tracked.
    pub(crate) fn submit_tagged(&mut self, tag: Tag, id: u32, op: Op) {
        self.outbox
            .push(Action::Database(Job::Op { id, tag: tag.0, op }));
    }

    /// Queues work on database `id` whose answer nobody waits for.
    pub(crate) fn submit_untracked(&mut self, id: u32, op: Op) {
        let tag = self.requests.new_tag();
        self.outbox
            .push(Action::Database(Job::Op { id, tag: tag.0, op }));
    }

    /// Hands a job to the database side; if that side is gone, the job's
    /// waiter is answered with the failure.
    pub(crate) fn submit_job(&mut self, job: Job) {
        if let Err(e) = self.db_tx.send(job) {
            let gone = "database thread gone".to_string();
            match e.0 {
                Job::Op { tag, .. } => self.answer(Tag(tag), Reply::Failed(gone)),
                Job::Open { id, .. } => self.opened(id, Err(gone)),
                Job::Stop => {}
            }
        }
    }

    /// A control whose reply carries the result of database work; `after`
    /// updates the catalogue when it ends.
    pub(crate) fn db_op(&mut self, req: &Request, id: u32, op: Op, after: AfterWork) -> Outcome {
        let to = req.reply_to();
        let noreply = req.noreply();
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            let (st, data) = control_result(reply_of(done));
            let (st, data) = after(d, st, data);
            if !noreply {
                d.answer_request(to, st, &data, None);
            }
        });
        self.submit(id, op, then, None);
        Outcome::Later
    }

    /// `db_op` with no bookkeeping.
    pub(crate) fn db_op_plain(&mut self, req: &Request, id: u32, op: Op) -> Outcome {
        self.db_op(req, id, op, Box::new(|_, st, data| (st, data)))
    }

    /// Takes every answer the database side has sent.
    pub(crate) fn drain_db_replies(&mut self) {
        while let Ok(done) = self.db_rx.try_recv() {
            match done {
                Done::Op { tag, reply } => self.answer(Tag(tag), reply),
                Done::Opened { id, result } => self.opened(id, result),
                Done::Unhealthy { id, reason } => {
                    if let Some(d) = self.db_mut(id) {
                        log_err!("Database {} is unhealthy: {}", d.name, reason);
                        d.unhealthy = Some(reason);
                    }
                }
            }
        }
    }

    /// A database finished opening: attaches waiting for it are answered and
    /// a volatile one gets its vacuum timer.
    pub(crate) fn opened(&mut self, id: u32, result: Result<(), String>) {
        let waiters = self.attach_waiters.remove(&id).unwrap_or_default();
        if let Err(e) = result {
            log_err!("{}", e);
            self.dbs.retain(|d| d.id != id);
            for wt in waiters {
                self.answer_request(wt, -1, &[], None);
            }
            self.release_attach_gate(id);
            return;
        }
        let interval = self.vacuum_interval();
        let d = self.db_mut(id).expect("db in catalogue");
        d.ready = true;
        log_notice!(
            "Attached to database '{}' with flags 0x{:x}",
            d.path.display(),
            d.tdb_flags
        );
        if d.kind() == crate::ltdb::Kind::Volatile {
            d.vacuum = db::VacuumTimer::default();
            d.vacuum.arm(Instant::now(), interval);
            self.arm_vacuum_timer(id);
        } else {
            log_err!("Vacuuming is disabled for non-volatile database {}", d.name);
        }
        self.announce_attach(id);
        let id_bytes = id.to_le_bytes();
        for wt in waiters {
            self.answer_request(wt, 0, &id_bytes, None);
        }
        self.release_attach_gate(id);
    }

    /// DB_ATTACH*: an attached database answers at once; a new one is
    /// opened on the database side and the reply waits for it.
    pub(crate) fn attach(&mut self, req: &Request, flags: u8) -> Outcome {
        let Some(name) = name_in(req.data()).filter(|n| !n.is_empty()) else {
            return Outcome::fail("missing database name");
        };
        if self.state.tunables.allow_client_db_attach == 0 {
            log_err!(
                "DB Attach to database {} denied by tunable AllowClientDBAttach == 0",
                name
            );
            return Outcome::status(-1);
        }
        if let Some(o) = self.attach_in_recovery(req, &name) {
            return o;
        }
        if let Some(d) = self.dbs.iter().find(|d| d.name == name) {
            if d.flags & flags != flags {
                log_err!(
                    "Error: Failed to re-attach with 0x{:x} flags, database has 0x{:x} flags",
                    flags,
                    d.flags
                );
                return Outcome::status(-1);
            }
            if !d.ready {
                let id = d.id;
                self.gate_node_attach(req, id);
                self.attach_waiters
                    .entry(id)
                    .or_default()
                    .push(req.reply_to());
                return Outcome::Later;
            }
            return Outcome::value(&d.id);
        }
        let id = db::db_id(&name);
        if let Some(other) = self.dbs.iter().find(|d| d.id == id) {
            log_err!(
                "db_id 0x{:x} hash collision. name1='{}' name2='{}'",
                id,
                name,
                other.name
            );
            return Outcome::status(-1);
        }
        self.open_new(id, name, flags, Some(req.reply_to()));
        self.gate_node_attach(req, id);
        Outcome::Later
    }

    /// An attach from another node of a database still opening: that
    /// node's later packets must find it open (see `AttachGate`).
    fn gate_node_attach(&mut self, req: &Request, id: u32) {
        if matches!(req.origin, crate::transport::Origin::Node(p) if p.0 != self.state.pnn) {
            self.attach_gate.wait_for(id);
        }
    }

    /// Enters a new database in the catalogue and queues its open.
    pub(crate) fn open_new(&mut self, id: u32, name: String, flags: u8, waiter: Option<ReplyTo>) {
        let dir = if flags & DB_FLAGS_PERSISTENT != 0 {
            &self.state.config.persistent_dir
        } else {
            &self.state.config.volatile_dir
        };
        let path = dir.join(format!("{}.{}", name, self.state.pnn));
        let tdb_flags = db::tdb_flags(flags, self.state.config.tdb_mutexes);
        self.dbs.insert(
            0,
            DbInfo {
                id,
                name,
                flags,
                path: path.clone(),
                tdb_flags,
                ready: false,
                unhealthy: None,
                frozen: false,
                invalid_records: false,
                generation: self.state.generation,
                transaction: None,
                deferred: Vec::new(),
                push: None,
                stats: Default::default(),
                vacuum: Default::default(),
            },
        );
        let waiters = self.attach_waiters.entry(id).or_default();
        waiters.extend(waiter);
        let job = Job::Open {
            id,
            path,
            hash_size: self.state.tunables.database_hash_size,
            tdb_flags,
            max_dead: self.state.tunables.database_max_dead,
            kind: db::kind_of(flags),
        };
        self.outbox.push(Action::Database(job));
    }

    /// DB_THAW: a recovery transaction left open is cancelled, the calls
    /// held back by the freeze are replayed in order and the calls sent to
    /// other nodes are sent again (call.rs).
    pub(crate) fn thaw(&mut self, id: u32) {
        let generation = self.state.generation;
        let Some(d) = self.db_mut(id) else {
            return;
        };
        log_notice!("Thaw db: {} generation {}", d.name, generation);
        let cancel = d.transaction.take().is_some();
        d.frozen = false;
        d.invalid_records = false;
        if cancel {
            self.submit_untracked(id, Op::TransactionCancel);
        }
        self.replay_deferred(id);
        self.release_held_packets(id);
        self.resend_calls(id);
    }

    /// Arms the timer for a volatile database's next vacuum run, as its
    /// `VacuumTimer` says.
    pub(crate) fn arm_vacuum_timer(&mut self, db_id: u32) {
        if let Some(at) = self
            .dbs
            .iter()
            .find(|d| d.id == db_id)
            .and_then(|d| d.vacuum.next)
        {
            self.arm_timer(at, TimerEvent::Vacuum { db_id });
        }
    }

    /// Sends records of a traverse to `srvid`; an empty key and value is
    /// the end marker.
    pub(crate) fn send_records(
        &mut self,
        srvid: u64,
        trav_reqid: u32,
        recs: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        let rec = |key, data| RecData {
            reqid: trav_reqid,
            key,
            data,
        };
        for (k, v) in recs {
            self.deliver_message(srvid, &rec(k, v).to_bytes());
        }
    }
}
