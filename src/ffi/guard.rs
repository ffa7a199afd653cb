//! The one guard every exported C function goes through, and the checked
//! conversions it uses: a call's pointers are checked before use (a NULL handle,
//! or a NULL data pointer with a non-zero size, makes the call return its error
//! value) and a panic is caught and turned into that same error value, so that
//! nothing ever unwinds into C. The engine's lock guards release whatever the
//! call held while the panic unwinds, before `guard` returns.

use super::tdb::{tdb_context, TDB_DATA};
use std::ffi::{c_int, c_uchar};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use tdb_engine::Tdb;

/// A call refused before reaching the engine (NULL pointer, bad count, no memory).
pub(super) struct Refused;

/// The result of a guarded body: the C return value, or a refusal.
pub(super) type Checked<T> = Result<T, Refused>;

/// Runs the body of an exported function: its value, or `on_error` when the body
/// refuses the call or panics. Every exported function goes through here.
#[inline]
pub(super) fn guard<R>(on_error: R, body: impl FnOnce() -> Checked<R>) -> R {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(Refused)) => on_error,
        Err(payload) => {
            // Dropping a panic payload can itself panic; leaking it cannot.
            std::mem::forget(payload);
            on_error
        }
    }
}

/// The engine database behind a C handle.
///
/// # Safety
/// `tdb` is NULL or a handle from tdb_open/tdb_open_ex (or one an engine callback
/// passed to C) that has not been closed.
pub(super) unsafe fn db<'a>(tdb: *mut tdb_context) -> Checked<&'a mut Tdb> {
    // SAFETY: tdb_context is repr(transparent) over Tdb; the caller guarantees a
    // live handle, and C holds no other Rust reference to it.
    unsafe { tdb.cast::<Tdb>().as_mut() }.ok_or(Refused)
}

/// Shared access to the database behind a C handle, for the accessors that only
/// read (tdb_name, tdb_error, ...), which C may call from inside a log or
/// traverse callback while the engine is working on the same database.
///
/// # Safety
/// As for [`db`].
pub(super) unsafe fn db_ref<'a>(tdb: *mut tdb_context) -> Checked<&'a Tdb> {
    // SAFETY: as in `db`; only a shared reference is made.
    unsafe { tdb.cast::<Tdb>().cast_const().as_ref() }.ok_or(Refused)
}

/// The bytes a TDB_DATA describes; `{NULL, 0}` is the empty slice.
///
/// # Safety
/// When `dptr` is not NULL it points to `dsize` readable bytes that stay valid
/// and unmodified for the duration of the call.
pub(super) unsafe fn bytes<'a>(data: TDB_DATA) -> Checked<&'a [u8]> {
    if data.dsize == 0 {
        return Ok(&[]);
    }
    if data.dptr.is_null() {
        return Err(Refused);
    }
    // SAFETY: non-NULL pointer to dsize bytes, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(data.dptr, data.dsize) })
}

/// A malloc'd copy of `data` for C to free (at least one byte is allocated, so an
/// empty value still has a non-NULL `dptr`, as Samba's has).
pub(super) fn malloc_copy(data: &[u8]) -> Checked<TDB_DATA> {
    // SAFETY: malloc has no preconditions; the result is checked for NULL.
    let p = unsafe { libc::malloc(data.len().max(1)) }.cast::<c_uchar>();
    if p.is_null() {
        return Err(Refused);
    }
    // SAFETY: p has room for data.len() bytes and cannot overlap `data`.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    Ok(TDB_DATA {
        dptr: p,
        dsize: data.len(),
    })
}

/// The int convention: 0 on success, -1 on an engine error.
pub(super) fn status(result: tdb_engine::Result<()>) -> Checked<c_int> {
    Ok(if result.is_ok() { 0 } else { -1 })
}

/// The body of the many `int f(struct tdb_context *)` functions.
///
/// # Safety
/// As for [`db`].
pub(super) unsafe fn simple(
    tdb: *mut tdb_context,
    op: impl FnOnce(&mut Tdb) -> tdb_engine::Result<()>,
) -> c_int {
    // SAFETY: forwarded contract.
    guard(-1, || status(op(unsafe { db(tdb) }?)))
}

/// The body of the `void f(struct tdb_context *, ...)` functions.
///
/// # Safety
/// As for [`db`].
pub(super) unsafe fn void(tdb: *mut tdb_context, op: impl FnOnce(&mut Tdb)) {
    guard((), || {
        // SAFETY: forwarded contract.
        op(unsafe { db(tdb) }?);
        Ok(())
    })
}

/// The body of the many `int f(struct tdb_context *, TDB_DATA key)` functions.
///
/// # Safety
/// As for [`db`] and [`bytes`].
pub(super) unsafe fn keyed(
    tdb: *mut tdb_context,
    key: TDB_DATA,
    op: impl FnOnce(&mut Tdb, &[u8]) -> tdb_engine::Result<()>,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded contract.
        let (t, k) = unsafe { (db(tdb)?, bytes(key)?) };
        status(op(t, k))
    })
}

/// Sets this thread's errno (tdb_open_ex reports its failure there).
pub(super) fn set_errno(value: c_int) {
    nix::errno::Errno::set_raw(value);
}

/// This thread's errno.
pub(super) fn errno() -> c_int {
    nix::errno::Errno::last_raw()
}
