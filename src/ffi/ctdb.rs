//! The C ABI of libctdb (CTDB's client library as it last shipped, ctdb.h),
//! exported from libtdb.so.1 under its own version node, on top of the safe
//! client core `ctdb_client`.
//!
//! Rules every function here follows:
//! * Each exported function runs its body through `guard` (src/ffi/guard.rs):
//!   NULL handles make the call fail (NULL / false / -1 with errno EINVAL) and
//!   a panic is caught and turned into that same failure.
//! * No Rust reference to a connection is held while a C callback runs: the
//!   events of `ctdb_service` are collected first, then dispatched one by one,
//!   so a callback may call back into any function of this file.
//! * Results handed to C (node maps, vnn maps, public ips, interfaces, db
//!   statistics) are malloc'd in the original C layouts and freed with their
//!   `ctdb_free_*` function (or free()); a record's data stays owned by its
//!   lock until `ctdb_release_lock`.
//!
//! include/ctdb.h is generated from this file by build.rs with cbindgen
//! (cbindgen-ctdb.toml adds the types ctdb.h takes from ctdb_protocol.h).

#![allow(non_camel_case_types, clippy::missing_safety_doc)]

use super::guard::{bytes, guard, set_errno, Checked, Refused};
use super::tdb::TDB_DATA;
use ctdb_client::{
    ClientError, Connection, DbHandle, Event, Getter, LockAttempt, LockId, RequestId, Transaction,
};
use ctdb_protocol::{ControlOpcode, ControlRequest, DbId, Layout, Pnn, Srvid};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;
use std::ptr;

// The `.symver` directives build.rs derives from src/ffi/versions.txt for the
// ctdb_* symbols: every one at the CTDB_1.0 node.
#[cfg(target_os = "linux")]
std::arch::global_asm!(include_str!(concat!(env!("OUT_DIR"), "/symver-ctdb.s")));

/// Traverse callback status: a record.
pub const TRAVERSE_STATUS_RECORD: c_int = 0;
/// Traverse callback status: the traverse ended; no more calls follow.
pub const TRAVERSE_STATUS_FINISHED: c_int = 1;
/// Traverse callback status: the traverse failed; no more calls follow.
pub const TRAVERSE_STATUS_ERROR: c_int = 2;

/// poll(2)'s POLLIN, as ctdb_which_events reports it.
const POLLIN: c_int = libc::POLLIN as c_int;
/// poll(2)'s POLLOUT.
const POLLOUT: c_int = libc::POLLOUT as c_int;
/// syslog's LOG_ERR, the severity of the library's error reports.
const LOG_ERR: c_int = 3;
/// The default socket path of a ctdbd.
const DEFAULT_SOCKET: &str = "/var/run/ctdb/ctdbd.socket";

/// The x86-64 `va_list` element; other targets get no log callbacks.
#[repr(C)]
pub struct va_list_tag {
    gp_offset: u32,
    fp_offset: u32,
    overflow_arg_area: *mut c_void,
    reg_save_area: *mut c_void,
}

/// Where the library's log lines go: (log_priv, severity, format, va_list).
pub type ctdb_log_fn_t =
    Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *mut va_list_tag)>;

/// Called when an asynchronous request completes.
pub type ctdb_callback_t =
    Option<unsafe extern "C" fn(*mut ctdb_connection, *mut ctdb_request, *mut c_void)>;

/// Called with a locked record (lock NULL when the lock could not be had).
pub type ctdb_rrl_callback_t =
    Option<unsafe extern "C" fn(*mut ctdb_db, *mut ctdb_lock, TDB_DATA, *mut c_void)>;

/// Called for each record of a traverse, then once with FINISHED or ERROR;
/// a non-zero return stops the traverse.
pub type ctdb_traverse_callback_t = Option<
    unsafe extern "C" fn(
        *mut ctdb_connection,
        *mut ctdb_db,
        c_int,
        TDB_DATA,
        TDB_DATA,
        *mut c_void,
    ) -> c_int,
>;

/// Called with each message for a registered srvid.
pub type ctdb_message_fn_t =
    Option<unsafe extern "C" fn(*mut ctdb_connection, u64, TDB_DATA, *mut c_void)>;

/// A registered message handler.
#[derive(Clone, Copy)]
struct Handler {
    srvid: u64,
    handler: ctdb_message_fn_t,
    data: *mut c_void,
}

/// A record lock being migrated here for an asynchronous lock call.
struct LockWait {
    db: *mut ctdb_db,
    callback: ctdb_rrl_callback_t,
    cbdata: *mut c_void,
}

/// A running traverse.
struct TraverseWait {
    db: *mut ctdb_db,
    callback: ctdb_traverse_callback_t,
    cbdata: *mut c_void,
    /// The callback asked to stop: it is not called again, as in libctdb.
    stopped: bool,
}

/// A connection to a ctdbd (opaque to C).
pub struct ctdb_connection {
    core: Connection,
    log: ctdb_log_fn_t,
    log_priv: *mut c_void,
    requests: HashMap<RequestId, *mut ctdb_request>,
    handlers: Vec<Handler>,
    lock_waits: HashMap<RequestId, LockWait>,
    traversals: HashMap<RequestId, TraverseWait>,
}

/// What a request does besides completing (opaque to C).
#[derive(Clone, Copy)]
enum RequestKind {
    Plain,
    Attach,
    AddHandler(Handler),
    RemoveHandler,
    CheckHandlers,
}

/// An asynchronous request (opaque to C); freed with ctdb_request_free.
pub struct ctdb_request {
    ctdb: *mut ctdb_connection,
    id: RequestId,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
    kind: RequestKind,
}

/// An attached database (opaque to C).
pub struct ctdb_db {
    ctdb: *mut ctdb_connection,
    handle: DbHandle,
}

/// A held record lock (opaque to C); ends with ctdb_release_lock.
pub struct ctdb_lock {
    db: *mut ctdb_db,
    lock: LockId,
    data: Vec<u8>,
}

/// The node map (the original C layout: `num` entries of pnn, flags, address).
pub struct ctdb_node_map {
    _opaque: [u8; 0],
}
/// The vnn map: generation, size and a malloc'd array of pnns.
pub struct ctdb_vnn_map {
    _opaque: [u8; 0],
}
/// The public addresses and the node serving each.
pub struct ctdb_all_public_ips {
    _opaque: [u8; 0],
}
/// The interfaces of a node.
pub struct ctdb_ifaces_list {
    _opaque: [u8; 0],
}
/// A database's statistics (the original C layout).
pub struct ctdb_db_statistics {
    _opaque: [u8; 0],
}

/// The syslog-like level up to which the library logs (LOG_WARNING default).
#[no_mangle]
pub static mut ctdb_log_level: c_int = 4;

/// The connection behind a handle.
///
/// # Safety
/// `ctdb` is NULL or a live handle from ctdb_connect; no other reference to it
/// is alive (none is held across a callback).
unsafe fn conn<'a>(ctdb: *mut ctdb_connection) -> Checked<&'a mut ctdb_connection> {
    // SAFETY: per the caller's contract.
    unsafe { ctdb.as_mut() }.ok_or_else(|| {
        set_errno(libc::EINVAL);
        Refused
    })
}

