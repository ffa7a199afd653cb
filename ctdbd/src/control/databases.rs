//! Database controls: the catalogue (GET_DBMAP, GET_DBNAME, GETDBPATH,
//! DB_GET_HEALTH, DB_OPEN_FLAGS), attach and detach, sequence numbers,
//! traverses, the READONLY and STICKY flags, and TRANS3_COMMIT.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::db::traverse::{Item as TraverseItem, Stream as TraverseStream};
use crate::db::{Op, Reply};
use crate::ltdb::{self, Kind};
use crate::requests::Completion;
use crate::requests::Tag;
use crate::{log_err, log_info, log_notice};
use ctdb_protocol::ltdb::RecBuffer;
use ctdb_protocol::types::{
    DbIdEntry, DbMap, TraverseStart, DB_FLAGS_PERSISTENT, DB_FLAGS_READONLY, DB_FLAGS_REPLICATED,
    DB_FLAGS_STICKY, RECOVERY_ACTIVE, RECOVERY_NORMAL,
};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, DbId, Layout};
use std::time::{Duration, Instant};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::GetDbMap, db_map);
    r.add(ControlOpcode::GetDbName, |d, req| {
        db_string(d, req, |db| Some(db.name.clone()))
    });
    r.add(ControlOpcode::GetDbPath, |d, req| {
        db_string(d, req, |db| Some(db.path.display().to_string()))
    });
    // An empty reply (NULL) means healthy.
    r.add(ControlOpcode::DbGetHealth, |d, req| {
        db_string(d, req, |db| db.unhealthy.clone())
    });
    r.add(ControlOpcode::DbOpenFlags, |d, req| {
        match d.db_from_data(req.data()) {
            Ok(db) => Outcome::value(&(db.tdb_flags as i32)),
            Err(o) => o,
        }
    });
    r.add(ControlOpcode::DbAttach, |d, req| d.attach(req, 0));
    r.add(ControlOpcode::DbAttachPersistent, |d, req| {
        d.attach(req, DB_FLAGS_PERSISTENT)
    });
    r.add(ControlOpcode::DbAttachReplicated, |d, req| {
        d.attach(req, DB_FLAGS_REPLICATED)
    });
    r.add(ControlOpcode::DbDetach, detach);
    r.add(ControlOpcode::GetDbSeqnum, get_seqnum);
    r.add(ControlOpcode::EnableSeqnum, enable_seqnum);
    r.add(ControlOpcode::UpdateSeqnum, update_seqnum);
    r.add(ControlOpcode::TraverseStart, traverse_start);
    r.add(ControlOpcode::TraverseStartExt, traverse_start);
    r.add(ControlOpcode::SetDbReadonly, set_flag);
    r.add(ControlOpcode::SetDbSticky, set_flag);
    r.add(ControlOpcode::Trans3Commit, trans3_commit);
}

fn db_map(d: &mut Daemon, _: &Request) -> Outcome {
    let map = d.dbs.iter().filter(|d| d.ready).map(|db| DbIdEntry {
        db_id: DbId(db.id),
        flags: db.flags,
    });
    Outcome::value(&DbMap(map.collect()))
}

/// A string about the database named by the payload (none: empty reply).
fn db_string(
    d: &mut Daemon,
    req: &Request,
    what: impl Fn(&crate::db::DbInfo) -> Option<String>,
) -> Outcome {
    match d.db_from_data(req.data()) {
        // Samba's "string": the bytes and a NUL; none is an empty reply.
        Ok(db) => match what(db) {
            Some(s) => Outcome::value(&s),
            None => Outcome::ok(Vec::new()),
        },
        Err(o) => o,
    }
}

