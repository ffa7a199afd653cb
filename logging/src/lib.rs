//! Log lines as Samba's daemons write them, for ctdbd and ctdb-eventd: plain
//! to stderr, `TIMESTAMP HOST PROGRAM[PID]: message` appended to a file, or
//! to syslog, filtered by a debug level that may change at run time.  In test
//! mode the host is the last part of `CTDB_BASE`, as in Samba's local test
//! daemons.  There is one sink per process, set up by [`init`].

use nix::syslog::{Facility, LogFlags, Severity};
use std::ffi::CStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Errors (ctdb's debug level 0).
pub const DEBUG_ERR: u32 = 0;
/// Warnings.
pub const DEBUG_WARNING: u32 = 1;
/// Notices (the interactive level).
pub const DEBUG_NOTICE: u32 = 3;
/// Information.
pub const DEBUG_INFO: u32 = 5;
/// Debugging.
pub const DEBUG_DEBUG: u32 = 10;

/// Logs a `format!` message at ERROR through [`log`].
#[macro_export]
macro_rules! log_err { ($($a:tt)*) => { $crate::log($crate::DEBUG_ERR, &format!($($a)*)) } }
/// Logs a `format!` message at WARNING through [`log`].
#[macro_export]
macro_rules! log_warn { ($($a:tt)*) => { $crate::log($crate::DEBUG_WARNING, &format!($($a)*)) } }
/// Logs a `format!` message at NOTICE through [`log`].
#[macro_export]
macro_rules! log_notice { ($($a:tt)*) => { $crate::log($crate::DEBUG_NOTICE, &format!($($a)*)) } }
/// Logs a `format!` message at INFO through [`log`].
#[macro_export]
macro_rules! log_info { ($($a:tt)*) => { $crate::log($crate::DEBUG_INFO, &format!($($a)*)) } }
/// Logs a `format!` message at DEBUG through [`log`].
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::log($crate::DEBUG_DEBUG, &format!($($a)*)) } }

/// Where log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error, one plain message a line ("file:" with no path).
    Stderr,
    /// Appended to a file with timestamp, host, program and pid.
    File(PathBuf),
    /// syslog(3), under the program's name with its pid.
    Syslog,
}

const LEVEL_NAMES: &[(u32, &str)] = &[
    (DEBUG_ERR, "ERROR"),
    (DEBUG_WARNING, "WARNING"),
    (2, "WARNING"),
    (DEBUG_NOTICE, "NOTICE"),
    (4, "NOTICE"),
    (DEBUG_INFO, "INFO"),
    (6, "INFO"),
    (7, "INFO"),
    (8, "INFO"),
    (9, "INFO"),
    (DEBUG_DEBUG, "DEBUG"),
];

/// Parses a level: a number 0..=10 or a (case-insensitive) prefix of a name.
pub fn parse_debug_level(s: &str) -> Option<u32> {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: usize = digits.parse().ok()?;
        return if n < LEVEL_NAMES.len() {
            Some(n as u32)
        } else {
            None
        };
    }
    LEVEL_NAMES
        .iter()
        .find(|(_, name)| name.len() >= s.len() && name[..s.len()].eq_ignore_ascii_case(s))
        .map(|(l, _)| *l)
}

/// The name of a level (levels 2, 4 and 6-9 share their neighbours' names).
pub fn debug_level_name(level: u32) -> &'static str {
    LEVEL_NAMES
        .iter()
        .find(|(l, _)| *l == level)
        .map(|(_, n)| *n)
        .unwrap_or("UNKNOWN")
}

/// Parses a ctdb.conf logging location: "file:PATH" (PATH absolute),
/// "file" or "file:" (stderr), or "syslog[:METHOD]" with METHOD one of
/// Samba's ("nonblocking", "udp", "udp-rfc5424"); anything else is `None`.
pub fn parse_log_location(s: &str) -> Option<LogTarget> {
    let (name, option) = match s.split_once(':') {
        Some((n, o)) => (n, Some(o)),
        None => (s, None),
    };
    match (name, option) {
        ("file", None | Some("")) => Some(LogTarget::Stderr),
        ("file", Some(p)) if p.starts_with('/') => Some(LogTarget::File(PathBuf::from(p))),
        ("syslog", None | Some("nonblocking" | "udp" | "udp-rfc5424")) => Some(LogTarget::Syslog),
        _ => None,
    }
}

static LEVEL: AtomicU32 = AtomicU32::new(DEBUG_NOTICE);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Sink {
    target: LogTarget,
    file: Option<std::fs::File>,
    host: String,
    program: String,
}

/// The sink, even if a thread panicked while holding it.
fn sink() -> MutexGuard<'static, Option<Sink>> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current debug level; messages above it are dropped.
pub fn level() -> u32 {
    LEVEL.load(Ordering::Relaxed)
}

/// Changes the debug level for every later message.
pub fn set_level(l: u32) {
    LEVEL.store(l, Ordering::Relaxed);
}