/// Reports `e` through errno and the connection's log; the failure value.
fn fail<T>(ctdb: *mut ctdb_connection, e: &ClientError) -> Checked<T> {
    log(ctdb, LOG_ERR, &format!("libctdb: {e}"));
    set_errno(e.errno());
    Err(Refused)
}

/// Sends `message` to the connection's log function when its level allows.
fn log(ctdb: *mut ctdb_connection, severity: c_int, message: &str) {
    // SAFETY: ctdb is a live handle (every caller has checked it); only two
    // fields are copied out.
    let Some((Some(f), private)) = (unsafe { ctdb.as_ref() }).map(|c| (c.log, c.log_priv)) else {
        return;
    };
    // SAFETY: a plain read of the exported level (C may write it between calls).
    let level = unsafe { ptr::addr_of!(ctdb_log_level).read_volatile() };
    if severity > level {
        return;
    }
    call_log(f, private, severity, message);
}

/// Calls a log function with `message` as its format (every '%' doubled)
/// and a va_list that is never read.
#[cfg(target_arch = "x86_64")]
fn call_log(
    f: unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *mut va_list_tag),
    private: *mut c_void,
    severity: c_int,
    message: &str,
) {
    let Ok(format) = std::ffi::CString::new(message.replace('%', "%%")) else {
        return;
    };
    let mut empty = va_list_tag {
        gp_offset: 48,
        fp_offset: 304,
        overflow_arg_area: ptr::null_mut(),
        reg_save_area: ptr::null_mut(),
    };
    // SAFETY: the caller's log function with a NUL-terminated format that has
    // no conversions, so the (valid, exhausted) va_list is never read.
    unsafe { f(private, severity, format.as_ptr(), &mut empty) };
}

/// Log callbacks need an x86-64 va_list; other targets do not log.
#[cfg(not(target_arch = "x86_64"))]
fn call_log(
    _f: unsafe extern "C" fn(*mut c_void, c_int, *const c_char, *mut va_list_tag),
    _private: *mut c_void,
    _severity: c_int,
    _message: &str,
) {
}

/// The `_send` calls: starts a core request with `start` and hands C a
/// request handle for it; NULL (errno EINVAL for a NULL handle) when the
/// handle is NULL or `start` refuses.
///
/// # Safety
/// `ctdb` is NULL or a live handle.
unsafe fn start_request(
    ctdb: *mut ctdb_connection,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
    kind: RequestKind,
    start: impl FnOnce(&mut ctdb_connection) -> Checked<RequestId>,
) -> *mut ctdb_request {
    guard(ptr::null_mut(), || {
        // SAFETY: per the caller's contract.
        let c = unsafe { conn(ctdb) }?;
        let id = start(c)?;
        let req = Box::into_raw(Box::new(ctdb_request {
            ctdb,
            id,
            callback,
            cbdata,
            kind,
        }));
        c.requests.insert(id, req);
        Ok(req)
    })
}

/// The synchronous calls: waits for `req` to end, reads its result with
/// `recv` and frees it (errno stays as `recv` left it); `on_error` when
/// `req` is NULL (its send failed).
///
/// # Safety
/// `ctdb` is a live handle and `req` NULL or a live request of it.
unsafe fn wait_and_free<T>(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    on_error: T,
    recv: impl FnOnce(*mut ctdb_request) -> T,
) -> T {
    guard(on_error, || {
        // SAFETY: per the caller's contract.
        let id = unsafe { req.as_ref() }.ok_or(Refused)?.id;
        // SAFETY: per the caller's contract.
        unsafe { wait_for(ctdb, id) };
        let value = recv(req);
        let saved = super::guard::errno();
        // SAFETY: the request is ours to free.
        unsafe { ctdb_request_free(req) };
        set_errno(saved);
        Ok(value)
    })
}

/// Services the connection and runs the callbacks of what happened.
///
/// # Safety
/// `ctdb` is a live handle; no reference to it is held by the caller.
unsafe fn service(ctdb: *mut ctdb_connection, revents: c_int) -> bool {
    let events = {
        // SAFETY: per the caller's contract; the borrow ends in this block.
        let Some(c) = (unsafe { ctdb.as_mut() }) else {
            return false;
        };
        let readable = revents & (POLLIN | libc::POLLHUP as c_int | libc::POLLERR as c_int) != 0;
        c.core.service(readable, revents & POLLOUT != 0)
    };
    for event in events {
        // SAFETY: forwarded contract; dispatch holds no borrow across callbacks.
        unsafe { dispatch(ctdb, event) };
    }
    // SAFETY: as above.
    unsafe { ctdb.as_ref() }.is_some_and(|c| !c.core.is_broken())
}

/// Runs the C side of one event.
///
/// # Safety
/// As for [`service`].
unsafe fn dispatch(ctdb: *mut ctdb_connection, event: Event) {
    match event {
        // SAFETY: forwarded contract.
        Event::Completed(id) => unsafe { completed(ctdb, id) },
        // SAFETY: forwarded contract.
        Event::Message { srvid, data } => unsafe { deliver(ctdb, srvid.0, &data) },
        Event::TraverseRecord { id, key, data } => {
            // SAFETY: forwarded contract; the borrow ends before the callback.
            let Some((db, Some(f), cbdata)) = (unsafe { ctdb.as_mut() })
                .and_then(|c| c.traversals.get(&id))
                .filter(|t| !t.stopped)
                .map(|t| (t.db, t.callback, t.cbdata))
            else {
                return;
            };
            // SAFETY: the caller's callback with buffers valid for the call.
            let stop = unsafe {
                f(
                    ctdb,
                    db,
                    TRAVERSE_STATUS_RECORD,
                    data_of(&key),
                    data_of(&data),
                    cbdata,
                )
            };
            if stop != 0 {
                // SAFETY: as above.
                if let Some(c) = unsafe { ctdb.as_mut() } {
                    c.core.stop_traverse(id);
                    if let Some(t) = c.traversals.get_mut(&id) {
                        t.stopped = true;
                    }
                }
            }
        }
    }
}

/// A TDB_DATA over `b` (valid while `b` is).
fn data_of(b: &[u8]) -> TDB_DATA {
    TDB_DATA {
        dptr: if b.is_empty() {
            ptr::null_mut()
        } else {
            b.as_ptr().cast_mut()
        },
        dsize: b.len(),
    }
}

/// Calls the handlers registered for `srvid` (copied first, so a handler
/// may add or remove handlers).
///
/// # Safety
/// As for [`service`].
unsafe fn deliver(ctdb: *mut ctdb_connection, srvid: u64, data: &[u8]) {
    // SAFETY: forwarded contract; the borrow ends in this statement.
    let handlers: Vec<Handler> = unsafe { ctdb.as_ref() }
        .map(|c| {
            c.handlers
                .iter()
                .filter(|h| h.srvid == srvid || h.srvid == u64::MAX)
                .copied()
                .collect()
        })
        .unwrap_or_default();
    for h in handlers {
        if let Some(f) = h.handler {
            // SAFETY: the caller's handler with a buffer valid for the call.
            unsafe { f(ctdb, srvid, data_of(data), h.data) };
        }
    }
}

