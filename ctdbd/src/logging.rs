//! ctdbd's logging: the shared sink of `ctdb-logging` under the program
//! name "ctdbd", with the debug level that `ctdb setdebug` reads and changes
//! at run time, and the daemon's log macros.

use crate::config::LogTarget;

pub use ctdb_logging::{level, log, set_level};

/// Sets up the sink for ctdbd.  In test mode the host name printed is the
/// last part of CTDB_BASE, as Samba's local test daemons do.
pub fn init(target: LogTarget, level: u32, test_mode: bool) -> std::io::Result<()> {
    ctdb_logging::init(c"ctdbd", target, level, test_mode)
}

/// Logs at ERROR.
#[macro_export]
macro_rules! log_err { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_ERR, &format!($($a)*)) } }
/// Logs at WARNING.
#[macro_export]
macro_rules! log_warn { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_WARNING, &format!($($a)*)) } }
/// Logs at NOTICE.
#[macro_export]
macro_rules! log_notice { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_NOTICE, &format!($($a)*)) } }
/// Logs at INFO.
#[macro_export]
macro_rules! log_info { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_INFO, &format!($($a)*)) } }
/// Logs at DEBUG.
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_DEBUG, &format!($($a)*)) } }
