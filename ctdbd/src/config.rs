//! ctdb.conf: an ini file with the sections logging, cluster, database,
//! event, failover and legacy.  Every key has a type, a default and
//! (for some) a validator; unknown sections/keys and bad values are errors.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    Int,
    Bool,
}

#[derive(Clone, Copy)]
enum Check {
    None,
    LogLocation,
    LogLevel,
    Transport,
    NodeAddress,
    PositiveInt,
    Directory,
    EtcScript(&'static str),
}

struct KeyDef {
    section: &'static str,
    key: &'static str,
    kind: Kind,
    check: Check,
}

const fn k(section: &'static str, key: &'static str, kind: Kind, check: Check) -> KeyDef {
    KeyDef {
        section,
        key,
        kind,
        check,
    }
}

const SECTIONS: &[&str] = &[
    "logging", "cluster", "database", "event", "failover", "legacy",
];

const KEYS: &[KeyDef] = &[
    k("logging", "location", Kind::Str, Check::LogLocation),
    k("logging", "log level", Kind::Str, Check::LogLevel),
    k("cluster", "transport", Kind::Str, Check::Transport),
    k("cluster", "node address", Kind::Str, Check::NodeAddress),
    k("cluster", "cluster lock", Kind::Str, Check::None),
    k("cluster", "recovery lock", Kind::Str, Check::None),
    k("cluster", "leader timeout", Kind::Int, Check::PositiveInt),
    k("cluster", "leader capability", Kind::Bool, Check::None),
    k(
        "database",
        "volatile database directory",
        Kind::Str,
        Check::Directory,
    ),
    k(
        "database",
        "persistent database directory",
        Kind::Str,
        Check::Directory,
    ),
    k(
        "database",
        "state database directory",
        Kind::Str,
        Check::Directory,
    ),
    k(
        "database",
        "lock debug script",
        Kind::Str,
        Check::EtcScript("lock debug script"),
    ),
    k("database", "tdb mutexes", Kind::Bool, Check::None),
    k(
        "event",
        "debug script",
        Kind::Str,
        Check::EtcScript("debug script"),
    ),
    k("failover", "disabled", Kind::Bool, Check::None),
    k("legacy", "realtime scheduling", Kind::Bool, Check::None),
    k("legacy", "lmaster capability", Kind::Bool, Check::None),
    k("legacy", "start as stopped", Kind::Bool, Check::None),
    k("legacy", "start as disabled", Kind::Bool, Check::None),
    k("legacy", "script log level", Kind::Str, Check::LogLevel),
];

/// Debug levels as ctdb numbers them (defined with the log sink).
pub use ctdb_logging::{DEBUG_DEBUG, DEBUG_ERR};

/// A debug level by number or name, as Samba's `debug_level_parse` reads
/// it (shared with ctdb-eventd and ctdb_killtcp).
pub use ctdb_logging::parse_debug_level;

/// Where log messages go (defined with the log sink).
pub use ctdb_logging::LogTarget;

/// Parses a ctdb.conf logging location (shared with ctdb-eventd).
pub use ctdb_logging::parse_log_location;

/// Fully resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub log_location: String,
    pub log_level: u32,
    pub node_address: Option<IpAddr>,
    pub cluster_lock: Option<String>,
    pub leader_timeout: u32,
    pub leader_capability: bool,
    pub volatile_dir: PathBuf,
    pub persistent_dir: PathBuf,
    pub state_dir: PathBuf,
    pub tdb_mutexes: bool,
    pub failover_disabled: bool,
    pub lmaster_capability: bool,
    pub start_as_stopped: bool,
    pub start_as_disabled: bool,
    pub script_log_level: u32,
}

/// Paths that depend on test mode.
#[derive(Clone, Debug)]
pub struct Paths {
    pub etcdir: PathBuf,
    pub rundir: PathBuf,
    pub vardir: PathBuf,
    pub test_mode: bool,
}