/// A request completed: finish the library's part, then call back.
///
/// # Safety
/// As for [`service`].
unsafe fn completed(ctdb: *mut ctdb_connection, id: RequestId) {
    // SAFETY: forwarded contract; every borrow below ends before a callback.
    let Some(c) = (unsafe { ctdb.as_mut() }) else {
        return;
    };
    if let Some(wait) = c.lock_waits.remove(&id) {
        let lock = c.core.locked(id);
        c.core.free(id);
        // SAFETY: forwarded contract.
        return unsafe { hand_lock(ctdb, wait, lock) };
    }
    if let Some(t) = c.traversals.remove(&id) {
        let status = match c.core.result(id) {
            Ok(_) => TRAVERSE_STATUS_FINISHED,
            Err(_) => TRAVERSE_STATUS_ERROR,
        };
        c.core.free(id);
        if let (Some(f), false) = (t.callback, t.stopped) {
            let none = data_of(&[]);
            // SAFETY: the caller's traverse callback.
            unsafe { f(ctdb, t.db, status, none, none, t.cbdata) };
        }
        return;
    }
    let Some(&req) = c.requests.get(&id) else {
        return;
    };
    // SAFETY: requests only holds live request handles (freeing removes them).
    let (kind, callback, cbdata) = unsafe { ((*req).kind, (*req).callback, (*req).cbdata) };
    if let RequestKind::AddHandler(h) = kind {
        if c.core.reply_status(id).is_ok() {
            c.handlers.push(h);
        }
    }
    if let Some(f) = callback {
        // SAFETY: the caller's completion callback with its own request.
        unsafe { f(ctdb, req, cbdata) };
    }
}

/// Gives an asynchronous lock call its lock (or NULL on failure).
///
/// # Safety
/// As for [`service`].
unsafe fn hand_lock(ctdb: *mut ctdb_connection, wait: LockWait, lock: Result<LockId, ClientError>) {
    let handed = match lock {
        // SAFETY: forwarded contract.
        Ok(lock) => unsafe { lock_handle(ctdb, wait.db, lock) },
        Err(e) => {
            let _ = fail::<()>(ctdb, &e);
            None
        }
    };
    let Some(f) = wait.callback else {
        return;
    };
    match handed {
        // SAFETY: a fresh lock handle and data it owns.
        Some(l) => unsafe { f(wait.db, l, data_of(&(*l).data), wait.cbdata) },
        // SAFETY: the caller's callback, told of the failure.
        None => unsafe { f(wait.db, ptr::null_mut(), data_of(&[]), wait.cbdata) },
    }
}

/// A lock handle for a held lock.
///
/// # Safety
/// As for [`service`].
unsafe fn lock_handle(
    ctdb: *mut ctdb_connection,
    db: *mut ctdb_db,
    lock: LockId,
) -> Option<*mut ctdb_lock> {
    // SAFETY: forwarded contract.
    let c = unsafe { ctdb.as_mut() }?;
    let data = c.core.record(lock).ok()?.data.clone();
    Some(Box::into_raw(Box::new(ctdb_lock { db, lock, data })))
}

/// Polls and services until request `id` ended (and maybe was freed by its
/// completion) or the connection broke.
///
/// # Safety
/// As for [`service`].
unsafe fn wait_for(ctdb: *mut ctdb_connection, id: RequestId) -> bool {
    loop {
        let (readable, writable) = {
            // SAFETY: forwarded contract; the borrow ends in this block.
            let Some(c) = (unsafe { ctdb.as_ref() }) else {
                return false;
            };
            if !c.core.is_pending(id) {
                return true;
            }
            if c.core.is_broken() {
                return false;
            }
            c.core.poll_once(1000)
        };
        let mut revents = 0;
        if readable {
            revents |= POLLIN;
        }
        if writable {
            revents |= POLLOUT;
        }
        // SAFETY: forwarded contract.
        unsafe { service(ctdb, revents) };
    }
}

/// The request behind a handle, checked to belong to `ctdb`.
///
/// # Safety
/// `req` is NULL or a live request handle.
unsafe fn request<'a>(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
) -> Checked<&'a ctdb_request> {
    // SAFETY: per the caller's contract.
    match unsafe { req.as_ref() } {
        Some(r) if r.ctdb == ctdb => Ok(r),
        _ => {
            set_errno(libc::EINVAL);
            Err(Refused)
        }
    }
}

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

/// Connects to the ctdbd socket at `addr` (NULL: the default path); NULL
/// with errno set when it cannot.
#[no_mangle]
pub unsafe extern "C" fn ctdb_connect(
    addr: *const c_char,
    log_fn: ctdb_log_fn_t,
    log_priv: *mut c_void,
) -> *mut ctdb_connection {
    guard(ptr::null_mut(), || {
        let path = if addr.is_null() {
            DEFAULT_SOCKET.to_string()
        } else {
            // SAFETY: a NUL-terminated string from the caller.
            unsafe { CStr::from_ptr(addr) }
                .to_string_lossy()
                .into_owned()
        };
        let core = match Connection::connect(Path::new(&path)) {
            Ok(c) => c,
            Err(e) => {
                set_errno(e.errno());
                return Err(Refused);
            }
        };
        Ok(Box::into_raw(Box::new(ctdb_connection {
            core,
            log: log_fn,
            log_priv,
            requests: HashMap::new(),
            handlers: Vec::new(),
            lock_waits: HashMap::new(),
            traversals: HashMap::new(),
        })))
    })
}

extern "C" {
    fn vfprintf(stream: *mut libc::FILE, format: *const c_char, ap: *mut va_list_tag) -> c_int;
}

/// A log function writing each line to the stdio stream `log_priv`.
#[no_mangle]
pub unsafe extern "C" fn ctdb_log_file(
    log_priv: *mut libc::FILE,
    severity: c_int,
    format: *const c_char,
    ap: *mut va_list_tag,
) {
    let _ = severity;
    guard((), || {
        if log_priv.is_null() || format.is_null() {
            return Err(Refused);
        }
        // SAFETY: the stream, format and va_list the caller's log call passed on.
        unsafe {
            vfprintf(log_priv, format, ap);
            libc::fputc(c_int::from(b'\n'), log_priv);
        }
        Ok(())
    })
}

/// Closes the connection and frees it; requests not yet freed are freed.
#[no_mangle]
pub unsafe extern "C" fn ctdb_disconnect(ctdb: *mut ctdb_connection) {
    guard((), || {
        if ctdb.is_null() {
            return Err(Refused);
        }
        // SAFETY: a live handle from ctdb_connect, owned by the caller until now.
        let c = unsafe { Box::from_raw(ctdb) };
        for (_, req) in c.requests {
            // SAFETY: every handle in the table is live and ours to free now.
            drop(unsafe { Box::from_raw(req) });
        }
        Ok(())
    })
}

