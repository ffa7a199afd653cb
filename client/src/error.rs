//! The one error type of the client: every failure a request or a local
//! record operation can end with, and the errno the C API reports for it.

use std::fmt;

use ctdb_protocol::{ControlOpcode, DecodeError};
use tdb_engine::TdbError;

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientError {
    /// The daemon's socket could not be reached.
    Connect {
        /// The socket path tried.
        path: String,
        /// The errno of socket(2)/connect(2).
        errno: i32,
    },
    /// The daemon closed the connection or it failed; nothing more is answered.
    Disconnected,
    /// The daemon sent bytes that are not a valid packet or payload.
    Protocol(DecodeError),
    /// A control came back with a non-zero status.
    ControlFailed {
        /// The control that failed.
        opcode: ControlOpcode,
        /// The daemon's status.
        status: i32,
        /// The daemon's error message, when it sent one.
        message: Option<String>,
    },
    /// A record call (migration) came back with an error.
    CallFailed {
        /// The status of the reply.
        status: i32,
    },
    /// The reply was not the one the request expects (a daemon bug).
    UnexpectedReply,
    /// No request with this id is known to the connection.
    UnknownRequest,
    /// The request has not completed yet.
    NotDone,
    /// The request was of another kind than the result asked for.
    WrongKind,
    /// The local tdb of a database failed.
    Tdb(TdbError),
    /// The local tdb of a database could not be opened.
    Open {
        /// The path the daemon gave.
        path: String,
        /// The errno of the open.
        errno: i32,
    },
    /// The connection already holds a record lock (one at a time, as libctdb).
    LockHeld,
    /// The lock given is not the one this connection holds.
    NotHeld,
    /// The lock is a read-only one and cannot be written.
    ReadOnly,
    /// A persistent database's records are not written under a record lock.
    Persistent,
    /// No database with this handle is attached.
    UnknownDatabase,
    /// The daemon gave no answer within the time allowed.
    TimedOut,
    /// Transactions run on persistent databases only.
    Volatile,
    /// A g_lock record is not a list of holders (its length given).
    BadGLock(usize),
    /// The database's sequence number record has a length other than 8.
    BadSeqnum(usize),
    /// This process already holds the g_lock it asks for.
    Deadlock,
    /// After a failed commit the sequence number is neither the old one
    /// nor the next: another transaction came between.
    SeqnumMismatch {
        /// The number the commit was to set.
        expected: u64,
        /// The number found.
        found: u64,
    },
}

impl ClientError {
    /// The errno the C API sets for this error.
    pub fn errno(&self) -> i32 {
        match self {
            ClientError::Connect { errno, .. } | ClientError::Open { errno, .. } => *errno,
            ClientError::Disconnected => libc::EPIPE,
            ClientError::Protocol(_) | ClientError::UnexpectedReply => libc::EIO,
            ClientError::ControlFailed { .. } | ClientError::CallFailed { .. } => libc::EIO,
            ClientError::Tdb(_) => libc::EIO,
            ClientError::UnknownRequest | ClientError::WrongKind | ClientError::NotDone => {
                libc::EINVAL
            }
            ClientError::LockHeld => libc::EBUSY,
            ClientError::NotHeld | ClientError::ReadOnly | ClientError::UnknownDatabase => {
                libc::EBADF
            }
            ClientError::Persistent => libc::EINVAL,
            ClientError::TimedOut => libc::ETIMEDOUT,
            ClientError::Volatile => libc::EINVAL,
            ClientError::BadGLock(_) | ClientError::BadSeqnum(_) => libc::EIO,
            ClientError::SeqnumMismatch { .. } => libc::EIO,
            ClientError::Deadlock => libc::EDEADLK,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, errno } => {
                write!(f, "cannot connect to ctdbd at {path}: errno {errno}")
            }
            ClientError::Disconnected => write!(f, "the connection to ctdbd is closed"),
            ClientError::Protocol(e) => write!(f, "malformed packet from ctdbd: {e}"),
            ClientError::ControlFailed {
                opcode,
                status,
                message,
            } => write!(
                f,
                "control {} failed with status {status}{}",
                opcode.name(),
                message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            ClientError::CallFailed { status } => {
                write!(f, "record call failed with status {status}")
            }
            ClientError::UnexpectedReply => write!(f, "ctdbd answered with an unexpected packet"),
            ClientError::UnknownRequest => write!(f, "no such request on this connection"),
            ClientError::NotDone => write!(f, "the request has not completed"),
            ClientError::WrongKind => write!(f, "the request is of another kind"),
            ClientError::Tdb(e) => write!(f, "local tdb: {e}"),
            ClientError::Open { path, errno } => {
                write!(f, "cannot open the local tdb {path}: errno {errno}")
            }
            ClientError::LockHeld => write!(f, "a record lock is already held"),
            ClientError::NotHeld => write!(f, "this record lock is not held"),
            ClientError::ReadOnly => write!(f, "a read-only record lock cannot write"),
            ClientError::Persistent => {
                write!(
                    f,
                    "records of a persistent database are not written this way"
                )
            }
            ClientError::UnknownDatabase => write!(f, "no such attached database"),
            ClientError::TimedOut => write!(f, "ctdbd did not answer in time"),
            ClientError::Volatile => write!(f, "transactions need a persistent database"),
            ClientError::BadGLock(n) => {
                write!(f, "a g_lock record of {n} bytes is not a holder list")
            }
            ClientError::BadSeqnum(n) => {
                write!(f, "the sequence number record has {n} bytes, not 8")
            }
            ClientError::Deadlock => write!(f, "this process holds the g_lock already"),
            ClientError::SeqnumMismatch { expected, found } => write!(
                f,
                "sequence number {found:#x} after the commit, expected {expected:#x}"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> ClientError {
        ClientError::Protocol(e)
    }
}

impl From<TdbError> for ClientError {
    fn from(e: TdbError) -> ClientError {
        ClientError::Tdb(e)
    }
}