impl Paths {
    /// Samba's rules: in test mode (CTDB_TEST_MODE set) everything lives under
    /// CTDB_BASE (run/, var/); otherwise the packaged defaults are used and
    /// CTDB_BASE only moves the configuration directory.
    pub fn from_env() -> Result<Paths, String> {
        let test_mode = std::env::var_os("CTDB_TEST_MODE").is_some();
        let base = std::env::var_os("CTDB_BASE").map(PathBuf::from);
        if test_mode {
            let base = base.ok_or("Broken CTDB setup, CTDB_BASE not set in test mode")?;
            Ok(Paths {
                rundir: base.join("run"),
                vardir: base.join("var"),
                etcdir: base,
                test_mode,
            })
        } else {
            Ok(Paths {
                etcdir: base.unwrap_or_else(|| PathBuf::from("/etc/ctdb")),
                rundir: PathBuf::from("/run/ctdb"),
                vardir: PathBuf::from("/var/lib/ctdb"),
                test_mode,
            })
        }
    }
    pub fn config_file(&self) -> PathBuf {
        self.etcdir.join("ctdb.conf")
    }
    pub fn socket(&self) -> PathBuf {
        match std::env::var_os("CTDB_SOCKET") {
            Some(s) => PathBuf::from(s),
            None => self.rundir.join("ctdbd.socket"),
        }
    }
    pub fn pidfile(&self) -> PathBuf {
        self.rundir.join("ctdbd.pid")
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let v = crate::tunables::parse_c_ulong(s)?;
    if v > i32::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

fn validate(def: &KeyDef, value: &str, etcdir: &Path) -> Result<(), Vec<String>> {
    let fail = |msg: Option<String>| {
        let mut v = Vec::new();
        if let Some(m) = msg {
            v.push(m);
        }
        v.push(format!(
            "conf: validation for option \"{}\" failed",
            def.key
        ));
        Err(v)
    };
    match def.check {
        Check::None => Ok(()),
        Check::LogLocation => {
            if parse_log_location(value).is_some() {
                Ok(())
            } else {
                fail(None)
            }
        }
        Check::LogLevel => {
            if parse_debug_level(value).is_some() {
                Ok(())
            } else {
                fail(None)
            }
        }
        Check::Transport => {
            if value == "tcp" {
                Ok(())
            } else {
                fail(Some(format!(
                    "Invalid value for [cluster] -> transport = {value}"
                )))
            }
        }
        Check::NodeAddress => {
            if value.parse::<IpAddr>().is_ok() {
                Ok(())
            } else {
                fail(Some(format!(
                    "Invalid value for [cluster] -> node address = {value}"
                )))
            }
        }
        Check::PositiveInt => {
            if parse_int(value).map(|v| v > 0).unwrap_or(false) {
                Ok(())
            } else {
                fail(Some(format!(
                    "Invalid value for [{}] -> {} = {}",
                    def.section, def.key, value
                )))
            }
        }
        Check::Directory => {
            if Path::new(value).is_dir() {
                Ok(())
            } else {
                fail(Some(format!("{} \"{}\" does not exist", def.key, value)))
            }
        }
        Check::EtcScript(what) => {
            let base = Path::new(value)
                .file_name()
                .map(|b| etcdir.join(b))
                .unwrap_or_else(|| etcdir.join(value));
            match std::fs::metadata(&base) {
                Err(_) => fail(Some(format!("{what} {} does not exist", base.display()))),
                Ok(m) if !m.is_file() => {
                    fail(Some(format!("{what} {} is not a file", base.display())))
                }
                Ok(m) => {
                    use std::os::unix::fs::PermissionsExt;
                    if m.permissions().mode() & 0o100 == 0 {
                        fail(Some(format!("{what} {} is not executable", base.display())))
                    } else {
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Parses ini text into (section, key) -> value, reporting unknown sections
/// and keys and values that do not fit the key's type or validator.  Lines
/// without '=' are ignored, as Samba's parser does.
pub fn parse(text: &str, etcdir: &Path) -> Result<BTreeMap<(String, String), String>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let mut section: Option<String> = None;
    let mut section_known = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = match rest.strip_suffix(']') {
                Some(n) => n.trim().to_string(),
                None => {
                    errors.push(format!("conf: invalid section line \"{line}\""));
                    section = None;
                    section_known = false;
                    continue;
                }
            };
            section_known = SECTIONS.contains(&name.as_str());
            if !section_known {
                errors.push(format!("conf: unknown section [{name}]"));
            }
            section = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_string();
        let value = value.trim().to_string();
        let Some(sec) = section.clone().filter(|_| section_known) else {
            errors.push(format!("conf: unknown section for option \"{key}\""));
            continue;
        };
        let Some(def) = KEYS.iter().find(|d| d.section == sec && d.key == key) else {
            errors.push(format!("conf: unknown option [{sec}] -> \"{key}\""));
            continue;
        };
        let type_ok = match def.kind {
            Kind::Str => true,
            Kind::Int => parse_int(&value).is_some(),
            Kind::Bool => parse_bool(&value).is_some(),
        };
        if !type_ok {
            errors.push(format!(
                "conf: invalid value [{sec}] -> \"{key}\" = \"{value}\""
            ));
            continue;
        }
        if let Err(mut e) = validate(def, &value, etcdir) {
            errors.append(&mut e);
            continue;
        }
        out.insert((sec, key), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

impl Config {
    /// Loads ctdb.conf from the configuration directory; a missing file
    /// means all defaults.  Errors are the messages to print, in order.
    pub fn load(paths: &Paths) -> Result<Config, Vec<String>> {
        let file = paths.config_file();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(vec![format!(
                    "Failed to read configuration file {}: {}",
                    file.display(),
                    e
                )])
            }
        };
        let map = match parse(&text, &paths.etcdir) {
            Ok(m) => m,
            Err(mut e) => {
                e.push(format!(
                    "Failed to load configuration file {}",
                    file.display()
                ));
                return Err(e);
            }
        };
        let get = |s: &str, k: &str| map.get(&(s.to_string(), k.to_string())).cloned();
        let getb = |s: &str, k: &str, d: bool| get(s, k).and_then(|v| parse_bool(&v)).unwrap_or(d);
        let dir = |k: &str, d: &str| {
            PathBuf::from(
                get("database", k).unwrap_or_else(|| paths.vardir.join(d).display().to_string()),
            )
        };
        let cfg = Config {
            log_location: get("logging", "location")
                .unwrap_or_else(|| "file:/var/log/ctdb/log.ctdb".to_string()),
            log_level: get("logging", "log level")
                .and_then(|v| parse_debug_level(&v))
                .unwrap_or(DEBUG_ERR),
            node_address: get("cluster", "node address").and_then(|v| v.parse().ok()),
            cluster_lock: get("cluster", "cluster lock")
                .or_else(|| get("cluster", "recovery lock")),
            leader_timeout: get("cluster", "leader timeout")
                .and_then(|v| parse_int(&v))
                .unwrap_or(5) as u32,
            leader_capability: getb("cluster", "leader capability", true),
            volatile_dir: dir("volatile database directory", "volatile"),
            persistent_dir: dir("persistent database directory", "persistent"),
            state_dir: dir("state database directory", "state"),
            tdb_mutexes: getb("database", "tdb mutexes", true),
            failover_disabled: getb("failover", "disabled", false),
            lmaster_capability: getb("legacy", "lmaster capability", true),
            start_as_stopped: getb("legacy", "start as stopped", false),
            start_as_disabled: getb("legacy", "start as disabled", false),
            script_log_level: get("legacy", "script log level")
                .and_then(|v| parse_debug_level(&v))
                .unwrap_or(DEBUG_ERR),
        };
        // Default directories are checked too (Samba validates them at load).
        let mut errors = Vec::new();
        for (key, d) in [
            ("volatile database directory", &cfg.volatile_dir),
            ("persistent database directory", &cfg.persistent_dir),
            ("state database directory", &cfg.state_dir),
        ] {
            if !d.is_dir() {
                errors.push(format!("{key} \"{}\" does not exist", d.display()));
            }
        }
        if !errors.is_empty() {
            errors.push(format!(
                "Failed to load configuration file {}",
                file.display()
            ));
            return Err(errors);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<BTreeMap<(String, String), String>, Vec<String>> {
        parse(text, Path::new("/nonexistent"))
    }

    #[test]
    fn accepts_known_keys() {
        let m = p("[logging]\n\tlocation = file:/tmp/x\n\tlog level = INFO\n[cluster]\n node address = 127.0.0.1\n[failover]\ndisabled = yes\n").unwrap();
        assert_eq!(
            m.get(&("logging".into(), "log level".into())).unwrap(),
            "INFO"
        );
        assert_eq!(
            m.get(&("failover".into(), "disabled".into())).unwrap(),
            "yes"
        );
    }

    #[test]
    fn rejects_unknown_and_invalid() {
        let e = p("[cluster]\n\tbogus key = 1\n").unwrap_err();
        assert_eq!(e, vec!["conf: unknown option [cluster] -> \"bogus key\""]);
        let e = p("[bogus]\nx = 1\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "conf: unknown section [bogus]",
                "conf: unknown section for option \"x\""
            ]
        );
        let e = p("[failover]\ndisabled = maybe\n").unwrap_err();
        assert_eq!(
            e,
            vec!["conf: invalid value [failover] -> \"disabled\" = \"maybe\""]
        );
        let e = p("[cluster]\nnode address = 1.2.3.x\n").unwrap_err();
        assert_eq!(
            e[0],
            "Invalid value for [cluster] -> node address = 1.2.3.x"
        );
        assert!(p("[logging]\nlog level = FOO\n").is_err());
        assert!(p("[logging]\nlocation = bogus:x\n").is_err());
        assert!(p("[cluster]\nleader timeout = 0\n").is_err());
        assert!(p("[cluster]\ntransport = ib\n").is_err());
        assert!(p("[database]\nvolatile database directory = /nonexistent/x\n").is_err());
    }

    #[test]
    fn ignores_lines_without_equals() {
        assert!(p("garbage line\n[legacy]\nstart as stopped = false\n").is_ok());
    }
}