/// Requests queued or in flight.
#[no_mangle]
pub unsafe extern "C" fn ctdb_num_active(ctdb: *mut ctdb_connection) -> c_int {
    guard(-1, || {
        // SAFETY: a live handle from the caller.
        unsafe { conn(ctdb) }.map(|c| (c.core.num_out_queue() + c.core.num_in_flight()) as c_int)
    })
}

/// Requests sent and waiting for their reply.
#[no_mangle]
pub unsafe extern "C" fn ctdb_num_in_flight(ctdb: *mut ctdb_connection) -> c_int {
    guard(-1, || {
        // SAFETY: a live handle from the caller.
        unsafe { conn(ctdb) }.map(|c| c.core.num_in_flight() as c_int)
    })
}

/// Requests not yet written to the daemon.
#[no_mangle]
pub unsafe extern "C" fn ctdb_num_out_queue(ctdb: *mut ctdb_connection) -> c_int {
    guard(-1, || {
        // SAFETY: a live handle from the caller.
        unsafe { conn(ctdb) }.map(|c| c.core.num_out_queue() as c_int)
    })
}

/// The descriptor to poll.
#[no_mangle]
pub unsafe extern "C" fn ctdb_get_fd(ctdb: *mut ctdb_connection) -> c_int {
    // SAFETY: a live handle from the caller.
    guard(-1, || unsafe { conn(ctdb) }.map(|c| c.core.fd()))
}

/// The poll events to wait for: POLLIN, and POLLOUT while there is output.
#[no_mangle]
pub unsafe extern "C" fn ctdb_which_events(ctdb: *mut ctdb_connection) -> c_int {
    guard(0, || {
        // SAFETY: a live handle from the caller.
        let c = unsafe { conn(ctdb) }?;
        Ok(if c.core.wants_write() {
            POLLIN | POLLOUT
        } else {
            POLLIN
        })
    })
}

/// Moves data for the poll events `revents` and runs the callbacks of what
/// completed; false once the connection is broken.
#[no_mangle]
pub unsafe extern "C" fn ctdb_service(ctdb: *mut ctdb_connection, revents: c_int) -> bool {
    // SAFETY: a live handle from the caller, not borrowed by it.
    guard(false, || Ok(unsafe { service(ctdb, revents) }))
}

/// Frees a request; one still running is cancelled (no callback).
#[no_mangle]
pub unsafe extern "C" fn ctdb_request_free(req: *mut ctdb_request) {
    guard((), || {
        // SAFETY: a live request handle from the caller.
        let r = unsafe { req.as_ref() }.ok_or(Refused)?;
        // SAFETY: its connection is live while its requests are.
        let c = unsafe { conn(r.ctdb) }?;
        c.requests.remove(&r.id);
        c.core.free(r.id);
        // SAFETY: the handle is the caller's to give up, and now unlisted.
        drop(unsafe { Box::from_raw(req) });
        Ok(())
    })
}

