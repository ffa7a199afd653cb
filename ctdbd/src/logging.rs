//! Logging to stderr (interactive), a file, or syslog, filtered by the
//! current debug level (which `ctdb setdebug` changes at run time).

use crate::config::LogTarget;
use nix::syslog::{Facility, LogFlags, Severity};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

static LEVEL: AtomicU32 = AtomicU32::new(crate::config::DEBUG_NOTICE);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Sink {
    target: LogTarget,
    file: Option<std::fs::File>,
    host: String,
}

/// The current debug level; messages above it are dropped.
pub fn level() -> u32 {
    LEVEL.load(Ordering::Relaxed)
}

/// Changes the debug level for every later message.
pub fn set_level(l: u32) {
    LEVEL.store(l, Ordering::Relaxed);
}

/// Sets up the sink.  In test mode the host name printed is the last part of
/// CTDB_BASE, as Samba's local test daemons do.
pub fn init(target: LogTarget, level: u32, test_mode: bool) -> std::io::Result<()> {
    set_level(level);
    let host = if test_mode {
        std::env::var("CTDB_BASE")
            .ok()
            .and_then(|b| {
                std::path::Path::new(&b)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(hostname)
    } else {
        hostname()
    };
    let file = match &target {
        LogTarget::File(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        _ => None,
    };
    if target == LogTarget::Syslog {
        nix::syslog::openlog(Some(c"ctdbd"), LogFlags::LOG_PID, Facility::LOG_DAEMON)?;
    }
    *SINK.lock().unwrap() = Some(Sink { target, file, host });
    Ok(())
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
    // zeroes is a valid value; localtime_r reads secs and writes only into tm.
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

/// Writes `msg` to the sink when `level` is within the current debug level.
pub fn log(level: u32, msg: &str) {
    if level > self::level() {
        return;
    }
    let mut guard = SINK.lock().unwrap();
    match guard.as_mut() {
        None => {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
        Some(sink) => match sink.target {
            LogTarget::Stderr => {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            LogTarget::File(_) => {
                let line = format!(
                    "{} {} ctdbd[{}]: {}\n",
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
                    0 => Severity::LOG_ERR,
                    1 | 2 => Severity::LOG_WARNING,
                    3 | 4 => Severity::LOG_NOTICE,
                    5..=9 => Severity::LOG_INFO,
                    _ => Severity::LOG_DEBUG,
                };
                let _ = nix::syslog::syslog(prio, msg.replace('\0', " ").as_str());
            }
        },
    }
}

#[macro_export]
macro_rules! log_err { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_ERR, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_warn { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_WARNING, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_notice { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_NOTICE, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_info { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_INFO, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::logging::log($crate::config::DEBUG_DEBUG, &format!($($a)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_the_kernels_name_up_to_the_first_dot() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let short = kernel.trim().split('.').next().unwrap().to_string();
        assert_eq!(hostname(), short);
    }

    #[test]
    fn timestamp_has_date_time_micros_and_offset() {
        let t = timestamp();
        assert_eq!(t.len(), "2026-01-02T03:04:05.000006+07:00".len(), "{t}");
        assert_eq!(&t[10..11], "T", "{t}");
        assert!(matches!(&t[26..27], "+" | "-"), "{t}");
    }
}
