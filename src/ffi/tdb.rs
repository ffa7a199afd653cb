//! The C ABI: the 74 symbols of Samba's `libtdb.so.1`, with its types and conventions,
//! on top of the engine (`crate::Tdb`).
//!
//! Rules every function here follows (docs/c-abi.md explains them):
//! * Each exported function runs its body through `guard` (src/ffi/guard.rs):
//!   pointers are checked before use (a NULL handle, or a NULL data pointer with a
//!   non-zero size, makes the call return its error value) and a panic is caught
//!   and turned into that same error value, so nothing ever unwinds into C. The
//!   engine's lock guards have released every lock the call took by then.
//! * `struct tdb_context` is the engine's `Tdb` itself (`#[repr(transparent)]`): the
//!   handle given to C is the address of the `Box<Tdb>` that `Tdb::open` returned, so
//!   the `&mut Tdb` an engine callback receives converts to the same C handle.
//! * Memory handed to C (`tdb_fetch`, `tdb_firstkey`, `tdb_nextkey`, `tdb_summary`)
//!   comes from `malloc` and is the caller's to `free`.
//! * `unsafe` here is only what a C ABI needs (raw handles, C callbacks, malloc,
//!   the exported static), each block with the reason it is sound.
//!
//! The header include/tdb.h is generated from this file by build.rs with cbindgen,
//! so the order and spelling of the items below is the order of the header.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    clippy::missing_safety_doc
)]

use super::guard::{
    bytes, db, db_ref, errno, guard, keyed, malloc_copy, set_errno, simple, status, void, Checked,
    Refused,
};
use std::any::Any;
use std::ffi::{c_char, c_int, c_uchar, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::{Arc, Mutex};
use tdb_engine::{
    flags, DebugLevel, HashFunction, Logger, OpenOptions, StoreFlag, Tdb, TdbError, TraverseFn,
};

// The `.symver` directives build.rs derives from src/capi/versions.txt: they give
// every exported tdb_* symbol its ELF version node (TDB_1.2.1 ... TDB_1.3.17).
#[cfg(target_os = "linux")]
std::arch::global_asm!(include_str!(concat!(env!("OUT_DIR"), "/symver.s")));

// ---------------------------------------------------------------------------
// Constants (the #defines of tdb.h)
// ---------------------------------------------------------------------------

/// tdb_store flag: insert or overwrite.
pub const TDB_REPLACE: c_int = 1;
/// tdb_store flag: fail if the key already exists.
pub const TDB_INSERT: c_int = 2;
/// tdb_store flag: fail if the key does not exist.
pub const TDB_MODIFY: c_int = 3;

/// tdb_open flag: no flags.
pub const TDB_DEFAULT: c_int = 0;
/// tdb_open flag: wipe the database if this is its first open.
pub const TDB_CLEAR_IF_FIRST: c_int = 1;
/// tdb_open flag: keep the database in memory, never on disk.
pub const TDB_INTERNAL: c_int = 2;
/// tdb_open flag: take no locks.
pub const TDB_NOLOCK: c_int = 4;
/// tdb_open flag: do not mmap the file.
pub const TDB_NOMMAP: c_int = 8;
/// tdb_open flag: the file has the other byte order (set internally).
pub const TDB_CONVERT: c_int = 16;
/// tdb_open flag: create the file big-endian.
pub const TDB_BIGENDIAN: c_int = 32;
/// tdb_open flag: skip fsync in transactions.
pub const TDB_NOSYNC: c_int = 64;
/// tdb_open flag: maintain a sequence number.
pub const TDB_SEQNUM: c_int = 128;
/// tdb_open flag: keep dead records per hash chain (default 5).
pub const TDB_VOLATILE: c_int = 256;
/// tdb_open flag: allow nested transactions.
pub const TDB_ALLOW_NESTING: c_int = 512;
/// tdb_open flag: refuse nested transactions.
pub const TDB_DISALLOW_NESTING: c_int = 1024;
/// tdb_open flag: use the Jenkins hash (files unreadable by tdb < 1.2.6).
pub const TDB_INCOMPATIBLE_HASH: c_int = 2048;
/// tdb_open flag: lock chains with robust mutexes (with TDB_CLEAR_IF_FIRST, where supported).
pub const TDB_MUTEX_LOCKING: c_int = 4096;

// The C values must be the engine's.
const _: () = {
    assert!(TDB_DEFAULT as u32 == flags::DEFAULT);
    assert!(TDB_CLEAR_IF_FIRST as u32 == flags::CLEAR_IF_FIRST);
    assert!(TDB_INTERNAL as u32 == flags::INTERNAL);
    assert!(TDB_NOLOCK as u32 == flags::NOLOCK);
    assert!(TDB_NOMMAP as u32 == flags::NOMMAP);
    assert!(TDB_CONVERT as u32 == flags::CONVERT);
    assert!(TDB_BIGENDIAN as u32 == flags::BIGENDIAN);
    assert!(TDB_NOSYNC as u32 == flags::NOSYNC);
    assert!(TDB_SEQNUM as u32 == flags::SEQNUM);
    assert!(TDB_VOLATILE as u32 == flags::VOLATILE);
    assert!(TDB_ALLOW_NESTING as u32 == flags::ALLOW_NESTING);
    assert!(TDB_DISALLOW_NESTING as u32 == flags::DISALLOW_NESTING);
    assert!(TDB_INCOMPATIBLE_HASH as u32 == flags::INCOMPATIBLE_HASH);
    assert!(TDB_MUTEX_LOCKING as u32 == flags::MUTEX_LOCKING);
    assert!(TDB_REPLACE == StoreFlag::Replace as c_int);
    assert!(TDB_INSERT == StoreFlag::Insert as c_int);
    assert!(TDB_MODIFY == StoreFlag::Modify as c_int);
};

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// Error codes, as returned by tdb_error.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TDB_ERROR {
    TDB_SUCCESS = 0,
    TDB_ERR_CORRUPT,
    TDB_ERR_IO,
    TDB_ERR_LOCK,
    TDB_ERR_OOM,
    TDB_ERR_EXISTS,
    TDB_ERR_NOLOCK,
    TDB_ERR_LOCK_TIMEOUT,
    TDB_ERR_NOEXIST,
    TDB_ERR_EINVAL,
    TDB_ERR_RDONLY,
    TDB_ERR_NESTING,
}

