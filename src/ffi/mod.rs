//! Everything C sees: `tdb` is libtdb's API (include/tdb.h is generated from it),
//! `ctdb` libctdb's (include/ctdb.h), `ctdb_layout` the C structures libctdb
//! hands out; `guard` is the one guard every exported function's body runs
//! through.

pub mod ctdb;
mod ctdb_layout;
mod guard;
pub mod tdb;
