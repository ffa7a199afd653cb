//! Requests in progress on a connection: what each one is waiting for (its
//! job, which may take several packets) and how it ended.

use std::time::Instant;

use ctdb_protocol::packet::ReplyControl;
use ctdb_protocol::{ControlOpcode, DbId, Pnn, Srvid};

use crate::database::DbHandle;
use crate::error::ClientError;

/// The caller's handle of one request; unique among a connection's live
/// requests (it is the wire reqid of the request's first packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

/// The handle of a record lock held by a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockId(pub u64);

/// What `service` reports to the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The request finished (its result can be read now).
    Completed(RequestId),
    /// A message arrived for a srvid (for the caller's handlers).
    Message {
        /// The srvid it was sent to.
        srvid: Srvid,
        /// Its payload.
        data: Vec<u8>,
    },
    /// One record of a running traverse (the value without its header).
    TraverseRecord {
        /// The traverse request.
        id: RequestId,
        /// The record key.
        key: Vec<u8>,
        /// The record value.
        data: Vec<u8>,
    },
}

/// How a finished request ended well.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A control's reply (its status is interpreted by the typed readers).
    Control(ControlOpcode, ReplyControl),
    /// The database is attached.
    Attached(DbHandle),
    /// The record is here and locked.
    Locked(LockId),
    /// The cluster leader named by a leader broadcast.
    Leader(Pnn),
    /// A traverse delivered every record.
    Finished,
}

/// The steps of an attach: DB_ATTACH, GETDBPATH, DB_OPEN_FLAGS.
#[derive(Clone, Debug)]
pub enum AttachStep {
    /// Waiting for the database id.
    Attach,
    /// Waiting for the path of the local tdb.
    Path(DbId),
    /// Waiting for the tdb flags to open it with.
    Flags(DbId, String),
}

/// The steps of a traverse.
#[derive(Clone, Debug)]
pub enum TraverseStep {
    /// REGISTER_SRVID for the record messages sent.
    Register,
    /// TRAVERSE_START_EXT sent, records arriving.
    Records,
    /// DEREGISTER_SRVID sent; the traverse ends with this result.
    Deregister(Result<(), ClientError>),
}

/// The steps of finding the leader.
#[derive(Clone, Debug)]
pub enum LeaderStep {
    /// REGISTER_SRVID for the leader broadcasts sent.
    Register,
    /// Waiting for a broadcast.
    Waiting,
    /// DEREGISTER_SRVID sent; the request ends with this result.
    Deregister(Result<Pnn, ClientError>),
}

/// What a request is doing.
#[derive(Clone, Debug)]
pub enum Job {
    /// The GET_PNN a connection sends for itself; it reports nothing.
    OwnPnn,
    /// A single control.
    Control(ControlOpcode),
    /// Attaching a database.
    Attach {
        /// Its name.
        name: String,
        /// True for a persistent database.
        persistent: bool,
        /// Where the attach is.
        step: AttachStep,
    },
    /// Migrating a record here to lock it.
    Migrate {
        /// The database.
        db: DbHandle,
        /// The key.
        key: Vec<u8>,
        /// True for a read-only copy.
        readonly: bool,
    },
    /// Traversing a database.
    Traverse {
        /// The database.
        db: DbHandle,
        /// Where the records are sent.
        srvid: Srvid,
        /// Where the traverse is.
        step: TraverseStep,
    },
    /// Waiting for a leader broadcast.
    Leader {
        /// Where the request is.
        step: LeaderStep,
        /// When waiting gives up.
        deadline: Instant,
    },
}

/// A request in progress or finished and not yet freed.
pub struct Request {
    /// What it does.
    pub job: Job,
    /// Set once it ended.
    pub result: Option<Result<Outcome, ClientError>>,
    /// The caller gave it up: it is dropped when it ends, without an event.
    pub cancelled: bool,
    /// True while one of its packets waits in the output queue.
    pub queued: bool,
    /// True once any packet of the request was queued.
    pub(crate) sent_any: bool,
}

impl Request {
    /// A new request for `job`.
    pub fn new(job: Job) -> Request {
        Request {
            job,
            result: None,
            cancelled: false,
            queued: false,
            sent_any: false,
        }
    }
}
