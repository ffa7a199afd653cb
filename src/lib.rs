//! The C boundary: `libtdb.so.1`, Samba's tdb C API with its symbol versions, on
//! top of the safe engine crate `tdb_engine`. Nothing but `extern "C"` functions,
//! their types and their guard live here.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod ffi;
