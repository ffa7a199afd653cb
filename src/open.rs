//! Opening, closing and reopening a database: header creation and validation,
//! CLEAR_IF_FIRST, hash detection, endianness, and logging.

use crate::error::{OpenError, Result};
use crate::hash::HashFunction;
use crate::tdb::Tdb;
use std::any::Any;
use std::ffi::CStr;
use std::sync::Arc;

/// Severity of a log message, the values of C `enum tdb_debug_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum DebugLevel {
    /// TDB_DEBUG_FATAL
    Fatal = 0,
    /// TDB_DEBUG_ERROR
    Error = 1,
    /// TDB_DEBUG_WARNING
    Warning = 2,
    /// TDB_DEBUG_TRACE
    Trace = 3,
}

/// Receives the engine's log messages (each message ends with a newline, as Samba's do).
pub trait Logger: Send + Sync {
    /// Called with the database the message is about.
    fn log(&self, tdb: &Tdb, level: DebugLevel, message: &str);
    /// Lets the C layer recover its own logging context.
    fn as_any(&self) -> &dyn Any;
}

/// Everything tdb_open_ex takes besides the name.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Number of hash chains for a new file; 0 means the default of 131.
    pub hash_size: i32,
    /// TDB_* flags (see `crate::flags`).
    pub tdb_flags: u32,
    /// open(2) flags: O_RDONLY, O_RDWR, O_CREAT, O_TRUNC...
    pub open_flags: i32,
    /// Mode for a created file.
    pub mode: u32,
    /// Where log messages go; none means they are dropped.
    pub logger: Option<Arc<dyn Logger>>,
    /// The hash function; none means the default detection Samba does.
    pub hash: Option<HashFunction>,
}

impl Tdb {
    /// Opens (or creates) a database as tdb_open_ex does; the Box's address is
    /// stable and is what the logger sees as the database from the first message on.
    pub fn open(name: &CStr, options: OpenOptions) -> std::result::Result<Box<Tdb>, OpenError> {
        todo!()
    }

    /// Closes the database, releasing its locks and mapping; commits nothing pending
    /// (an open transaction is cancelled first, as Samba does).
    pub fn close(self: Box<Self>) -> Result<()> {
        todo!()
    }

    /// Reopens the file after fork, so that this process holds its own fcntl locks.
    pub fn reopen(&mut self) -> Result<()> {
        todo!()
    }

    /// Reopens, but for a CLEAR_IF_FIRST database of a long-lived parent only re-takes
    /// the active lock when `active_lock` is true (the tdb_reopen_all logic).
    pub fn reopen_for_fork(&mut self, parent_longlived: bool) -> Result<()> {
        todo!()
    }

    /// Replaces the logger.
    pub fn set_logger(&mut self, logger: Option<Arc<dyn Logger>>) {
        todo!()
    }

    /// The current logger.
    pub fn logger(&self) -> Option<&Arc<dyn Logger>> {
        todo!()
    }

    /// The name the database was opened with.
    pub fn name(&self) -> &CStr {
        todo!()
    }

    /// The file descriptor, or -1 for TDB_INTERNAL.
    pub fn fd(&self) -> i32 {
        todo!()
    }

    /// Number of hash chains.
    pub fn hash_size(&self) -> u32 {
        todo!()
    }

    /// Bytes of the file currently mapped (or its known size with TDB_NOMMAP).
    pub fn map_size(&self) -> usize {
        todo!()
    }

    /// The current TDB_* flags.
    pub fn flags(&self) -> u32 {
        todo!()
    }

    /// Sets TDB_* flags at runtime (only NOSYNC, SEQNUM, ALLOW/DISALLOW_NESTING and the like matter).
    pub fn add_flags(&mut self, flags: u32) {
        todo!()
    }

    /// Clears TDB_* flags at runtime.
    pub fn remove_flags(&mut self, flags: u32) {
        todo!()
    }

    /// The code of the last failed call (0 when none failed yet), as tdb_error.
    pub fn error(&self) -> i32 {
        todo!()
    }

    /// Sets how many dead records a chain may keep before they are purged.
    pub fn set_max_dead(&mut self, max_dead: i32) {
        todo!()
    }

    /// Installs a probe that says whether a blocking lock wait should give up
    /// (tdb_setalarm_sigptr: the signal flag became non-zero).
    pub fn set_interrupt_probe(&mut self, probe: Option<Arc<dyn Fn() -> bool + Send + Sync>>) {
        todo!()
    }
}