/// Sets the target and level for every later message, naming the program
/// `program` in file and syslog lines; the file is opened (created, for
/// appending) here.  With `test_mode` the host printed is the last part of
/// `CTDB_BASE` (the host name when that is unset).
pub fn init(
    program: &'static CStr,
    target: LogTarget,
    level: u32,
    test_mode: bool,
) -> std::io::Result<()> {
    set_level(level);
    let base_name = std::env::var("CTDB_BASE").ok().and_then(|b| {
        Path::new(&b)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
    });
    let host = match base_name {
        Some(b) if test_mode => b,
        _ => hostname(),
    };
    let file = open_file(&target)?;
    if target == LogTarget::Syslog {
        nix::syslog::openlog(Some(program), LogFlags::LOG_PID, Facility::LOG_DAEMON)?;
    }
    let program = program.to_string_lossy().into_owned();
    *sink() = Some(Sink {
        target,
        file,
        host,
        program,
    });
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

/// Reopens the log file by its path (after rotation); true when that worked
/// or there is no file.  On failure the old file stays in use.
pub fn reopen() -> bool {
    let mut guard = sink();
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

/// One file line: `TIMESTAMP HOST PROGRAM[PID]: message` and a newline.
fn file_line(timestamp: &str, host: &str, program: &str, pid: u32, msg: &str) -> String {
    format!("{timestamp} {host} {program}[{pid}]: {msg}\n")
}

/// The syslog priority of a ctdb debug level.
fn severity(level: u32) -> Severity {
    match level {
        0 => Severity::LOG_ERR,
        1 | 2 => Severity::LOG_WARNING,
        3 | 4 => Severity::LOG_NOTICE,
        5..=9 => Severity::LOG_INFO,
        _ => Severity::LOG_DEBUG,
    }
}

/// Writes `msg` to the sink (to stderr before [`init`]) when `level` is
/// within the current debug level; write errors are ignored.
pub fn log(level: u32, msg: &str) {
    if level > self::level() {
        return;
    }
    let mut guard = sink();
    let Some(sink) = guard.as_mut() else {
        let _ = writeln!(std::io::stderr(), "{msg}");
        return;
    };
    match sink.target {
        LogTarget::Stderr => {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
        LogTarget::File(_) => {
            let pid = std::process::id();
            let line = file_line(&timestamp(), &sink.host, &sink.program, pid, msg);
            if let Some(f) = sink.file.as_mut() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        LogTarget::Syslog => {
            let _ = nix::syslog::syslog(severity(level), msg.replace('\0', " ").as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_locations() {
        assert_eq!(
            parse_log_location("file:/x/y"),
            Some(LogTarget::File("/x/y".into()))
        );
        assert_eq!(parse_log_location("file:"), Some(LogTarget::Stderr));
        assert_eq!(parse_log_location("file"), Some(LogTarget::Stderr));
        assert_eq!(parse_log_location("file:x/y"), None);
        assert_eq!(parse_log_location("syslog"), Some(LogTarget::Syslog));
        assert_eq!(parse_log_location("syslog:udp"), Some(LogTarget::Syslog));
        assert_eq!(parse_log_location("syslog:bad"), None);
        assert_eq!(parse_log_location("bogus:x"), None);
    }

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
        assert_eq!(&t[19..20], ".", "{t}");
        assert!(matches!(&t[26..27], "+" | "-"), "{t}");
        assert_eq!(&t[29..30], ":", "{t}");
    }

    #[test]
    fn file_line_is_samba_layout() {
        let line = file_line(
            "2026-01-02T03:04:05.000006+07:00",
            "node0",
            "ctdbd",
            42,
            "hi",
        );
        assert_eq!(
            line,
            "2026-01-02T03:04:05.000006+07:00 node0 ctdbd[42]: hi\n"
        );
    }

    #[test]
    fn severities_follow_ctdb_levels() {
        assert_eq!(severity(DEBUG_ERR), Severity::LOG_ERR);
        assert_eq!(severity(2), Severity::LOG_WARNING);
        assert_eq!(severity(4), Severity::LOG_NOTICE);
        assert_eq!(severity(9), Severity::LOG_INFO);
        assert_eq!(severity(DEBUG_DEBUG), Severity::LOG_DEBUG);
    }

    /// The only test that touches the process-wide sink.
    #[test]
    fn file_sink_filters_by_level_and_reopens_after_rotation() {
        let dir = std::env::temp_dir().join(format!("ctdb-logging-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("node7");
        std::env::set_var("CTDB_BASE", &base);
        let path = dir.join("log");
        init(
            c"testprog",
            LogTarget::File(path.clone()),
            DEBUG_NOTICE,
            true,
        )
        .unwrap();
        log(DEBUG_NOTICE, "kept");
        log(DEBUG_INFO, "dropped");
        set_level(DEBUG_INFO);
        assert_eq!(level(), DEBUG_INFO);
        log(DEBUG_INFO, "now kept");
        let text = std::fs::read_to_string(&path).unwrap();
        let tail = format!(" node7 testprog[{}]: ", std::process::id());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(&format!("{tail}kept")), "{text}");
        assert!(lines[1].ends_with(&format!("{tail}now kept")), "{text}");

        let rotated = dir.join("log.1");
        std::fs::rename(&path, &rotated).unwrap();
        assert!(reopen());
        log(DEBUG_ERR, "after");
        let fresh = std::fs::read_to_string(&path).unwrap();
        assert!(fresh.ends_with(&format!("{tail}after\n")), "{fresh}");
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), text);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    #[test]
    fn debug_levels_as_samba_parses_them() {
        assert_eq!(parse_debug_level("ERROR"), Some(0));
        assert_eq!(parse_debug_level("info"), Some(5));
        assert_eq!(parse_debug_level("DEB"), Some(10));
        assert_eq!(parse_debug_level("2"), Some(2));
        assert_eq!(parse_debug_level("11"), None);
        assert_eq!(parse_debug_level("bogus"), None);
        assert_eq!(debug_level_name(2), "WARNING");
        assert_eq!(debug_level_name(10), "DEBUG");
        // eventd once took only whole names: Samba takes any prefix.
        assert_eq!(parse_debug_level("warn"), Some(1));
        assert_eq!(parse_debug_level("ERR"), Some(0));
        assert_eq!(parse_debug_level("NOT"), Some(3));
    }
}
