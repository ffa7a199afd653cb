//! Log lines as ctdbd and Samba's daemons write them: plain to stderr,
//! `TIMESTAMP HOST ctdb-eventd[PID]: message` appended to a file, or to
//! syslog, filtered by the configured level.  In test mode the host is the
//! last part of `CTDB_BASE`, as in Samba's local test daemons.

use crate::config::{LogTarget, DEBUG_ERR, DEBUG_INFO, DEBUG_NOTICE};
use nix::syslog::{Facility, LogFlags, Severity};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The program name in file and syslog lines.
const APP: &str = "ctdb-eventd";

static LEVEL: AtomicU32 = AtomicU32::new(DEBUG_NOTICE);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Sink {
    target: LogTarget,
    file: Option<std::fs::File>,
    host: String,
}

/// Sets the target and level for every later message.
pub fn init(target: LogTarget, level: u32) -> std::io::Result<()> {
    LEVEL.store(level, Ordering::Relaxed);
    let test_mode = std::env::var_os("CTDB_TEST_MODE").is_some();
    let base_name = std::env::var("CTDB_BASE").ok().and_then(|b| {
        std::path::Path::new(&b)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
    });
    let host = match base_name {
        Some(b) if test_mode => b,
        _ => hostname(),
    };
    let file = open_file(&target)?;
    if target == LogTarget::Syslog {
        nix::syslog::openlog(
            Some(c"ctdb-eventd"),
            LogFlags::LOG_PID,
            Facility::LOG_DAEMON,
        )?;
    }
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink { target, file, host });
    Ok(())
}

fn open_file(target: &LogTarget) -> std::io::Result<Option<std::fs::File>> {
    match target {
        LogTarget::File(p) => Ok(Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        )),
        _ => Ok(None),
    }
}

/// Reopens the log file (after rotation); true when that worked or there
/// is no file.
pub fn reopen() -> bool {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sink) = guard.as_mut() else {
        return true;
    };
    match open_file(&sink.target) {
        Ok(f) => {
            sink.file = f;
            true
        }
        Err(_) => false,
    }
}

/// This machine's host name up to the first dot, or "localhost".
fn hostname() -> String {
    let Ok(name) = nix::unistd::gethostname() else {
        return "localhost".into();
    };
    let s = name.to_string_lossy();
    s.split('.').next().unwrap_or(&s).to_string()
}

/// The current local time as RFC 3339 with microseconds and the offset.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: libc::tm holds only integers and a nullable pointer, so all
    // zeroes is a valid value; localtime_r reads secs and writes only tm.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros(),
        sign,
        off / 3600,
        (off % 3600) / 60
    )
}

/// Writes `msg` when `level` is within the configured level.
pub fn log(level: u32, msg: &str) {
    if level > LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sink) = guard.as_mut() else {
        let _ = writeln!(std::io::stderr(), "{msg}");
        return;
    };
    match sink.target {
        LogTarget::Stderr => {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
        LogTarget::File(_) => {
            let line = format!(
                "{} {} {APP}[{}]: {}\n",
                timestamp(),
                sink.host,
                std::process::id(),
                msg
            );
            if let Some(f) = sink.file.as_mut() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        LogTarget::Syslog => {
            let prio = match level {
                DEBUG_ERR => Severity::LOG_ERR,
                l if l <= 2 => Severity::LOG_WARNING,
                l if l < DEBUG_INFO => Severity::LOG_NOTICE,
                l if l < 10 => Severity::LOG_INFO,
                _ => Severity::LOG_DEBUG,
            };
            let _ = nix::syslog::syslog(prio, msg.replace('\0', " ").as_str());
        }
    }
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
/// Logs at DEBUG.
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_DEBUG, &format!($($a)*)) } }

/// Logs every non-empty line of `text` at ERROR as `prefix: line` (how
/// Samba logs script and debug-script output).
pub fn log_lines(prefix: &str, text: &str) {
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        log(DEBUG_ERR, &format!("{prefix}: {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_date_time_micros_and_offset() {
        let t = timestamp();
        assert_eq!(t.len(), "2026-01-02T03:04:05.000006+07:00".len(), "{t}");
        assert_eq!(&t[10..11], "T", "{t}");
    }
}