/// Severity passed to the log function.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tdb_debug_level {
    TDB_DEBUG_FATAL = 0,
    TDB_DEBUG_ERROR,
    TDB_DEBUG_WARNING,
    TDB_DEBUG_TRACE,
}

// The C enums must be the engine's.
const _: () = {
    assert!(TDB_ERROR::TDB_ERR_CORRUPT as i32 == TdbError::Corrupt as i32);
    assert!(TDB_ERROR::TDB_ERR_IO as i32 == TdbError::Io as i32);
    assert!(TDB_ERROR::TDB_ERR_LOCK as i32 == TdbError::Lock as i32);
    assert!(TDB_ERROR::TDB_ERR_OOM as i32 == TdbError::Oom as i32);
    assert!(TDB_ERROR::TDB_ERR_EXISTS as i32 == TdbError::Exists as i32);
    assert!(TDB_ERROR::TDB_ERR_NOLOCK as i32 == TdbError::NoLock as i32);
    assert!(TDB_ERROR::TDB_ERR_LOCK_TIMEOUT as i32 == TdbError::LockTimeout as i32);
    assert!(TDB_ERROR::TDB_ERR_NOEXIST as i32 == TdbError::NoExist as i32);
    assert!(TDB_ERROR::TDB_ERR_EINVAL as i32 == TdbError::Einval as i32);
    assert!(TDB_ERROR::TDB_ERR_RDONLY as i32 == TdbError::Rdonly as i32);
    assert!(TDB_ERROR::TDB_ERR_NESTING as i32 == TdbError::Nesting as i32);
    assert!(tdb_debug_level::TDB_DEBUG_FATAL as i32 == DebugLevel::Fatal as i32);
    assert!(tdb_debug_level::TDB_DEBUG_ERROR as i32 == DebugLevel::Error as i32);
    assert!(tdb_debug_level::TDB_DEBUG_WARNING as i32 == DebugLevel::Warning as i32);
    assert!(tdb_debug_level::TDB_DEBUG_TRACE as i32 == DebugLevel::Trace as i32);
};

impl TDB_ERROR {
    /// The C value for an engine error code (0 = success; unknown codes read as EINVAL).
    fn from_code(code: i32) -> TDB_ERROR {
        use TDB_ERROR::*;
        match code {
            0 => TDB_SUCCESS,
            1 => TDB_ERR_CORRUPT,
            2 => TDB_ERR_IO,
            3 => TDB_ERR_LOCK,
            4 => TDB_ERR_OOM,
            5 => TDB_ERR_EXISTS,
            6 => TDB_ERR_NOLOCK,
            7 => TDB_ERR_LOCK_TIMEOUT,
            8 => TDB_ERR_NOEXIST,
            10 => TDB_ERR_RDONLY,
            11 => TDB_ERR_NESTING,
            _ => TDB_ERR_EINVAL,
        }
    }

    /// The text tdb_errorstr gives, with Samba's wording (two codes have no entry there).
    fn message(self) -> &'static CStr {
        use TDB_ERROR::*;
        match self {
            TDB_SUCCESS => c"Success",
            TDB_ERR_CORRUPT => c"Corrupt database",
            TDB_ERR_IO => c"IO Error",
            TDB_ERR_LOCK => c"Locking error",
            TDB_ERR_OOM => c"Out of memory",
            TDB_ERR_EXISTS => c"Record exists",
            TDB_ERR_NOLOCK => c"Lock exists on other keys",
            TDB_ERR_EINVAL => c"Invalid parameter",
            TDB_ERR_NOEXIST => c"Record does not exist",
            TDB_ERR_RDONLY => c"write not permitted",
            TDB_ERR_LOCK_TIMEOUT | TDB_ERR_NESTING => c"Invalid error code",
        }
    }
}

impl From<DebugLevel> for tdb_debug_level {
    fn from(level: DebugLevel) -> Self {
        match level {
            DebugLevel::Fatal => tdb_debug_level::TDB_DEBUG_FATAL,
            DebugLevel::Error => tdb_debug_level::TDB_DEBUG_ERROR,
            DebugLevel::Warning => tdb_debug_level::TDB_DEBUG_WARNING,
            DebugLevel::Trace => tdb_debug_level::TDB_DEBUG_TRACE,
        }
    }
}

/// A key or a value: `dsize` bytes at `dptr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TDB_DATA {
    pub dptr: *mut c_uchar,
    pub dsize: usize,
}

impl TDB_DATA {
    /// `{NULL, 0}`, the failure value of the functions returning TDB_DATA.
    const NULL: TDB_DATA = TDB_DATA {
        dptr: ptr::null_mut(),
        dsize: 0,
    };