/// Cancels a request: no callback will run and the request is freed.
#[no_mangle]
pub unsafe extern "C" fn ctdb_cancel(ctdb: *mut ctdb_connection, req: *mut ctdb_request) {
    guard((), || {
        // SAFETY: live handles from the caller.
        unsafe { request(ctdb, req) }?;
        // SAFETY: as above.
        unsafe { ctdb_request_free(req) };
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Databases and records
// ---------------------------------------------------------------------------

/// Starts attaching database `name`; the callback runs when it is done.
/// `tdb_flags` is not used: the local tdb is opened with the flags the daemon
/// gives (DB_OPEN_FLAGS), as Samba 4.17's clients open it.
#[no_mangle]
pub unsafe extern "C" fn ctdb_attachdb_send(
    ctdb: *mut ctdb_connection,
    name: *const c_char,
    persistent: bool,
    tdb_flags: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let _ = tdb_flags;
    let start = |c: &mut ctdb_connection| {
        if name.is_null() {
            set_errno(libc::EINVAL);
            return Err(Refused);
        }
        // SAFETY: a NUL-terminated string from the caller.
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        Ok(c.core.attach(&name, persistent))
    };
    // SAFETY: a live handle from the caller.
    unsafe { start_request(ctdb, callback, cbdata, RequestKind::Attach, start) }
}

/// The database an attach request gave; NULL with errno on failure.
#[no_mangle]
pub unsafe extern "C" fn ctdb_attachdb_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
) -> *mut ctdb_db {
    guard(ptr::null_mut(), || {
        // SAFETY: live handles from the caller.
        let r = unsafe { request(ctdb, req) }?;
        // SAFETY: as above.
        let c = unsafe { conn(ctdb) }?;
        match c.core.attached(r.id) {
            Ok(handle) => Ok(Box::into_raw(Box::new(ctdb_db { ctdb, handle }))),
            Err(e) => fail(ctdb, &e),
        }
    })
}

/// Attaches database `name` (waits); NULL with errno on failure.
#[no_mangle]
pub unsafe extern "C" fn ctdb_attachdb(
    ctdb: *mut ctdb_connection,
    name: *const c_char,
    persistent: bool,
    tdb_flags: u32,
) -> *mut ctdb_db {
    // SAFETY: the caller's handles, passed on.
    let req =
        unsafe { ctdb_attachdb_send(ctdb, name, persistent, tdb_flags, None, ptr::null_mut()) };
    // SAFETY: as above.
    unsafe { wait_and_free(ctdb, req, ptr::null_mut(), |r| ctdb_attachdb_recv(ctdb, r)) }
}

/// Detaches a database (its held lock is released) and frees the handle.
#[no_mangle]
pub unsafe extern "C" fn ctdb_detachdb(ctdb: *mut ctdb_connection, db: *mut ctdb_db) {
    guard((), || {
        // SAFETY: live handles from the caller.
        let c = unsafe { conn(ctdb) }?;
        if db.is_null() {
            return Err(Refused);
        }
        // SAFETY: the caller gives the handle up.
        let d = unsafe { Box::from_raw(db) };
        c.core.detach(d.handle);
        Ok(())
    })
}

/// Locks a record, migrating it here first when needed; false with errno
/// when the lock cannot be asked for (one is held already, say).
unsafe fn readrecordlock_internal(
    db: *mut ctdb_db,
    key: TDB_DATA,
    readonly: bool,
    callback: ctdb_rrl_callback_t,
    cbdata: *mut c_void,
) -> Checked<bool> {
    // SAFETY: a live database handle from the caller.
    let d = unsafe { db.as_ref() }.ok_or(Refused)?;
    let ctdb = d.ctdb;
    // SAFETY: the caller's key bytes.
    let key = unsafe { bytes(key) }?;
    // SAFETY: the database's connection is live.
    let c = unsafe { conn(ctdb) }?;
    match c.core.lock_record(d.handle, key, readonly) {
        Ok(LockAttempt::Held(lock)) => {
            let wait = LockWait {
                db,
                callback,
                cbdata,
            };
            // SAFETY: no borrow of the connection is used after this call.
            unsafe { hand_lock(ctdb, wait, Ok(lock)) };
            Ok(true)
        }
        Ok(LockAttempt::Pending(id)) => {
            c.lock_waits.insert(
                id,
                LockWait {
                    db,
                    callback,
                    cbdata,
                },
            );
            Ok(true)
        }
        Err(e) => fail(ctdb, &e),
    }
}

/// Asks for a record's lock; the callback gets it (now, or after a migration).
#[no_mangle]
pub unsafe extern "C" fn ctdb_readrecordlock_async(
    ctdb_db: *mut ctdb_db,
    key: TDB_DATA,
    callback: ctdb_rrl_callback_t,
    cbdata: *mut c_void,
) -> bool {
    // SAFETY: the caller's handles.
    guard(false, || unsafe {
        readrecordlock_internal(ctdb_db, key, false, callback, cbdata)
    })
}

/// As ctdb_readrecordlock_async, settling for a read-only copy.
#[no_mangle]
pub unsafe extern "C" fn ctdb_readonlyrecordlock_async(
    ctdb_db: *mut ctdb_db,
    key: TDB_DATA,
    callback: ctdb_rrl_callback_t,
    cbdata: *mut c_void,
) -> bool {
    // SAFETY: the caller's handles.
    guard(false, || unsafe {
        readrecordlock_internal(ctdb_db, key, true, callback, cbdata)
    })
}

/// Where a synchronous lock call's callback leaves its lock.
struct SyncLock {
    lock: *mut ctdb_lock,
    data: TDB_DATA,
    called: bool,
}

unsafe extern "C" fn sync_lock_cb(
    _db: *mut ctdb_db,
    lock: *mut ctdb_lock,
    data: TDB_DATA,
    p: *mut c_void,
) {
    // SAFETY: p is the SyncLock of ctdb_readrecordlock, alive while it waits.
    let s = unsafe { &mut *p.cast::<SyncLock>() };
    s.lock = lock;
    s.data = data;
    s.called = true;
}

/// Locks a record (waits for a migration); NULL with errno on failure.
/// `*data` is the value, owned by the lock.
#[no_mangle]
pub unsafe extern "C" fn ctdb_readrecordlock(
    ctdb: *mut ctdb_connection,
    ctdb_db: *mut ctdb_db,
    key: TDB_DATA,
    data: *mut TDB_DATA,
) -> *mut ctdb_lock {
    guard(ptr::null_mut(), || {
        let mut s = SyncLock {
            lock: ptr::null_mut(),
            data: data_of(&[]),
            called: false,
        };
        let sp: *mut SyncLock = &mut s;
        // SAFETY: the caller's handles; sp outlives the wait below.
        if !unsafe { readrecordlock_internal(ctdb_db, key, false, Some(sync_lock_cb), sp.cast()) }?
        {
            return Err(Refused);
        }
        loop {
            // SAFETY: sp is valid; the callback writes through the same pointer.
            if unsafe { (*sp).called } {
                break;
            }
            // SAFETY: the live connection.
            let c = unsafe { conn(ctdb) }?;
            let Some(id) = c.lock_waits.keys().next().copied() else {
                break;
            };
            // SAFETY: as above.
            if !unsafe { wait_for(ctdb, id) } {
                break;
            }
        }
        // SAFETY: as above.
        let s = unsafe { &*sp };
        if s.lock.is_null() {
            if s.called {
                return Err(Refused);
            }
            set_errno(libc::EPIPE);
            return Err(Refused);
        }
        if !data.is_null() {
            // SAFETY: the caller's out pointer.
            unsafe { *data = s.data };
        }
        Ok(s.lock)
    })
}

/// Writes a locked record's new value (volatile databases only).
#[no_mangle]
pub unsafe extern "C" fn ctdb_writerecord(
    ctdb_db: *mut ctdb_db,
    lock: *mut ctdb_lock,
    data: TDB_DATA,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handles.
        let (d, l, value) = unsafe { (ctdb_db.as_ref(), lock.as_mut(), bytes(data)?) };
        let (Some(d), Some(l)) = (d, l) else {
            set_errno(libc::EBADF);
            return Err(Refused);
        };
        if l.db != ctdb_db {
            set_errno(libc::EBADF);
            return Err(Refused);
        }
        // SAFETY: the database's connection is live.
        let c = unsafe { conn(d.ctdb) }?;
        match c.core.write_record(l.lock, value) {
            Ok(()) => {
                l.data = value.to_vec();
                Ok(true)
            }
            Err(e) => fail(d.ctdb, &e),
        }
    })
}

/// Releases a record lock and frees it (and the data it owned).
#[no_mangle]
pub unsafe extern "C" fn ctdb_release_lock(ctdb_db: *mut ctdb_db, lock: *mut ctdb_lock) {
    guard((), || {
        if lock.is_null() {
            return Err(Refused);
        }
        // SAFETY: the caller gives the lock handle up.
        let l = unsafe { Box::from_raw(lock) };
        // SAFETY: the caller's database handle.
        let d = unsafe { ctdb_db.as_ref() }.ok_or(Refused)?;
        // SAFETY: the database's connection is live.
        let c = unsafe { conn(d.ctdb) }?;
        let _ = c.core.release(l.lock);
        Ok(())
    })
}

/// Starts a traverse of the database on its node.
#[no_mangle]
pub unsafe extern "C" fn ctdb_traverse_async(
    ctdb_db: *mut ctdb_db,
    callback: ctdb_traverse_callback_t,
    cbdata: *mut c_void,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handle.
        let d = unsafe { ctdb_db.as_ref() }.ok_or(Refused)?;
        // SAFETY: its connection is live.
        let c = unsafe { conn(d.ctdb) }?;
        match c.core.traverse(d.handle) {
            Ok(id) => {
                c.traversals.insert(
                    id,
                    TraverseWait {
                        db: ctdb_db,
                        callback,
                        cbdata,
                        stopped: false,
                    },
                );
                Ok(true)
            }
            Err(e) => fail(d.ctdb, &e),
        }
    })
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Registers `handler` for `srvid`; it is called from the completion on.
#[no_mangle]
pub unsafe extern "C" fn ctdb_set_message_handler_send(
    ctdb: *mut ctdb_connection,
    srvid: u64,
    handler: ctdb_message_fn_t,
    handler_data: *mut c_void,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let h = Handler {
        srvid,
        handler,
        data: handler_data,
    };
    let kind = RequestKind::AddHandler(h);
    let start = |c: &mut ctdb_connection| Ok(c.core.register_srvid(Srvid(srvid)));
    // SAFETY: the caller's handle.
    unsafe { start_request(ctdb, callback, cbdata, kind, start) }
}

/// True when the registration succeeded.
#[no_mangle]
pub unsafe extern "C" fn ctdb_set_message_handler_recv(
    ctdb: *mut ctdb_connection,
    handle: *mut ctdb_request,
) -> bool {
    // SAFETY: the caller's handles.
    guard(false, || unsafe { status_ok(ctdb, handle) })
}

