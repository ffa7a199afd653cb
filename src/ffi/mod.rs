//! Everything C sees: `tdb` is libtdb's API (include/tdb.h is generated from it).

pub mod tdb;