    /// A view of `bytes` for a callback; the callee must not write through it.
    fn borrowed(bytes: &[u8]) -> TDB_DATA {
        TDB_DATA {
            dptr: bytes.as_ptr() as *mut c_uchar,
            dsize: bytes.len(),
        }
    }
}

/// An open database: C sees only `struct tdb_context *`.
#[repr(transparent)]
pub struct tdb_context(Tdb);

/// The C handle of an engine database (the same address).
fn handle_of(tdb: &Tdb) -> *mut tdb_context {
    tdb as *const Tdb as *mut tdb_context
}

/// Traversal callback: return non-zero to stop the traversal.
pub type tdb_traverse_func =
    Option<unsafe extern "C" fn(*mut tdb_context, TDB_DATA, TDB_DATA, *mut c_void) -> c_int>;

/// Log callback, printf-like (build.rs adds the format attribute in the header).
pub type tdb_log_func =
    Option<unsafe extern "C" fn(*mut tdb_context, tdb_debug_level, *const c_char, ...)>;

/// Hash function for tdb_open_ex.
pub type tdb_hash_func = Option<unsafe extern "C" fn(key: *mut TDB_DATA) -> c_uint>;

/// The log function and its private pointer, for tdb_open_ex and tdb_set_logging_function.
#[repr(C)]
pub struct tdb_logging_context {
    pub log_fn: tdb_log_func,
    pub log_private: *mut c_void,
}

/// `int` on Linux, as <signal.h> has it (not exported to the header, which includes <signal.h>).
pub type sig_atomic_t = c_int;
/// Spelled `volatile sig_atomic_t` in the header (cbindgen.toml renames it).
pub type volatile_sig_atomic_t = sig_atomic_t;

/// mode_t as <sys/types.h> has it.
pub type mode_t = libc::mode_t;

/// The body of the functions returning a malloc'd TDB_DATA.
///
/// # Safety
/// As for [`db`].
unsafe fn fetched(
    tdb: *mut tdb_context,
    op: impl FnOnce(&mut Tdb) -> Checked<tdb_engine::Result<Vec<u8>>>,
) -> TDB_DATA {
    guard(TDB_DATA::NULL, || {
        // SAFETY: forwarded contract.
        match op(unsafe { db(tdb) }?)? {
            Ok(value) => malloc_copy(&value),
            Err(_) => Ok(TDB_DATA::NULL),
        }
    })
}

/// Calls a C record callback with private copies of key and value, as Samba hands
/// out malloc'd copies: the callee may scribble on them, and they stay valid even
/// if the callee changes the database (and so the mapping) under the engine.
struct RecordCopies(Vec<u8>);

impl RecordCopies {
    fn call<R>(&mut self, key: &[u8], value: &[u8], f: impl FnOnce(TDB_DATA, TDB_DATA) -> R) -> R {
        self.0.clear();
        self.0.extend_from_slice(key);
        self.0.extend_from_slice(value);
        let (k, v) = self.0.split_at_mut(key.len());
        f(
            TDB_DATA {
                dptr: k.as_mut_ptr(),
                dsize: k.len(),
            },
            TDB_DATA {
                dptr: v.as_mut_ptr(),
                dsize: v.len(),
            },
        )
    }
}

/// Runs a traversal with a C callback (or none, to count only).
///
/// # Safety
/// As for [`db`]; `f` is NULL or a valid callback.
unsafe fn traverse_with(
    tdb: *mut tdb_context,
    f: tdb_traverse_func,
    private_data: *mut c_void,
    run: impl FnOnce(&mut Tdb, Option<TraverseFn<'_>>) -> tdb_engine::Result<i32>,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded contract.
        let t = unsafe { db(tdb) }?;
        let mut copies = RecordCopies(Vec::new());
        let mut visit = |db: &mut Tdb, key: &[u8], value: &[u8]| -> bool {
            let Some(f) = f else { return false };
            copies.call(key, value, |k, v| {
                // SAFETY: a callback supplied by the C caller, given the handle it
                // traverses and buffers valid for the call.
                unsafe { f(handle_of(db), k, v, private_data) != 0 }
            })
        };
        let callback: Option<TraverseFn<'_>> = if f.is_some() { Some(&mut visit) } else { None };
        Ok(run(t, callback).unwrap_or(-1))
    })
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

/// The engine logger that forwards to a C `tdb_logging_context`.
struct CLogger {
    log_fn: tdb_log_func,
    log_private: *mut c_void,
}

// SAFETY: the logger only stores what C gave it and passes it back to C; C code
// that shares a tdb between threads is responsible for its own log_private, as
// with Samba's library.
unsafe impl Send for CLogger {}
// SAFETY: as for Send; the logger has no interior state.
unsafe impl Sync for CLogger {}