/// GET_DB_SEQNUM: db_id and 4 bytes of padding, exactly; refused while the
/// database is frozen outside a recovery transaction.
fn get_seqnum(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 8 {
        return Outcome::bad_size("GET_DB_SEQNUM", req.data().len());
    }
    let Ok(id) = Reader::new(req.data()).u32("db_id") else {
        return Outcome::fail("missing database id");
    };
    let Some(db) = d.find_db(id) else {
        log_err!("Unknown db 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if db.frozen && db.transaction.is_none() {
        return Outcome::status(-1);
    }
    d.db_op_plain(req, id, Op::GetSeqnum)
}

/// The daemon's own stores (record migrations) then bump the tdb sequence
/// number as clients' stores do.  Samba also polls the number every
/// SeqnumInterval ms and broadcasts UPDATE_SEQNUM to the other active nodes;
/// alone, there is nobody to tell.
fn enable_seqnum(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 4 {
        return Outcome::bad_size("ENABLE_SEQNUM", req.data().len());
    }
    let Ok(id) = Reader::new(req.data()).u32("db_id") else {
        return Outcome::status(-1);
    };
    if d.find_db(id).is_none() {
        log_err!("Unknown db_id 0x{:x} in ctdb_ltdb_enable_seqnum", id);
        return Outcome::status(-1);
    }
    d.db_op_plain(req, id, Op::EnableSeqnum)
}

fn update_seqnum(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 4 {
        return Outcome::bad_size("UPDATE_SEQNUM", req.data().len());
    }
    let Ok(id) = Reader::new(req.data()).u32("db_id") else {
        return Outcome::status(-1);
    };
    if req.header.srcnode.0 == d.state.pnn {
        // Samba ignores its own broadcast ("don't update ourselves").
        return Outcome::status(0);
    }
    if d.find_db(id).is_none() {
        log_err!("Unknown db_id 0x{:x} in ctdb_ltdb_update_seqnum", id);
        return Outcome::status(-1);
    }
    d.db_op_plain(req, id, Op::IncrementSeqnum)
}

/// ctdb_traverse_start: db_id u32, reqid u32, srvid u64; the _EXT form adds
/// withemptyrecords (bool) and 7 bytes padding.  The records go to srvid as
/// messages, then an empty end marker; after TraverseTimeout seconds the
/// end marker goes out regardless, as in Samba.
fn traverse_start(d: &mut Daemon, req: &Request) -> Outcome {
    let ext = req.control.opcode == ControlOpcode::TraverseStartExt;
    let want = if ext { 24 } else { 16 };
    if req.data().len() != want {
        log_err!(
            "Bad record size in traverse start ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    }
    // Any non-zero withemptyrecords byte is true, as for a C bool.
    let mut r = Reader::new(req.data());
    let Ok(start) = TraverseStart::read(&mut r) else {
        return Outcome::status(-1);
    };
    let (id, trav_reqid, srvid) = (start.db_id.0, start.reqid, start.srvid.0);
    let with_empty = ext && r.u8("withemptyrecords").is_ok_and(|b| b != 0);
    let Some(db) = d.find_db(id) else {
        return Outcome::status(-1);
    };
    if let Some(why) = &db.unhealthy {
        if d.state.tunables.allow_unhealthy_db_read == 0 {
            log_err!("db({}) unhealthy in traverse start: {}", db.name, why);
            return Outcome::status(-1);
        }
    }
    let (sink, stream) = crate::db::traverse::stream_pair();
    let timeout = Duration::from_secs(d.state.tunables.traverse_timeout as u64);
    let tag = d.track_with(
        |tag| Box::new(move |d: &mut Daemon, done| d.traverse_expired(tag, done)),
        Some(timeout),
    );
    d.submit_tagged(tag, id, Op::Traverse { with_empty, sink });
    d.traverses.insert(
        tag,
        ActiveTraverse {
            db_id: id,
            srvid,
            trav_reqid,
            stream,
            records: 0,
        },
    );
    Outcome::status(0)
}

/// Unsent bytes a traverse's receiving client may have before the traverse
/// waits for it to read.
const TRAVERSE_BACKLOG: usize = 4 << 20;

/// A traverse in flight: its records stream from the database's worker and
/// go to `srvid` as they arrive, then the end marker.
pub struct ActiveTraverse {
    /// The database walked.
    pub db_id: u32,
    /// Where the records go.
    pub srvid: u64,
    /// The client's traverse id, in every record.
    pub trav_reqid: u32,
    /// The worker's batches.
    pub stream: TraverseStream,
    /// Records sent so far.
    pub records: u32,
}

impl Daemon {
    /// Forwards what the traverses' workers streamed while the receiving
    /// clients keep up: a traverse whose clients have more than
    /// TRAVERSE_BACKLOG bytes unsent waits (and its worker with it, the
    /// stream being bounded) until they read.
    pub(crate) fn pump_traverses(&mut self) {
        let tags: Vec<Tag> = self.traverses.keys().copied().collect();
        for tag in tags {
            self.pump_traverse(tag);
        }
    }

    fn pump_traverse(&mut self, tag: Tag) {
        loop {
            let Some(t) = self.traverses.get(&tag) else {
                return;
            };
            let (srvid, trav_reqid) = (t.srvid, t.trav_reqid);
            if self.srvid_backlog(srvid) > TRAVERSE_BACKLOG {
                return;
            }
            match t.stream.try_next() {
                None => return,
                Some(TraverseItem::Batch(recs)) => {
                    if let Some(t) = self.traverses.get_mut(&tag) {
                        t.records += recs.len() as u32;
                    }
                    self.send_records(srvid, trav_reqid, recs);
                }
                Some(TraverseItem::End(result)) => {
                    if let Err(why) = result {
                        let db_id = self.traverses.get(&tag).map_or(0, |t| t.db_id);
                        log_err!("Traverse of db 0x{:08x} failed: {}", db_id, why);
                    }
                    self.end_traverse(tag);
                    // Retires the traverse's timeout.
                    self.answer(tag, Reply::Ok);
                    return;
                }
            }
        }
    }

    /// The most bytes any client that gets `srvid` messages has not yet
    /// written out.
    fn srvid_backlog(&self, srvid: u64) -> usize {
        self.transport
            .live()
            .filter(|(c, _)| self.registrations.copies(*c, srvid) > 0)
            .map(|(c, _)| self.transport.unsent(c))
            .max()
            .unwrap_or(0)
    }

    /// Sends a traverse's end marker and forgets it (its stream is dropped,
    /// which stops its walk).
    fn end_traverse(&mut self, tag: Tag) {
        let Some(t) = self.traverses.remove(&tag) else {
            return;
        };
        self.send_records(t.srvid, t.trav_reqid, vec![(Vec::new(), Vec::new())]);
        let name = self
            .dbs
            .iter()
            .find(|d| d.id == t.db_id)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        log_notice!(
            "Ending traverse on DB {} (id {}), records {}",
            name,
            t.trav_reqid,
            t.records
        );
    }

    /// TraverseTimeout passed before the traverse's end, as in Samba: the
    /// end marker goes out now and the rest of the walk is dropped.
    fn traverse_expired(&mut self, tag: Tag, done: Completion<Reply>) {
        if done != Completion::TimedOut {
            return;
        }
        let Some(t) = self.traverses.get(&tag) else {
            return;
        };
        let name = self
            .dbs
            .iter()
            .find(|d| d.id == t.db_id)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        log_err!("Traverse all timeout on database:{}", name);
        self.stats.timeouts.traverse += 1;
        self.end_traverse(tag);
    }
}

fn detach(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(id) = Reader::new(req.data()).u32("db_id") else {
        return Outcome::fail("missing database id");
    };
    let Some(db) = d.find_db(id) else {
        log_err!("Invalid dbid 0x{:08x} in DB detach", id);
        return Outcome::status(-1);
    };
    if d.state.tunables.allow_client_db_attach == 1 {
        log_err!("DB detach from database {} denied. Clients are allowed access to databases (AllowClientDBAccess == 1)", db.name);
        return Outcome::status(-1);
    }
    if db.kind() != Kind::Volatile {
        log_err!("Detaching non-volatile database {} denied", db.name);
        return Outcome::status(-1);
    }
    if d.state.recmode == RECOVERY_ACTIVE {
        log_err!("DB detach denied while in recovery");
        return Outcome::status(-1);
    }
    // Samba's daemon broadcasts the control to every connected node and
    // each detaches; here that is this node alone.  Its traverses end
    // without an end marker.
    let name = db.name.clone();
    d.dbs.retain(|d| d.id != id);
    d.submit_untracked(id, Op::Close);
    let doomed: Vec<_> = d
        .traverses
        .iter()
        .filter(|(_, t)| t.db_id == id)
        .map(|(t, _)| *t)
        .collect();
    d.traverses.retain(|_, t| t.db_id != id);
    d.requests.cancel_where(|t| doomed.contains(&t));
    log_notice!("Detached from database '{}'", name);
    Outcome::status(0)
}

fn set_flag(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(id) = d.db_id_arg(req.data()) else {
        return Outcome::status(-1);
    };
    let Some(db) = d.find_db(id) else {
        return Outcome::status(-1);
    };
    let readonly = req.control.opcode == ControlOpcode::SetDbReadonly;
    let (bit, what) = if readonly {
        (DB_FLAGS_READONLY, "Readonly")
    } else {
        (DB_FLAGS_STICKY, "Sticky")
    };
    if db.flags & bit != 0 {
        return Outcome::status(0);
    }
    if db.kind() != Kind::Volatile {
        log_err!(
            "Non-volatile databases do not support {} flag",
            what.to_lowercase()
        );
        return Outcome::status(-1);
    }
    if !readonly {
        let name = db.name.clone();
        if let Some(db) = d.db_mut(id) {
            db.flags |= bit;
        }
        log_notice!("{} property set on DB {}", what, name);
        return Outcome::status(0);
    }
    let mut ro = db.path.clone().into_os_string();
    ro.push(".RO");
    let op = Op::OpenTracking {
        path: ro.into(),
        hash_size: d.state.tunables.database_hash_size,
    };
    let after = Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if st == 0 {
            if let Some(db) = d.db_mut(id) {
                db.flags |= bit;
                log_notice!("Readonly property set on DB {}", db.name);
            }
        }
        (st, data)
    });
    d.db_op(req, id, op, after)
}

/// Persistent transactions: the records go to every active node in the vnn
/// map, which is only this node; the reply waits for the store.
fn trans3_commit(d: &mut Daemon, req: &Request) -> Outcome {
    if d.state.recmode != RECOVERY_NORMAL {
        log_info!("rejecting ctdb_control_trans3_commit when recovery active");
        return Outcome::status(-1);
    }
    let Ok(buf) = RecBuffer::read(&mut Reader::new(req.data())) else {
        return Outcome::fail("bad marshall buffer");
    };
    let id = buf.db_id.0;
    let Some(db) = d.find_db(id) else {
        log_err!(
            "ctdb_control_trans3_commit: Unknown database db_id[0x{:08x}]",
            id
        );
        return Outcome::status(-1);
    };
    if db.kind() == Kind::Volatile {
        return Outcome::status(-1);
    }
    let mut recs = Vec::with_capacity(buf.records.len());
    for rec in &buf.records {
        let Ok((h, value)) = rec.header() else {
            return Outcome::fail("record without header");
        };
        recs.push((rec.key.clone(), ltdb::Header::from(h), value.to_vec()));
    }
    d.stats.childwrite_calls += 1;
    d.stats.pending_childwrite_calls += 1;
    let started = Instant::now();
    let after = Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        d.stats.pending_childwrite_calls = d.stats.pending_childwrite_calls.saturating_sub(1);
        if st == 0 {
            d.stats
                .childwrite_latency
                .update(started.elapsed().as_secs_f64());
        }
        (st, data)
    });
    d.db_op(req, id, Op::PersistentStore { recs }, after)
}
