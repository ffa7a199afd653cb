//! Everything C sees: `tdb` is libtdb's API (include/tdb.h is generated from it);
//! `guard` is the one guard every exported function's body runs through.

mod guard;
pub mod tdb;