impl Logger for CLogger {
    fn log(&self, tdb: &Tdb, level: DebugLevel, message: &str) {
        let Some(log_fn) = self.log_fn else { return };
        let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: a log function installed by C, called with a "%s" format and one
        // NUL-terminated string, which matches its printf-like contract.
        unsafe { log_fn(handle_of(tdb), level.into(), c"%s".as_ptr(), text.as_ptr()) };
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The C logging context currently installed on a database, if it has one.
fn c_logger(t: &Tdb) -> Option<&CLogger> {
    t.logger()
        .and_then(|l| l.as_any().downcast_ref::<CLogger>())
}

/// Builds the engine logger for a C logging context (NULL = no logger).
///
/// # Safety
/// `ctx` is NULL or points to a readable tdb_logging_context.
unsafe fn logger_from(ctx: *const tdb_logging_context) -> Option<Arc<dyn Logger>> {
    // SAFETY: per the contract, a readable struct or NULL.
    let ctx = unsafe { ctx.as_ref() }?;
    Some(Arc::new(CLogger {
        log_fn: ctx.log_fn,
        log_private: ctx.log_private,
    }))
}

/// The log function of a database opened without one (Samba's null_log_fn).
unsafe extern "C" fn null_log_fn(_: *mut tdb_context, _: tdb_debug_level, _: *const c_char) {}

/// [`null_log_fn`] as a `tdb_log_func`.
fn null_log_func() -> tdb_log_func {
    // SAFETY: the variadic type differs from null_log_fn's only by the trailing
    // `...`; on the ELF ABIs this library is built for (x86-64 SysV, AArch64,
    // and others where variadic and fixed arguments are passed alike) a callee
    // that ignores all its arguments may be called through either type.
    Some(unsafe {
        std::mem::transmute::<
            unsafe extern "C" fn(*mut tdb_context, tdb_debug_level, *const c_char),
            unsafe extern "C" fn(*mut tdb_context, tdb_debug_level, *const c_char, ...),
        >(null_log_fn)
    })
}

// ---------------------------------------------------------------------------
// Open handles (for tdb_reopen_all)
// ---------------------------------------------------------------------------

/// Addresses of the open handles, oldest first.
static OPEN_HANDLES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn open_handles() -> std::sync::MutexGuard<'static, Vec<usize>> {
    OPEN_HANDLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn register(tdb: *mut tdb_context) {
    open_handles().push(tdb as usize);
}

fn unregister(tdb: *mut tdb_context) {
    open_handles().retain(|&p| p != tdb as usize);
}

/// Unregisters and closes a handle.
///
/// # Safety
/// `tdb` is a live handle from tdb_open_ex; it is dangling afterwards.
unsafe fn close_handle(tdb: *mut tdb_context) -> tdb_engine::Result<()> {
    unregister(tdb);
    // SAFETY: the handle is the address of the Box<Tdb> that tdb_open_ex leaked,
    // and C gives up the handle by closing it.
    let boxed = unsafe { Box::from_raw(tdb.cast::<Tdb>()) };
    boxed.close()
}

// ---------------------------------------------------------------------------
// The exported functions, in the order of Samba's tdb.h
// ---------------------------------------------------------------------------

/// Opens a database with no logging and the default hash; NULL with errno set on failure.
#[no_mangle]
pub unsafe extern "C" fn tdb_open(
    name: *const c_char,
    hash_size: c_int,
    tdb_flags: c_int,
    open_flags: c_int,
    mode: mode_t,
) -> *mut tdb_context {
    // SAFETY: same contract as tdb_open_ex.
    unsafe {
        tdb_open_ex(
            name,
            hash_size,
            tdb_flags,
            open_flags,
            mode,
            ptr::null(),
            None,
        )
    }
}

/// Opens a database with a logging context and hash function; NULL with errno set on failure.
#[no_mangle]
pub unsafe extern "C" fn tdb_open_ex(
    name: *const c_char,
    hash_size: c_int,
    tdb_flags: c_int,
    open_flags: c_int,
    mode: mode_t,
    log_ctx: *const tdb_logging_context,
    hash_fn: tdb_hash_func,
) -> *mut tdb_context {
    let saved_errno = errno();
    let mut failure = libc::EIO;
    let handle = guard(ptr::null_mut(), || {
        let name = if !name.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string (C contract).
            Some(unsafe { CStr::from_ptr(name) })
        } else {
            // The engine names TDB_INTERNAL databases itself and logs the refusal
            // of any other NULL name.
            None
        };
        let options = OpenOptions {
            hash_size,
            tdb_flags: tdb_flags as u32,
            open_flags,
            #[allow(clippy::useless_conversion)] // mode_t is u32 on Linux, u16 elsewhere
            mode: u32::from(mode),
            // SAFETY: log_ctx is NULL or a readable struct (C contract).
            logger: unsafe { logger_from(log_ctx) },
            hash: hash_fn.map(hash_function),
        };
        match Tdb::open(name, options) {
            Ok(tdb) => {
                let handle = Box::into_raw(tdb).cast::<tdb_context>();
                register(handle);
                Ok(handle)
            }
            Err(e) => {
                failure = e.errno;
                Err(Refused)
            }
        }
    });
    set_errno(if handle.is_null() {
        failure
    } else {
        saved_errno
    });
    handle
}

/// The engine hash for a C hash function: our own tdb_jenkins_hash is the built-in one.
fn hash_function(f: unsafe extern "C" fn(*mut TDB_DATA) -> c_uint) -> HashFunction {
    let ours = tdb_jenkins_hash as unsafe extern "C" fn(*mut TDB_DATA) -> c_uint;
    // A program may see tdb_jenkins_hash at another address (a PLT entry); the
    // dynamic linker's answer is the address such a program uses.
    // SAFETY: dlsym with a NUL-terminated name; the result is only compared.
    let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"tdb_jenkins_hash".as_ptr()) };
    if f as usize == ours as usize || f as usize == global as usize {
        return HashFunction::Jenkins;
    }
    HashFunction::Custom(Arc::new(move |key: &[u8]| {
        let mut data = TDB_DATA::borrowed(key);
        // SAFETY: the caller's hash function, given a TDB_DATA describing `key`.
        unsafe { f(&mut data) }
    }))
}

/// Sets how many dead records a hash chain may keep.
#[no_mangle]
pub unsafe extern "C" fn tdb_set_max_dead(tdb: *mut tdb_context, max_dead: c_int) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| t.set_max_dead(max_dead)) }
}

