//! Where the daemon finds and puts things, as Samba's `path.c`: with
//! `CTDB_TEST_MODE` set everything lives under `$CTDB_BASE` (configuration
//! and events in it, socket and pid file in `$CTDB_BASE/run`); otherwise
//! the configuration is in /etc/ctdb and the socket in /run/ctdb.

use std::path::PathBuf;

/// Configuration directory outside test mode.
const ETC_DIR: &str = "/etc/ctdb";
/// Run-time directory outside test mode.
const RUN_DIR: &str = "/run/ctdb";

/// The daemon's directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Holds ctdb.conf, events/ and the debug script.
    pub etc_dir: PathBuf,
    /// Holds the socket and the pid file.
    pub run_dir: PathBuf,
}

/// Test mode without `CTDB_BASE`: Samba aborts with this message.
#[derive(Debug, PartialEq, Eq)]
pub struct MissingBase;

impl std::fmt::Display for MissingBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broken CTDB setup, CTDB_BASE not set in test mode")
    }
}

impl Paths {
    /// The paths for this environment (`CTDB_TEST_MODE`, `CTDB_BASE`).
    pub fn from_env() -> Result<Paths, MissingBase> {
        Paths::new(
            std::env::var_os("CTDB_TEST_MODE").is_some(),
            std::env::var_os("CTDB_BASE").map(PathBuf::from),
        )
    }

    /// The paths for test mode on or off with the given base.
    pub fn new(test_mode: bool, base: Option<PathBuf>) -> Result<Paths, MissingBase> {
        if !test_mode {
            return Ok(Paths {
                etc_dir: ETC_DIR.into(),
                run_dir: RUN_DIR.into(),
            });
        }
        let base = base.ok_or(MissingBase)?;
        Ok(Paths {
            run_dir: base.join("run"),
            etc_dir: base,
        })
    }

    /// `ctdb.conf`.
    pub fn config(&self) -> PathBuf {
        self.etc_dir.join("ctdb.conf")
    }

    /// The directory whose subdirectories are the components.
    pub fn events_dir(&self) -> PathBuf {
        self.etc_dir.join("events")
    }

    /// The daemon's socket, `eventd.socket`.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("eventd.socket")
    }

    /// The daemon's pid file, `eventd.pid`.
    pub fn pidfile(&self) -> PathBuf {
        self.run_dir.join("eventd.pid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mode_uses_base_and_run() {
        let p = Paths::new(true, Some("/b".into())).unwrap();
        assert_eq!(p.socket(), PathBuf::from("/b/run/eventd.socket"));
        assert_eq!(p.pidfile(), PathBuf::from("/b/run/eventd.pid"));
        assert_eq!(p.events_dir(), PathBuf::from("/b/events"));
        assert_eq!(p.config(), PathBuf::from("/b/ctdb.conf"));
        assert_eq!(Paths::new(true, None), Err(MissingBase));
        let p = Paths::new(false, Some("/b".into())).unwrap();
        assert_eq!(p.socket(), PathBuf::from("/run/ctdb/eventd.socket"));
        assert_eq!(p.events_dir(), PathBuf::from("/etc/ctdb/events"));
    }
}
