//! ctdbd's logging: the shared sink of `ctdb-logging` under the program
//! name "ctdbd", with the debug level that `ctdb setdebug` reads and changes
//! at run time.  The log macros (`log_err!` ...) are `ctdb-logging`'s,
//! imported at the crate root.

use crate::config::LogTarget;

pub use ctdb_logging::{level, set_level};

/// Sets up the sink for ctdbd.  In test mode the host name printed is the
/// last part of CTDB_BASE, as Samba's local test daemons do.
pub fn init(target: LogTarget, level: u32, test_mode: bool) -> std::io::Result<()> {
    ctdb_logging::init(c"ctdbd", target, level, test_mode)
}