/// Reopens the file (after fork); on failure the handle is closed, as Samba does.
#[no_mangle]
pub unsafe extern "C" fn tdb_reopen(tdb: *mut tdb_context) -> c_int {
    guard(-1, || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db(tdb) }?;
        if t.reopen().is_ok() {
            return Ok(0);
        }
        // SAFETY: Samba's tdb_reopen frees the handle when it fails; callers drop it.
        let _ = unsafe { close_handle(tdb) };
        Ok(-1)
    })
}

/// Reopens every open database after fork; -1 at the first failure (that handle is closed).
#[no_mangle]
pub unsafe extern "C" fn tdb_reopen_all(parent_longlived: c_int) -> c_int {
    guard(-1, || {
        // Newest first, as Samba walks its list; a snapshot, so that a log
        // callback may open or close databases meanwhile.
        let handles: Vec<usize> = open_handles().iter().rev().copied().collect();
        for p in handles {
            let tdb = p as *mut tdb_context;
            // SAFETY: registered handles are live (tdb_close unregisters first).
            let t = unsafe { db(tdb) }?;
            if t.reopen_for_fork(parent_longlived != 0).is_err() {
                // SAFETY: as in tdb_reopen.
                let _ = unsafe { close_handle(tdb) };
                return Ok(-1);
            }
        }
        Ok(0)
    })
}

/// Replaces the log function, keeping the private pointer (deprecated by Samba).
#[no_mangle]
#[deprecated]
pub unsafe extern "C" fn tdb_logging_function(tdb: *mut tdb_context, log_fn: tdb_log_func) {
    guard((), || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db(tdb) }?;
        let log_private = c_logger(t).map_or(ptr::null_mut(), |l| l.log_private);
        t.set_logger(Some(Arc::new(CLogger {
            log_fn,
            log_private,
        })));
        Ok(())
    })
}

/// Installs a logging context (copied; NULL turns logging off).
#[no_mangle]
pub unsafe extern "C" fn tdb_set_logging_function(
    tdb: *mut tdb_context,
    log_ctx: *const tdb_logging_context,
) {
    guard((), || {
        // SAFETY: live handle, and log_ctx NULL or readable (C contract).
        let (t, logger) = unsafe { (db(tdb)?, logger_from(log_ctx)) };
        t.set_logger(logger);
        Ok(())
    })
}

/// The code of the last error on this database.
#[no_mangle]
pub unsafe extern "C" fn tdb_error(tdb: *mut tdb_context) -> TDB_ERROR {
    guard(TDB_ERROR::TDB_ERR_EINVAL, || {
        // SAFETY: live handle (C contract).
        Ok(TDB_ERROR::from_code(unsafe { db_ref(tdb) }?.error()))
    })
}

/// A static text describing the last error ("Success" when there was none).
#[no_mangle]
pub unsafe extern "C" fn tdb_errorstr(tdb: *mut tdb_context) -> *const c_char {
    // SAFETY: the same contract as tdb_error.
    let code = unsafe { tdb_error(tdb) };
    code.message().as_ptr()
}

/// The value stored under `key`, malloc'd (caller frees dptr); {NULL, 0} if absent or on error.
#[no_mangle]
pub unsafe extern "C" fn tdb_fetch(tdb: *mut tdb_context, key: TDB_DATA) -> TDB_DATA {
    guard(TDB_DATA::NULL, || {
        // SAFETY: live handle and a valid key (C contract).
        let (t, k) = unsafe { (db(tdb)?, bytes(key)?) };
        // Copy straight from the record into the caller's malloc'd buffer.
        match t.parse_record(k, malloc_copy) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refused)) => {
                t.set_error(TdbError::Oom);
                Err(refused)
            }
            Err(_) => Ok(TDB_DATA::NULL),
        }
    })
}

/// Calls `parser` on the record in place under a read lock; its result, or -1 if absent.
#[no_mangle]
pub unsafe extern "C" fn tdb_parse_record(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    parser: Option<
        unsafe extern "C" fn(key: TDB_DATA, data: TDB_DATA, private_data: *mut c_void) -> c_int,
    >,
    private_data: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle and a valid key (C contract).
        let (t, k) = unsafe { (db(tdb)?, bytes(key)?) };
        let result = t.parse_record(k, |data| match parser {
            // SAFETY: the caller's parser, given views valid for the call (it
            // must not write through them, as with Samba's mmap'd records).
            Some(p) => unsafe { p(key, TDB_DATA::borrowed(data), private_data) },
            None => 0,
        });
        Ok(result.unwrap_or(-1))
    })
}

/// Deletes `key`; 0, or -1 (TDB_ERR_NOEXIST when absent).
#[no_mangle]
pub unsafe extern "C" fn tdb_delete(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, |t, k| t.delete(k)) }
}

/// Stores `dbuf` under `key` (TDB_REPLACE, TDB_INSERT or TDB_MODIFY); 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_store(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    dbuf: TDB_DATA,
    flag: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle and valid key and value (C contract).
        let (t, k, v) = unsafe { (db(tdb)?, bytes(key)?, bytes(dbuf)?) };
        status(t.store(k, &[v], StoreFlag::from_c(flag)))
    })
}

