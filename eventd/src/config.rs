//! The parts of ctdb.conf the event daemon reads, as Samba's does: the
//! `[logging]` location and log level and the `[event]` debug script.
//! Other sections and keys are ignored; a bad value of one of these three
//! is an error, so the daemon does not start.  A missing file means the
//! defaults.

use std::path::{Path, PathBuf};

/// Logging location when ctdb.conf names none.
pub const DEFAULT_LOCATION: &str = "file:/var/log/ctdb/log.ctdb";
/// Log level when ctdb.conf names none.
pub const DEFAULT_LEVEL: &str = "ERROR";

/// Debug levels as ctdb numbers them (defined with the log sink).
pub use ctdb_logging::{DEBUG_ERR, DEBUG_NOTICE};

/// Where log lines go (defined with the log sink).
pub use ctdb_logging::LogTarget;

/// Parses a ctdb.conf logging location (shared with ctdbd).
use ctdb_logging::parse_log_location;

/// The event daemon's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventConfig {
    /// Where to log.
    pub log_target: LogTarget,
    /// Highest level logged.
    pub log_level: u32,
    /// The hung-script debug program, already joined to the etc directory.
    pub debug_script: Option<PathBuf>,
}

/// Why ctdb.conf was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file exists but could not be read.
    Read(String),
    /// Values that failed validation: Samba's messages, one per line, in
    /// the order the file gives them.
    Invalid(Vec<String>),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read(e) => write!(f, "cannot read ctdb.conf: {e}"),
            ConfigError::Invalid(lines) => f.write_str(&lines.join("\n")),
        }
    }
}

/// Samba's message for a value its validator refused.
fn refused(option: &str) -> String {
    format!("conf: validation for option \"{option}\" failed")
}

/// Parses a level as ctdbd does (a number 0..=10 or a prefix of a name).
pub use ctdb_logging::parse_debug_level as parse_level;

/// The (section, key, value) triples of an ini text.  Names are
/// case-sensitive, as Samba's; lines that are neither a section, a
/// `key = value`, a comment nor blank are skipped, as Samba's parser does.
fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let key = k.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push((section.clone(), key, v.trim().to_string()));
    }
    out
}

/// Samba's check of the debug script: `etc_dir/basename(script)` must be
/// an executable regular file.
fn check_debug_script(etc_dir: &Path, script: &str) -> Result<(), String> {
    let base = Path::new(script)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = etc_dir.join(base);
    let shown = path.display();
    let meta =
        std::fs::metadata(&path).map_err(|_| format!("debug script {shown} does not exist"))?;
    if !meta.is_file() {
        return Err(format!("debug script {shown} is not a file"));
    }
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 == 0 {
        return Err(format!("debug script {shown} is not executable"));
    }
    Ok(())
}

impl EventConfig {
    /// Reads `file` (defaults when it does not exist); `etc_dir` is where
    /// the debug script must be.
    pub fn load(file: &Path, etc_dir: &Path) -> Result<EventConfig, ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError::Read(e.to_string())),
        };
        EventConfig::parse(&text, etc_dir)
    }

    /// The configuration in `text`; every refused value is reported.
    pub fn parse(text: &str, etc_dir: &Path) -> Result<EventConfig, ConfigError> {
        let mut config = EventConfig {
            log_target: parse_log_location(DEFAULT_LOCATION).unwrap_or(LogTarget::Stderr),
            log_level: parse_level(DEFAULT_LEVEL).unwrap_or(DEBUG_ERR),
            debug_script: None,
        };
        let mut errors = Vec::new();
        for (section, key, value) in parse_ini(text) {
            match (section.as_str(), key.as_str()) {
                ("logging", "location") => match parse_log_location(&value) {
                    Some(t) => config.log_target = t,
                    None => errors.push(refused("location")),
                },
                ("logging", "log level") => match parse_level(&value) {
                    Some(l) => config.log_level = l,
                    None => errors.push(refused("log level")),
                },
                ("event", "debug script") => match check_debug_script(etc_dir, &value) {
                    Ok(()) => config.debug_script = Some(etc_dir.join(value)),
                    Err(why) => errors.extend([why, refused("debug script")]),
                },
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let c = EventConfig::parse("", Path::new("/nonexistent")).unwrap();
        assert_eq!(
            c.log_target,
            LogTarget::File("/var/log/ctdb/log.ctdb".into())
        );
        assert_eq!(c.log_level, DEBUG_ERR);
        assert_eq!(c.debug_script, None);
        let text = "[logging]\n  location = syslog\n\tlog level = notice\n[cluster]\nrecovery lock = x\ngarbage\n[Logging]\nlog level = LOUD\n[event]\n# c\n";
        let c = EventConfig::parse(text, Path::new("/x")).unwrap();
        assert_eq!(
            (c.log_target, c.log_level),
            (LogTarget::Syslog, DEBUG_NOTICE)
        );
    }

    #[test]
    fn bad_values_are_all_reported_with_samba_messages() {
        let etc = Path::new("/nonexistent");
        let text =
            "[logging]\nlog level = LOUD\nlocation = nowhere\n[event]\ndebug script = d.sh\n";
        let Err(ConfigError::Invalid(lines)) = EventConfig::parse(text, etc) else {
            panic!("accepted")
        };
        assert_eq!(
            lines,
            [
                "conf: validation for option \"log level\" failed",
                "conf: validation for option \"location\" failed",
                "debug script /nonexistent/d.sh does not exist",
                "conf: validation for option \"debug script\" failed",
            ]
        );
    }

    #[test]
    fn debug_script_must_be_an_executable_file_in_etc() {
        let d = std::env::temp_dir().join(format!("eventd-conf-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dbg.sh"), "#!/bin/sh\n").unwrap();
        let text = "[event]\ndebug script = dbg.sh\n";
        assert!(EventConfig::parse(text, &d).is_err());
        std::fs::set_permissions(
            d.join("dbg.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let c = EventConfig::parse(text, &d).unwrap();
        assert_eq!(c.debug_script, Some(d.join("dbg.sh")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
