//! What the ctdbd package's binaries share: the raw packets of
//! [`system_socket`] (the daemon's announcements after a takeover and
//! `ctdb_killtcp`).

pub mod system_socket;