/// Stores the concatenation of `num_dbufs` buffers under `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_storev(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    dbufs: *const TDB_DATA,
    num_dbufs: c_int,
    flag: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle and a valid key (C contract).
        let (t, k) = unsafe { (db(tdb)?, bytes(key)?) };
        let count = usize::try_from(num_dbufs).map_err(|_| Refused)?;
        let bufs: &[TDB_DATA] = if count == 0 {
            &[]
        } else if dbufs.is_null() {
            return Err(Refused);
        } else {
            // SAFETY: dbufs points to num_dbufs TDB_DATA (C contract).
            unsafe { std::slice::from_raw_parts(dbufs, count) }
        };
        // SAFETY: each buffer describes readable bytes (C contract).
        let parts = bufs
            .iter()
            .map(|&b| unsafe { bytes(b) })
            .collect::<Checked<Vec<&[u8]>>>()?;
        status(t.store(k, &parts, StoreFlag::from_c(flag)))
    })
}

/// Appends `new_dbuf` to the value of `key`, creating it if absent; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_append(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    new_dbuf: TDB_DATA,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle and valid key and value (C contract).
        let (t, k, v) = unsafe { (db(tdb)?, bytes(key)?, bytes(new_dbuf)?) };
        status(t.append(k, v))
    })
}

/// Closes the database and frees the handle; 0 or -1 (the handle is gone either way).
#[no_mangle]
pub unsafe extern "C" fn tdb_close(tdb: *mut tdb_context) -> c_int {
    guard(-1, || {
        if tdb.is_null() {
            return Err(Refused);
        }
        // SAFETY: a live handle that C hands back for good (C contract).
        status(unsafe { close_handle(tdb) })
    })
}

/// The first key of a walk, malloc'd (caller frees); {NULL, 0} when empty or on error.
#[no_mangle]
pub unsafe extern "C" fn tdb_firstkey(tdb: *mut tdb_context) -> TDB_DATA {
    // SAFETY: live handle (C contract).
    unsafe { fetched(tdb, |t| Ok(t.firstkey())) }
}

/// The key after `key`, malloc'd (caller frees); {NULL, 0} at the end or on error.
#[no_mangle]
pub unsafe extern "C" fn tdb_nextkey(tdb: *mut tdb_context, key: TDB_DATA) -> TDB_DATA {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { fetched(tdb, |t| Ok(t.nextkey(bytes(key)?))) }
}

/// Calls `fn` on every record (it may change the database); the count visited, or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_traverse(
    tdb: *mut tdb_context,
    r#fn: tdb_traverse_func,
    private_data: *mut c_void,
) -> c_int {
    // SAFETY: live handle and a valid or NULL callback (C contract).
    unsafe { traverse_with(tdb, r#fn, private_data, |t, f| t.traverse(f)) }
}

/// Calls `fn` on every record under read locks; the count visited, or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_traverse_read(
    tdb: *mut tdb_context,
    r#fn: tdb_traverse_func,
    private_data: *mut c_void,
) -> c_int {
    // SAFETY: live handle and a valid or NULL callback (C contract).
    unsafe { traverse_with(tdb, r#fn, private_data, |t, f| t.traverse_read(f)) }
}

/// Calls `fn` on the records of one hash chain; the count visited, or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_traverse_chain(
    tdb: *mut tdb_context,
    chain: c_uint,
    r#fn: tdb_traverse_func,
    private_data: *mut c_void,
) -> c_int {
    // SAFETY: live handle and a valid or NULL callback (C contract).
    unsafe {
        traverse_with(tdb, r#fn, private_data, |t, f| match f {
            Some(f) => t.traverse_chain(chain, f),
            None => t.traverse_chain(chain, &mut |_: &mut Tdb, _: &[u8], _: &[u8]| false),
        })
    }
}

/// Calls `fn` on the records of the hash chain `key` belongs to; the count visited, or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_traverse_key_chain(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    r#fn: tdb_traverse_func,
    private_data: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: a valid key (C contract).
        let k = unsafe { bytes(key) }?;
        // SAFETY: live handle and a valid or NULL callback (C contract).
        Ok(unsafe {
            traverse_with(tdb, r#fn, private_data, |t, f| match f {
                Some(f) => t.traverse_key_chain(k, f),
                None => t.traverse_key_chain(k, &mut |_: &mut Tdb, _: &[u8], _: &[u8]| false),
            })
        })
    })
}

/// 1 if `key` is present, 0 if not (or on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_exists(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    guard(0, || {
        // SAFETY: live handle and a valid key (C contract).
        let (t, k) = unsafe { (db(tdb)?, bytes(key)?) };
        Ok(c_int::from(t.exists(k)))
    })
}

/// Write-locks the whole database; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall) }
}

/// Write-locks the whole database without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall_nonblock(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall_nonblock) }
}

/// Releases the whole-database write lock; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_unlockall(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::unlockall) }
}

/// Read-locks the whole database; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall_read(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall_read) }
}

/// Read-locks the whole database without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall_read_nonblock(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall_read_nonblock) }
}

/// Releases the whole-database read lock; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_unlockall_read(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::unlockall_read) }
}

/// Marks the whole-database lock as held without taking it; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall_mark(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall_mark) }
}

/// Forgets a marked whole-database lock; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lockall_unmark(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::lockall_unmark) }
}

/// The name the database was opened with (owned by the handle); NULL on error.
#[no_mangle]
pub unsafe extern "C" fn tdb_name(tdb: *mut tdb_context) -> *const c_char {
    // SAFETY: live handle (C contract); the name lives as long as the handle.
    guard(ptr::null(), || Ok(unsafe { db_ref(tdb) }?.name().as_ptr()))
}

/// The file descriptor, or -1 (TDB_INTERNAL, or on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_fd(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    guard(-1, || Ok(unsafe { db_ref(tdb) }?.fd()))
}