/// Removes `handler` (no more calls) and deregisters `srvid`.
#[no_mangle]
pub unsafe extern "C" fn ctdb_remove_message_handler_send(
    ctdb: *mut ctdb_connection,
    srvid: u64,
    handler: ctdb_message_fn_t,
    handler_data: *mut c_void,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let start = |c: &mut ctdb_connection| {
        let before = c.handlers.len();
        let same = |h: &Handler| {
            h.srvid == srvid
                && h.data == handler_data
                && h.handler.map(|f| f as usize) == handler.map(|f| f as usize)
        };
        if let Some(i) = c.handlers.iter().position(same) {
            c.handlers.remove(i);
        }
        if c.handlers.len() == before {
            set_errno(libc::ENOENT);
            return Err(Refused);
        }
        Ok(c.core.deregister_srvid(Srvid(srvid)))
    };
    // SAFETY: the caller's handle.
    unsafe { start_request(ctdb, callback, cbdata, RequestKind::RemoveHandler, start) }
}

/// True when the deregistration succeeded.
#[no_mangle]
pub unsafe extern "C" fn ctdb_remove_message_handler_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
) -> bool {
    // SAFETY: the caller's handles.
    guard(false, || unsafe { status_ok(ctdb, req) })
}

/// A status-only control's success; false with errno otherwise.
///
/// # Safety
/// Live handles.
unsafe fn status_ok(ctdb: *mut ctdb_connection, req: *mut ctdb_request) -> Checked<bool> {
    // SAFETY: per the contract.
    let r = unsafe { request(ctdb, req) }?;
    // SAFETY: per the contract.
    let c = unsafe { conn(ctdb) }?;
    match c.core.reply_status(r.id) {
        Ok(0) => Ok(true),
        Ok(status) => fail(
            ctdb,
            &ClientError::CallFailed {
                status: status as i32,
            },
        ),
        Err(e) => fail(ctdb, &e),
    }
}

unsafe extern "C" fn ignore(_: *mut ctdb_connection, _: *mut ctdb_request, _: *mut c_void) {}

/// Registers a handler (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_set_message_handler(
    ctdb: *mut ctdb_connection,
    srvid: u64,
    handler: ctdb_message_fn_t,
    cbdata: *mut c_void,
) -> bool {
    // SAFETY: the caller's handles.
    let req = unsafe {
        ctdb_set_message_handler_send(ctdb, srvid, handler, cbdata, Some(ignore), ptr::null_mut())
    };
    // SAFETY: as above.
    unsafe { wait_and_free(ctdb, req, false, |r| ctdb_set_message_handler_recv(ctdb, r)) }
}

/// Removes a handler (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_remove_message_handler(
    ctdb: *mut ctdb_connection,
    srvid: u64,
    handler: ctdb_message_fn_t,
    handler_data: *mut c_void,
) -> bool {
    // SAFETY: the caller's handles.
    let req = unsafe {
        ctdb_remove_message_handler_send(
            ctdb,
            srvid,
            handler,
            handler_data,
            Some(ignore),
            ptr::null_mut(),
        )
    };
    // SAFETY: as above.
    unsafe {
        wait_and_free(ctdb, req, false, |r| {
            ctdb_remove_message_handler_recv(ctdb, r)
        })
    }
}

/// Queues a message to the handlers of `srvid` on node `pnn`.
#[no_mangle]
pub unsafe extern "C" fn ctdb_send_message(
    ctdb: *mut ctdb_connection,
    pnn: u32,
    srvid: u64,
    data: TDB_DATA,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handle and bytes.
        let (c, payload) = unsafe { (conn(ctdb)?, bytes(data)?) };
        match c.core.send_message(Pnn(pnn), Srvid(srvid), payload) {
            Ok(()) => Ok(true),
            Err(e) => fail(ctdb, &e),
        }
    })
}

/// Asks node `destnode` which of the `num` srvids in `mhs` have handlers
/// (CHECK_SRVIDS, which Samba 4.17's daemon no longer answers).
#[no_mangle]
pub unsafe extern "C" fn ctdb_check_message_handlers_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    num: u32,
    mhs: *mut u64,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let start = |c: &mut ctdb_connection| {
        if mhs.is_null() && num > 0 {
            set_errno(libc::EINVAL);
            return Err(Refused);
        }
        let ids: &[u64] = if num == 0 {
            &[]
        } else {
            // SAFETY: the caller's array of num srvids.
            unsafe { std::slice::from_raw_parts(mhs, num as usize) }
        };
        let data: Vec<u8> = ids.iter().flat_map(|s| s.to_le_bytes()).collect();
        let request = ControlRequest::Other {
            opcode: ControlOpcode::CheckSrvids,
            data,
        };
        Ok(c.core.control(Pnn(destnode), request))
    };
    // SAFETY: the caller's handle.
    unsafe { start_request(ctdb, callback, cbdata, RequestKind::CheckHandlers, start) }
}

/// Fills `result[i]` with 1 when srvid i has a handler.
#[no_mangle]
pub unsafe extern "C" fn ctdb_check_message_handlers_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    num: u32,
    result: *mut u8,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handles.
        let (r, c) = unsafe { (request(ctdb, req)?, conn(ctdb)?) };
        let bitmap = match c.core.reply_data(r.id) {
            Ok(ctdb_protocol::ControlReply::Other(d)) => d,
            Ok(_) => Vec::new(),
            Err(e) => return fail(ctdb, &e),
        };
        if result.is_null() || bitmap.len() * 8 < num as usize {
            set_errno(libc::EIO);
            return Err(Refused);
        }
        for i in 0..num as usize {
            // SAFETY: the caller's array of num bytes.
            unsafe { *result.add(i) = (bitmap[i / 8] >> (i % 8)) & 1 };
        }
        Ok(true)
    })
}

/// ctdb_check_message_handlers_send and _recv (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_check_message_handlers(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    num: u32,
    mhs: *mut u64,
    result: *mut u8,
) -> bool {
    // SAFETY: the caller's handles.
    let req = unsafe {
        ctdb_check_message_handlers_send(ctdb, destnode, num, mhs, Some(ignore), ptr::null_mut())
    };
    // SAFETY: as above.
    unsafe {
        wait_and_free(ctdb, req, false, |r| {
            ctdb_check_message_handlers_recv(ctdb, r, num, result)
        })
    }
}

// ---------------------------------------------------------------------------
// Getters
// ---------------------------------------------------------------------------

/// Sends a getter control.
///
/// # Safety
/// A live handle.
unsafe fn getter_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    getter: Getter,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let start = |c: &mut ctdb_connection| Ok(c.core.get(Pnn(destnode), getter));
    // SAFETY: per the contract.
    unsafe { start_request(ctdb, callback, cbdata, RequestKind::Plain, start) }
}

/// Reads a getter's result with `read` and stores it through `out`.
///
/// # Safety
/// Live handles; `out` NULL or writable.
unsafe fn getter_recv<T>(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    out: *mut T,
    read: impl FnOnce(&Connection, RequestId) -> Result<T, ClientError>,
) -> bool {
    guard(false, || {
        // SAFETY: per the contract.
        let (r, c) = unsafe { (request(ctdb, req)?, conn(ctdb)?) };
        if out.is_null() {
            set_errno(libc::EINVAL);
            return Err(Refused);
        }
        match read(&c.core, r.id) {
            Ok(v) => {
                // SAFETY: the caller's out pointer.
                unsafe { out.write(v) };
                Ok(true)
            }
            Err(e) => fail(ctdb, &e),
        }
    })
}

