//! Error codes of the tdb engine, one for each `enum TDB_ERROR` value of Samba's tdb.h.

use std::fmt;

/// A failed tdb operation; the discriminant is the C `enum TDB_ERROR` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TdbError {
    /// The file's contents are not a valid tdb (TDB_ERR_CORRUPT).
    Corrupt = 1,
    /// A read, write, map or resize of the file failed (TDB_ERR_IO).
    Io = 2,
    /// A lock could not be taken or released (TDB_ERR_LOCK).
    Lock = 3,
    /// Memory could not be allocated (TDB_ERR_OOM).
    Oom = 4,
    /// TDB_INSERT found the key already present (TDB_ERR_EXISTS).
    Exists = 5,
    /// An unlock was asked for a lock that is not held (TDB_ERR_NOLOCK).
    NoLock = 6,
    /// A lock wait was interrupted by the alarm signal pointer (TDB_ERR_LOCK_TIMEOUT).
    LockTimeout = 7,
    /// The key is not in the database (TDB_ERR_NOEXIST).
    NoExist = 8,
    /// An argument or the call's context is invalid (TDB_ERR_EINVAL).
    Einval = 9,
    /// A write was attempted on a read-only database (TDB_ERR_RDONLY).
    Rdonly = 10,
    /// A transaction was started inside one without TDB_ALLOW_NESTING (TDB_ERR_NESTING).
    Nesting = 11,
}

/// The result type of every fallible engine call.
pub type Result<T> = std::result::Result<T, TdbError>;

impl TdbError {
    /// The C `enum TDB_ERROR` value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The text `tdb_errorstr` gives for this error, as Samba's tdb words it.
    pub fn message(self) -> &'static str {
        match self {
            TdbError::Corrupt => "Corrupt database",
            TdbError::Io => "IO Error",
            TdbError::Lock => "Locking error",
            TdbError::Oom => "Out of memory",
            TdbError::Exists => "Record exists",
            TdbError::NoLock => "Lock exists on other keys",
            // Samba's message table has no entry for these two.
            TdbError::LockTimeout => "Invalid error code",
            TdbError::NoExist => "Record does not exist",
            TdbError::Einval => "Invalid parameter",
            TdbError::Rdonly => "write not permitted",
            TdbError::Nesting => "Invalid error code",
        }
    }
}

impl fmt::Display for TdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TdbError {}

/// Why `Tdb::open` failed: the errno a C caller sees (tdb_open returns NULL and sets errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError {
    /// The errno value to report (EINVAL, EIO, ENOENT, EBUSY, ENOSYS, ...).
    pub errno: i32,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tdb open failed: {}",
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for OpenError {}

/// The error for a C `enum TDB_ERROR` value (unknown values map to Io).
pub fn from_code(code: i32) -> TdbError {
    match code {
        1 => TdbError::Corrupt,
        3 => TdbError::Lock,
        4 => TdbError::Oom,
        5 => TdbError::Exists,
        6 => TdbError::NoLock,
        7 => TdbError::LockTimeout,
        8 => TdbError::NoExist,
        9 => TdbError::Einval,
        10 => TdbError::Rdonly,
        11 => TdbError::Nesting,
        _ => TdbError::Io,
    }
}

/// The C library's text for an OS error, as Samba's messages print it with strerror.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    // std words an OS error as strerror's text plus " (os error N)".
    match e.raw_os_error() {
        Some(code) => {
            let suffix = format!(" (os error {})", code);
            text.strip_suffix(&suffix).unwrap_or(&text).to_string()
        }
        None => text,
    }
}