/// The current log function (a no-op one when none was given).
#[no_mangle]
pub unsafe extern "C" fn tdb_log_fn(tdb: *mut tdb_context) -> tdb_log_func {
    guard(null_log_func(), || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db_ref(tdb) }?;
        Ok(c_logger(t).and_then(|l| l.log_fn).or_else(null_log_func))
    })
}

/// The log_private pointer of the logging context (NULL when none).
#[no_mangle]
pub unsafe extern "C" fn tdb_get_logging_private(tdb: *mut tdb_context) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db_ref(tdb) }?;
        Ok(c_logger(t).map_or(ptr::null_mut(), |l| l.log_private))
    })
}

/// Whether a transaction is open on this handle.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_active(tdb: *mut tdb_context) -> bool {
    // SAFETY: live handle (C contract).
    guard(false, || Ok(unsafe { db_ref(tdb) }?.transaction_active()))
}

/// Starts a transaction, waiting for the lock; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_start(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_start) }
}

/// Starts a transaction without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_start_nonblock(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_start_nonblock) }
}

/// Prepares the commit (first phase); 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_prepare_commit(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_prepare_commit) }
}

/// Commits the transaction; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_commit(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_commit) }
}

/// Cancels the transaction; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_cancel(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_cancel) }
}

/// The sequence number (0 on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_get_seqnum(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    guard(0, || Ok(unsafe { db(tdb) }?.get_seqnum()))
}

/// The number of hash chains (0 on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_hash_size(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    guard(0, || Ok(unsafe { db_ref(tdb) }?.hash_size() as c_int))
}

/// The size of the mapping (0 on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_map_size(tdb: *mut tdb_context) -> usize {
    // SAFETY: live handle (C contract).
    guard(0, || Ok(unsafe { db_ref(tdb) }?.map_size()))
}

/// The TDB_* flags in force (0 on error).
#[no_mangle]
pub unsafe extern "C" fn tdb_get_flags(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    guard(0, || Ok(unsafe { db_ref(tdb) }?.flags() as c_int))
}

/// Sets TDB_* flags at run time.
#[no_mangle]
pub unsafe extern "C" fn tdb_add_flags(tdb: *mut tdb_context, flag: c_uint) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| t.add_flags(flag)) }
}

/// Clears TDB_* flags at run time.
#[no_mangle]
pub unsafe extern "C" fn tdb_remove_flags(tdb: *mut tdb_context, flag: c_uint) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| t.remove_flags(flag)) }
}

/// Turns on the sequence number (TDB_SEQNUM).
#[no_mangle]
pub unsafe extern "C" fn tdb_enable_seqnum(tdb: *mut tdb_context) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| t.enable_seqnum()) }
}

/// Increments the sequence number without locking.
#[no_mangle]
pub unsafe extern "C" fn tdb_increment_seqnum_nonblock(tdb: *mut tdb_context) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| t.increment_seqnum_nonblock()) }
}

/// Bob Jenkins' lookup3 hash of the key (0 for a NULL key).
#[no_mangle]
pub unsafe extern "C" fn tdb_jenkins_hash(key: *mut TDB_DATA) -> c_uint {
    guard(0, || {
        // SAFETY: key is NULL or a readable TDB_DATA describing valid bytes (C contract).
        let data = unsafe { bytes(*key.as_ref().ok_or(Refused)?) }?;
        Ok(tdb_engine::jenkins_hash(data))
    })
}

/// Checks the whole database, calling `check` on each record (non-zero = bad); 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_check(
    tdb: *mut tdb_context,
    check: Option<
        unsafe extern "C" fn(key: TDB_DATA, data: TDB_DATA, private_data: *mut c_void) -> c_int,
    >,
    private_data: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db(tdb) }?;
        let mut copies = RecordCopies(Vec::new());
        let mut f = |key: &[u8], value: &[u8]| match check {
            // SAFETY: the caller's check function, given buffers valid for the call.
            Some(c) => copies.call(key, value, |k, v| unsafe { c(k, v, private_data) }),
            None => 0,
        };
        status(t.check(if check.is_some() { Some(&mut f) } else { None }))
    })
}

/// Calls `walk` on every record that looks intact, whatever the damage; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_rescue(
    tdb: *mut tdb_context,
    walk: Option<unsafe extern "C" fn(key: TDB_DATA, data: TDB_DATA, private_data: *mut c_void)>,
    private_data: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db(tdb) }?;
        let walk = walk.ok_or(Refused)?;
        let mut copies = RecordCopies(Vec::new());
        let mut f = |key: &[u8], value: &[u8]| {
            copies.call(key, value, |k, v| {
                // SAFETY: the caller's walk function, given buffers valid for the call.
                unsafe { walk(k, v, private_data) }
            })
        };
        status(t.rescue(&mut f))
    })
}

/// Whether robust process-shared mutexes work here (for TDB_MUTEX_LOCKING).
#[no_mangle]
pub extern "C" fn tdb_runtime_check_for_robust_mutexes() -> bool {
    guard(false, || Ok(tdb_engine::runtime_check_for_robust_mutexes()))
}

/// Write-locks the hash chain of `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock) }
}

/// Write-locks the hash chain of `key` without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock_nonblock(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock_nonblock) }
}

/// Releases the chain write lock of `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainunlock(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainunlock) }
}

/// Read-locks the hash chain of `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock_read(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock_read) }
}

/// Read-locks the hash chain of `key` without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock_read_nonblock(
    tdb: *mut tdb_context,
    key: TDB_DATA,
) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock_read_nonblock) }
}

