//! ctdb-eventd's logging: the shared sink of `ctdb-logging` under the
//! program name "ctdb-eventd" (test mode comes from `CTDB_TEST_MODE`), the
//! reopen that SIGHUP triggers and script output logged line by line.  The
//! log macros (`log_err!` ...) are `ctdb-logging`'s, imported at the crate
//! root.

use crate::config::{LogTarget, DEBUG_ERR};

pub use ctdb_logging::{log, reopen};

/// Sets the target and level for every later message.
pub fn init(target: LogTarget, level: u32) -> std::io::Result<()> {
    let test_mode = std::env::var_os("CTDB_TEST_MODE").is_some();
    ctdb_logging::init(c"ctdb-eventd", target, level, test_mode)
}

/// Logs every non-empty line of `text` at ERROR as `prefix: line` (how
/// Samba logs script and debug-script output).
pub fn log_lines(prefix: &str, text: &str) {
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        log(DEBUG_ERR, &format!("{prefix}: {line}"));
    }
}
