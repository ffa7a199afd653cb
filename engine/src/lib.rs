//! A Rust implementation of Samba's trivial database (tdb), file- and lock-compatible
//! with Samba's libtdb 1.4. No C ABI here: the root crate `tdb` wraps this engine
//! into the drop-in `libtdb.so.1`.
//!
//! The engine is split by concern as Samba's tdb is: `format` (on-disk layout),
//! `io` (mapping, reads, writes, growth), `lock` (fcntl byte-range locks), `mutex`
//! (robust pthread mutexes for TDB_MUTEX_LOCKING), `guard` (scoped locks),
//! `freelist`, `tdb` (fetch, store, delete), `batch` (many stores at once), `traverse`, `transaction`, `open`,
//! `check`, `rescue`, `summary`, `dump`. Only `format` and `hash` are public
//! modules; everything else a caller needs is re-exported here.
//!
//! `unsafe` lives only in `io` (the shared mapping), `mutex` (robust
//! process-shared pthread mutexes) and `chains` (borrowing the descriptor for a
//! chain wait on another thread); fcntl locks, open/close, fallocate and the
//! mutex probe's fork go through `nix`. Locks and traversal state are held by
//! guards (`Held`) that release them on drop, so an early return or a caught
//! panic never leaves a lock behind.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]

mod batch;
mod chains;
mod check;
mod dump;
mod error;
pub mod format;
mod freelist;
mod guard;
pub mod hash;
mod io;
mod lock;
mod mutex;
mod open;
mod rescue;
mod summary;
mod tdb;
mod transaction;
mod traverse;

pub use batch::BatchRecord;
pub use chains::ChainWait;
pub use check::CheckFn;
pub use error::{OpenError, Result, TdbError};
pub use guard::Held;
pub use hash::{jenkins_hash, HashFunction};
pub use mutex::runtime_check_for_robust_mutexes;
pub use open::{DebugLevel, Logger, OpenOptions};
pub use tdb::{StoreFlag, Tdb};
pub use traverse::TraverseFn;

/// The tdb_flags bits of tdb_open, with Samba's values.
pub mod flags {
    /// Placeholder for "no flags".
    pub const DEFAULT: u32 = 0;
    /// Wipe the database when this is the first open of it.
    pub const CLEAR_IF_FIRST: u32 = 1;
    /// Keep the database in memory only.
    pub const INTERNAL: u32 = 2;
    /// Take no locks at all.
    pub const NOLOCK: u32 = 4;
    /// Use pread/pwrite instead of mmap.
    pub const NOMMAP: u32 = 8;
    /// The file is of the other byte order (set by open).
    pub const CONVERT: u32 = 16;
    /// Create the file big-endian.
    pub const BIGENDIAN: u32 = 32;
    /// Do not fsync in transactions.
    pub const NOSYNC: u32 = 64;
    /// Maintain a sequence number.
    pub const SEQNUM: u32 = 128;
    /// Keep up to 5 dead records per chain.
    pub const VOLATILE: u32 = 256;
    /// Allow transactions to nest.
    pub const ALLOW_NESTING: u32 = 512;
    /// Refuse nested transactions.
    pub const DISALLOW_NESTING: u32 = 1024;
    /// Use the Jenkins hash for a new file.
    pub const INCOMPATIBLE_HASH: u32 = 2048;
    /// Lock chains with robust process-shared mutexes.
    pub const MUTEX_LOCKING: u32 = 4096;
}