/// Asks node `destnode` for its pnn.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpnn_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::Pnn, callback, cbdata) }
}

/// The pnn a ctdb_getpnn_send request got.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpnn_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    pnn: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe { getter_recv(ctdb, req, pnn, |c, id| c.pnn_of(id).map(|p| p.0)) }
}

/// Node `destnode`'s pnn (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpnn(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    pnn: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getpnn_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getpnn_recv(ctdb, r, pnn),
        )
    }
}

/// Asks for the statistics of database `db_id` on `destnode`.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbstat_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    db_id: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe {
        getter_send(
            ctdb,
            destnode,
            Getter::DbStatistics(DbId(db_id)),
            callback,
            cbdata,
        )
    }
}

/// The statistics (malloc'd; ctdb_free_dbstat frees them).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbstat_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    stat: *mut *mut ctdb_db_statistics,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, req, stat, |c, id| {
            c.db_statistics_of(id)
                .and_then(|s| super::ctdb_layout::db_statistics(&s))
        })
    }
}

/// Database statistics (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbstat(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    db_id: u32,
    stat: *mut *mut ctdb_db_statistics,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getdbstat_send(ctdb, destnode, db_id, None, ptr::null_mut()),
            false,
            |r| ctdb_getdbstat_recv(ctdb, r, stat),
        )
    }
}

/// Frees statistics from ctdb_getdbstat.
#[no_mangle]
pub unsafe extern "C" fn ctdb_free_dbstat(stat: *mut ctdb_db_statistics) {
    // SAFETY: NULL or a malloc'd block from ctdb_getdbstat.
    unsafe { libc::free(stat.cast()) };
}

/// Asks node `destnode` for its capabilities.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getcapabilities_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::Capabilities, callback, cbdata) }
}

/// The CTDB_CAP_* bits a capabilities request got.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getcapabilities_recv(
    ctdb: *mut ctdb_connection,
    handle: *mut ctdb_request,
    capabilities: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe { getter_recv(ctdb, handle, capabilities, |c, id| c.capabilities_of(id)) }
}

/// Node `destnode`'s capabilities (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getcapabilities(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    capabilities: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getcapabilities_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getcapabilities_recv(ctdb, r, capabilities),
        )
    }
}

/// Asks for the sequence number of database `dbid` on `destnode`.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbseqnum_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    dbid: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe {
        getter_send(
            ctdb,
            destnode,
            Getter::DbSeqnum(DbId(dbid)),
            callback,
            cbdata,
        )
    }
}

/// The sequence number a seqnum request got.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbseqnum_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    seqnum: *mut u64,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe { getter_recv(ctdb, req, seqnum, |c, id| c.db_seqnum_of(id)) }
}

/// A database's sequence number (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getdbseqnum(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    dbid: u32,
    seqnum: *mut u64,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getdbseqnum_send(ctdb, destnode, dbid, None, ptr::null_mut()),
            false,
            |r| ctdb_getdbseqnum_recv(ctdb, r, seqnum),
        )
    }
}

/// Asks node `destnode` for the node map.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getnodemap_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::NodeMap, callback, cbdata) }
}

/// The node map (malloc'd; ctdb_free_nodemap frees it).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getnodemap_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    nodemap: *mut *mut ctdb_node_map,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, req, nodemap, |c, id| {
            c.nodemap_of(id)
                .and_then(|m| super::ctdb_layout::c_copy(&m.to_bytes(), 4 + 36))
        })
    }
}

/// The node map (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getnodemap(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    nodemap: *mut *mut ctdb_node_map,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getnodemap_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getnodemap_recv(ctdb, r, nodemap),
        )
    }
}

/// Frees a node map.
#[no_mangle]
pub unsafe extern "C" fn ctdb_free_nodemap(nodemap: *mut ctdb_node_map) {
    // SAFETY: NULL or a malloc'd block from ctdb_getnodemap.
    unsafe { libc::free(nodemap.cast()) };
}

/// Asks node `destnode` for its interfaces.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getifaces_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::Ifaces, callback, cbdata) }
}

/// The interfaces (malloc'd; ctdb_free_ifaces frees them).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getifaces_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    ifaces: *mut *mut ctdb_ifaces_list,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, req, ifaces, |c, id| {
            c.ifaces_of(id)
                .and_then(|m| super::ctdb_layout::c_copy(&m.to_bytes(), 4 + 24))
        })
    }
}

/// The interfaces (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getifaces(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    ifaces: *mut *mut ctdb_ifaces_list,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getifaces_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getifaces_recv(ctdb, r, ifaces),
        )
    }
}

/// Frees an interface list.
#[no_mangle]
pub unsafe extern "C" fn ctdb_free_ifaces(ifaces: *mut ctdb_ifaces_list) {
    // SAFETY: NULL or a malloc'd block from ctdb_getifaces.
    unsafe { libc::free(ifaces.cast()) };
}

/// Asks node `destnode` for its public addresses.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpublicips_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::PublicIps, callback, cbdata) }
}

/// The public addresses (malloc'd; ctdb_free_publicips frees them).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpublicips_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    ips: *mut *mut ctdb_all_public_ips,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, req, ips, |c, id| {
            c.public_ips_of(id)
                .and_then(|m| super::ctdb_layout::c_copy(&m.to_bytes(), 4 + 32))
        })
    }
}

/// The public addresses (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getpublicips(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    ips: *mut *mut ctdb_all_public_ips,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getpublicips_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getpublicips_recv(ctdb, r, ips),
        )
    }
}

/// Frees a public address list.
#[no_mangle]
pub unsafe extern "C" fn ctdb_free_publicips(ips: *mut ctdb_all_public_ips) {
    // SAFETY: NULL or a malloc'd block from ctdb_getpublicips.
    unsafe { libc::free(ips.cast()) };
}

/// Asks for the recovery master (the leader), from its broadcast.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmaster_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    let _ = destnode;
    let start = |c: &mut ctdb_connection| Ok(c.core.leader());
    // SAFETY: the caller's handle.
    unsafe { start_request(ctdb, callback, cbdata, RequestKind::Plain, start) }
}

/// The recovery master a recmaster request found.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmaster_recv(
    ctdb: *mut ctdb_connection,
    handle: *mut ctdb_request,
    recmaster: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, handle, recmaster, |c, id| {
            c.leader_of(id).map(|p| p.0)
        })
    }
}

/// The recovery master (waits for the leader's broadcast).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmaster(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    recmaster: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getrecmaster_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getrecmaster_recv(ctdb, r, recmaster),
        )
    }
}

/// Asks node `destnode` for its recovery mode.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmode_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::Recmode, callback, cbdata) }
}

