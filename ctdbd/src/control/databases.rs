//! Database controls: the catalogue (GET_DBMAP, GET_DBNAME, GETDBPATH,
//! DB_GET_HEALTH, DB_OPEN_FLAGS), attach and detach, sequence numbers and
//! the READONLY and STICKY flags.  Traverses are in `traverse`, persistent
//! commits in `persistent`.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::db::Op;
use crate::ltdb::Kind;
use crate::{log_err, log_notice};
use ctdb_protocol::types::{
    DbIdEntry, DbMap, DB_FLAGS_PERSISTENT, DB_FLAGS_READONLY, DB_FLAGS_REPLICATED, DB_FLAGS_STICKY,
    RECOVERY_ACTIVE,
};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, DbId};

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
    r.add(ControlOpcode::SetDbReadonly, set_flag);
    r.add(ControlOpcode::SetDbSticky, set_flag);
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
/// number as clients' stores do, and the number is watched: a change is
/// told to the other active nodes (see `watch_seqnum`).
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
    let after = Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if st == 0 {
            d.watch_seqnum(id);
        }
        (st, data)
    });
    d.db_op(req, id, Op::EnableSeqnum, after)
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
    let after = Box::new(move |d: &mut Daemon, st: i32, data: Vec<u8>| {
        if st == 0 {
            d.seqnum_updated(id, &data);
        }
        (st, Vec::new())
    });
    d.db_op(req, id, Op::IncrementSeqnum, after)
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
    d.drop_traverses_of(id);
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