/// Releases the chain read lock of `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainunlock_read(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainunlock_read) }
}

/// Marks the chain lock of `key` as held without taking it; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock_mark(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock_mark) }
}

/// Forgets a marked chain lock of `key`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_chainlock_unmark(tdb: *mut tdb_context, key: TDB_DATA) -> c_int {
    // SAFETY: live handle and a valid key (C contract).
    unsafe { keyed(tdb, key, Tdb::chainlock_unmark) }
}

/// A waiting lock gives up (TDB_ERR_LOCK_TIMEOUT) once `*sigptr` becomes non-zero; NULL clears it.
#[no_mangle]
pub unsafe extern "C" fn tdb_setalarm_sigptr(
    tdb: *mut tdb_context,
    sigptr: *mut volatile_sig_atomic_t,
) {
    /// The flag a signal handler sets.
    struct SignalFlag(*const sig_atomic_t);
    // SAFETY: the flag is only read, with volatile reads, as a signal handler's
    // flag is meant to be; C keeps it alive while it is installed (C contract).
    unsafe impl Send for SignalFlag {}
    // SAFETY: as for Send.
    unsafe impl Sync for SignalFlag {}
    impl SignalFlag {
        fn raised(&self) -> bool {
            // SAFETY: see above; the pointer is not NULL (checked when installed).
            unsafe { ptr::read_volatile(self.0) != 0 }
        }
    }

    guard((), || {
        // SAFETY: live handle (C contract).
        let t = unsafe { db(tdb) }?;
        if sigptr.is_null() {
            t.set_interrupt_probe(None);
        } else {
            let flag = SignalFlag(sigptr);
            t.set_interrupt_probe(Some(Arc::new(move || flag.raised())));
        }
        Ok(())
    })
}

/// Deletes every record; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_wipe_all(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::wipe_all) }
}

/// Rewrites the database compactly; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_repack(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::repack) }
}

/// Prints every hash chain and record to stdout (debugging).
#[no_mangle]
pub unsafe extern "C" fn tdb_dump_all(tdb: *mut tdb_context) {
    // SAFETY: live handle (C contract).
    unsafe { void(tdb, |t| print_to_c_stdout(&t.dump_all())) }
}

/// Prints the freelist to stdout (debugging); 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_printfreelist(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe {
        simple(tdb, |t| {
            let (text, result) = t.print_freelist();
            print_to_c_stdout(&text);
            result
        })
    }
}

/// Writes `text` through the C library's stdout, so that it interleaves correctly
/// with the caller's own printf output (both share one stdio buffer).
fn print_to_c_stdout(text: &str) {
    let Ok(c) = CString::new(text.replace('\0', "")) else {
        return;
    };
    // SAFETY: a constant format string and a NUL-terminated argument.
    unsafe { libc::printf(c"%s".as_ptr(), c.as_ptr()) };
}

/// Checks the freelist for loops, storing its length in `*pnum_entries`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_validate_freelist(
    tdb: *mut tdb_context,
    pnum_entries: *mut c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: pnum_entries is NULL or writable (C contract).
        let mut out = unsafe { pnum_entries.as_mut() };
        if let Some(n) = out.as_deref_mut() {
            *n = 0;
        }
        // SAFETY: live handle (C contract).
        let result = unsafe { db(tdb) }?.validate_freelist();
        if let (Ok(count), Some(n)) = (&result, out) {
            *n = *count;
        }
        Ok(if result.is_ok() { 0 } else { -1 })
    })
}

/// The number of freelist entries, or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_freelist_size(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    guard(-1, || Ok(unsafe { db(tdb) }?.freelist_size().unwrap_or(-1)))
}

/// A malloc'd text of statistics about the database (caller frees); NULL on error.
#[no_mangle]
pub unsafe extern "C" fn tdb_summary(tdb: *mut tdb_context) -> *mut c_char {
    guard(ptr::null_mut(), || {
        // SAFETY: live handle (C contract).
        let Ok(text) = unsafe { db(tdb) }?.summary() else {
            return Ok(ptr::null_mut());
        };
        let mut bytes = text.into_bytes();
        bytes.retain(|&b| b != 0);
        bytes.push(0);
        Ok(malloc_copy(&bytes)?.dptr.cast::<c_char>())
    })
}

/// The empty TDB_DATA {NULL, 0}.
#[no_mangle]
pub static mut tdb_null: TDB_DATA = TDB_DATA::NULL;

// Exported by Samba's library but not declared in its tdb.h (Samba's own tools
// declare them); cbindgen.toml keeps them out of the header likewise.

/// Locks hash list `list` (-1 = freelist) with F_RDLCK/F_WRLCK `ltype` without waiting; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_lock_nonblock(
    tdb: *mut tdb_context,
    list: c_int,
    ltype: c_int,
) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, |t| t.lock_list_nonblock(list, ltype)) }
}

/// Unlocks hash list `list` locked with `ltype`; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_unlock(tdb: *mut tdb_context, list: c_int, ltype: c_int) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, |t| t.unlock_list(list, ltype)) }
}

/// Marks the transaction lock as held without taking it; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_write_lock_mark(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_write_lock_mark) }
}

/// Forgets a marked transaction lock; 0 or -1.
#[no_mangle]
pub unsafe extern "C" fn tdb_transaction_write_lock_unmark(tdb: *mut tdb_context) -> c_int {
    // SAFETY: live handle (C contract).
    unsafe { simple(tdb, Tdb::transaction_write_lock_unmark) }
}