/// The recovery mode (0 normal, 1 recovery) a recmode request got.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmode_recv(
    ctdb: *mut ctdb_connection,
    handle: *mut ctdb_request,
    recmode: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe { getter_recv(ctdb, handle, recmode, |c, id| c.recmode_of(id)) }
}

/// Node `destnode`'s recovery mode (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getrecmode(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    recmode: *mut u32,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getrecmode_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getrecmode_recv(ctdb, r, recmode),
        )
    }
}

/// Asks node `destnode` for the vnn map.
#[no_mangle]
pub unsafe extern "C" fn ctdb_getvnnmap_send(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    callback: ctdb_callback_t,
    cbdata: *mut c_void,
) -> *mut ctdb_request {
    // SAFETY: the caller's handle.
    unsafe { getter_send(ctdb, destnode, Getter::VnnMap, callback, cbdata) }
}

/// The vnn map (malloc'd; ctdb_free_vnnmap frees it).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getvnnmap_recv(
    ctdb: *mut ctdb_connection,
    req: *mut ctdb_request,
    vnnmap: *mut *mut ctdb_vnn_map,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        getter_recv(ctdb, req, vnnmap, |c, id| {
            c.vnnmap_of(id)
                .and_then(|m| super::ctdb_layout::vnn_map(&m))
        })
    }
}

/// The vnn map (waits).
#[no_mangle]
pub unsafe extern "C" fn ctdb_getvnnmap(
    ctdb: *mut ctdb_connection,
    destnode: u32,
    vnnmap: *mut *mut ctdb_vnn_map,
) -> bool {
    // SAFETY: the caller's handles.
    unsafe {
        wait_and_free(
            ctdb,
            ctdb_getvnnmap_send(ctdb, destnode, None, ptr::null_mut()),
            false,
            |r| ctdb_getvnnmap_recv(ctdb, r, vnnmap),
        )
    }
}

/// Frees a vnn map and its array.
#[no_mangle]
pub unsafe extern "C" fn ctdb_free_vnnmap(vnnmap: *mut ctdb_vnn_map) {
    // SAFETY: NULL or a block from ctdb_getvnnmap.
    unsafe { super::ctdb_layout::free_vnn_map(vnnmap) };
}

/// A persistent database transaction (opaque to C); an extension of this
/// library, ended by ctdb_transaction_commit or ctdb_transaction_cancel.
pub struct ctdb_transaction {
    db: *mut ctdb_db,
    inner: Transaction,
}

/// Extension (not in CTDB's libctdb): starts a transaction on a persistent
/// database as Samba 4.17's client does (its g_lock taken, waiting while a
/// live process holds it); NULL with errno on failure.
#[no_mangle]
pub unsafe extern "C" fn ctdb_transaction_start(ctdb_db: *mut ctdb_db) -> *mut ctdb_transaction {
    guard(ptr::null_mut(), || {
        // SAFETY: the caller's database handle.
        let d = unsafe { ctdb_db.as_ref() }.ok_or(Refused)?;
        // SAFETY: the database's connection is live.
        let c = unsafe { conn(d.ctdb) }?;
        match c.core.transaction_start(d.handle) {
            Ok(inner) => Ok(Box::into_raw(Box::new(ctdb_transaction {
                db: ctdb_db,
                inner,
            }))),
            Err(e) => fail(d.ctdb, &e),
        }
    })
}

/// The connection and transaction behind a transaction handle.
///
/// # Safety
/// `h` is NULL or a live transaction handle.
unsafe fn transaction<'a>(
    h: *mut ctdb_transaction,
) -> Checked<(*mut ctdb_connection, &'a mut ctdb_transaction)> {
    // SAFETY: per the caller's contract.
    let t = unsafe { h.as_mut() }.ok_or(Refused)?;
    // SAFETY: a transaction's database handle outlives it.
    let d = unsafe { t.db.as_ref() }.ok_or(Refused)?;
    Ok((d.ctdb, t))
}

/// Extension: the value of `key` in the transaction (what it stored, else
/// this node's copy); `data` gets a malloc'd copy (the caller frees it;
/// dsize 0 when the record is missing or empty).
#[no_mangle]
pub unsafe extern "C" fn ctdb_transaction_fetch(
    h: *mut ctdb_transaction,
    key: TDB_DATA,
    data: *mut TDB_DATA,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handle and key.
        let ((ctdb, t), key) = unsafe { (transaction(h)?, bytes(key)?) };
        if data.is_null() {
            set_errno(libc::EINVAL);
            return Err(Refused);
        }
        // SAFETY: the transaction's connection is live.
        let c = unsafe { conn(ctdb) }?;
        match c.core.transaction_fetch(&mut t.inner, key) {
            Ok(value) => {
                let mut copy = super::guard::malloc_copy(&value)?;
                copy.dsize = value.len();
                // SAFETY: the caller's out pointer.
                unsafe { data.write(copy) };
                Ok(true)
            }
            Err(e) => fail(ctdb, &e),
        }
    })
}

/// Extension: stores `data` for `key` in the transaction.
#[no_mangle]
pub unsafe extern "C" fn ctdb_transaction_store(
    h: *mut ctdb_transaction,
    key: TDB_DATA,
    data: TDB_DATA,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's handle and buffers.
        let ((ctdb, t), key, value) = unsafe { (transaction(h)?, bytes(key)?, bytes(data)?) };
        // SAFETY: the transaction's connection is live.
        let c = unsafe { conn(ctdb) }?;
        match c.core.transaction_store(&mut t.inner, key, value) {
            Ok(()) => Ok(true),
            Err(e) => fail(ctdb, &e),
        }
    })
}

/// Ends a transaction with `end` (its commit or cancel) and frees the
/// handle; the failure value with errno when `end` fails.
///
/// # Safety
/// `h` is NULL or a live transaction handle, which the caller gives up.
unsafe fn end_transaction(
    h: *mut ctdb_transaction,
    end: impl FnOnce(&mut Connection, Transaction) -> Result<(), ClientError>,
) -> Checked<()> {
    // SAFETY: the caller's handle, checked before it is taken over.
    let (ctdb, _) = unsafe { transaction(h)? };
    // SAFETY: the caller gives the handle up.
    let t = unsafe { Box::from_raw(h) };
    // SAFETY: the transaction's connection is live.
    let c = unsafe { conn(ctdb) }?;
    end(&mut c.core, t.inner).or_else(|e| fail(ctdb, &e))
}

/// Extension: commits the transaction on every node (TRANS3_COMMIT) and
/// frees it; false with errno when the commit failed.
#[no_mangle]
pub unsafe extern "C" fn ctdb_transaction_commit(h: *mut ctdb_transaction) -> bool {
    guard(false, || {
        // SAFETY: the caller's handle, which it gives up.
        unsafe { end_transaction(h, Connection::transaction_commit) }.map(|()| true)
    })
}

/// Extension: ends the transaction without committing and frees it.
#[no_mangle]
pub unsafe extern "C" fn ctdb_transaction_cancel(h: *mut ctdb_transaction) {
    // SAFETY: the caller's handle, which it gives up.
    guard((), || unsafe {
        end_transaction(h, Connection::transaction_cancel)
    })
}
