//! Tunable variables: names, defaults and which ones are obsolete, in the
//! order of the ctdb_tunable_list structure (GET_ALL_TUNABLES sends them as
//! an array of u32 in exactly this order).

use crate::protocol::Writer;

pub struct TunableDef {
    pub name: &'static str,
    pub default: u32,
    pub obsolete: bool,
}

const fn t(name: &'static str, default: u32, obsolete: bool) -> TunableDef {
    TunableDef {
        name,
        default,
        obsolete,
    }
}

/// Struct order (the wire order of GET_ALL_TUNABLES).
pub const TUNABLES: &[TunableDef] = &[
    t("MaxRedirectCount", 3, true),
    t("SeqnumInterval", 1000, false),
    t("ControlTimeout", 60, false),
    t("TraverseTimeout", 20, false),
    t("KeepaliveInterval", 5, false),
    t("KeepaliveLimit", 5, false),
    t("RecoverTimeout", 30, false),
    t("RecoverInterval", 1, false),
    t("ElectionTimeout", 3, false),
    t("TakeoverTimeout", 9, false),
    t("MonitorInterval", 15, false),
    t("TickleUpdateInterval", 20, false),
    t("EventScriptTimeout", 30, false),
    t("MonitorTimeoutCount", 20, false),
    t("EventScriptUnhealthyOnTimeout", 0, true),
    t("RecoveryGracePeriod", 120, false),
    t("RecoveryBanPeriod", 300, false),
    t("DatabaseHashSize", 100001, false),
    t("DatabaseMaxDead", 5, false),
    t("RerecoveryTimeout", 10, false),
    t("EnableBans", 1, false),
    t("DeterministicIPs", 0, true),
    t("ReclockPingPeriod", 60, true),
    t("NoIPFailback", 0, false),
    t("DisableIPFailover", 0, true),
    t("VerboseMemoryNames", 0, false),
    t("RecdPingTimeout", 60, false),
    t("RecdFailCount", 10, false),
    t("LogLatencyMs", 0, false),
    t("RecLockLatencyMs", 1000, false),
    t("RecoveryDropAllIPs", 120, false),
    t("VerifyRecoveryLock", 1, true),
    t("VacuumInterval", 10, false),
    t("VacuumMaxRunTime", 120, false),
    t("RepackLimit", 10_000, false),
    t("VacuumLimit", 5_000, true),
    t("MaxQueueDropMsg", 1_000_000, false),
    t("AllowUnhealthyDBRead", 0, false),
    t("StatHistoryInterval", 1, false),
    t("DeferredAttachTO", 120, false),
    t("VacuumFastPathCount", 60, false),
    t("LCP2PublicIPs", 1, true),
    t("AllowClientDBAttach", 1, false),
    t("RecoverPDBBySeqNum", 1, true),
    t("DeferredRebalanceOnNodeAdd", 300, true),
    t("FetchCollapse", 1, false),
    t("HopcountMakeSticky", 50, false),
    t("StickyDuration", 600, false),
    t("StickyPindown", 200, false),
    t("NoIPTakeover", 0, false),
    t("DBRecordCountWarn", 100_000, false),
    t("DBRecordSizeWarn", 10_000_000, false),
    t("DBSizeWarn", 100_000_000, false),
    t("PullDBPreallocation", 10 * 1024 * 1024, false),
    t("NoIPHostOnAllDisabled", 1, true),
    t("Samba3AvoidDeadlocks", 0, true),
    t("TDBMutexEnabled", 1, true),
    t("LockProcessesPerDB", 200, false),
    t("RecBufferSizeLimit", 1_000_000, false),
    t("QueueBufferSize", 1024, false),
    t("IPAllocAlgorithm", 2, false),
    t("AllowMixedVersions", 0, false),
];

/// The order `ctdb listvars` shows (the order of Samba's name table, which
/// differs from the struct order in three places).
const LIST_ORDER: &[&str] = &[
    "MaxRedirectCount",
    "SeqnumInterval",
    "ControlTimeout",
    "TraverseTimeout",
    "KeepaliveInterval",
    "KeepaliveLimit",
    "RecoverTimeout",
    "RecoverInterval",
    "ElectionTimeout",
    "TakeoverTimeout",
    "MonitorInterval",
    "TickleUpdateInterval",
    "EventScriptTimeout",
    "MonitorTimeoutCount",
    "EventScriptUnhealthyOnTimeout",
    "RecoveryGracePeriod",
    "RecoveryBanPeriod",
    "DatabaseHashSize",
    "DatabaseMaxDead",
    "RerecoveryTimeout",
    "EnableBans",
    "DeterministicIPs",
    "LCP2PublicIPs",
    "ReclockPingPeriod",
    "NoIPFailback",
    "DisableIPFailover",
    "VerboseMemoryNames",
    "RecdPingTimeout",
    "RecdFailCount",
    "LogLatencyMs",
    "RecLockLatencyMs",
    "RecoveryDropAllIPs",
    "VerifyRecoveryLock",
    "VacuumInterval",
    "VacuumMaxRunTime",
    "RepackLimit",
    "VacuumLimit",
    "VacuumFastPathCount",
    "MaxQueueDropMsg",
    "AllowUnhealthyDBRead",
    "StatHistoryInterval",
    "DeferredAttachTO",
    "AllowClientDBAttach",
    "RecoverPDBBySeqNum",
    "DeferredRebalanceOnNodeAdd",
    "FetchCollapse",
    "HopcountMakeSticky",
    "StickyDuration",
    "StickyPindown",
    "NoIPTakeover",
    "DBRecordCountWarn",
    "DBRecordSizeWarn",
    "DBSizeWarn",
    "PullDBPreallocation",
    "NoIPHostOnAllDisabled",
    "Samba3AvoidDeadlocks",
    "TDBMutexEnabled",
    "LockProcessesPerDB",
    "RecBufferSizeLimit",
    "QueueBufferSize",
    "IPAllocAlgorithm",
    "AllowMixedVersions",
];

#[derive(Clone)]
pub struct Tunables {
    values: Vec<u32>,
}

pub enum SetResult {
    Ok,
    Obsolete,
    Unknown,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            values: TUNABLES.iter().map(|d| d.default).collect(),
        }
    }
}

impl Tunables {
    fn index(name: &str) -> Option<usize> {
        TUNABLES
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(name))
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        Self::index(name).map(|i| self.values[i])
    }

    pub fn set(&mut self, name: &str, value: u32) -> SetResult {
        match Self::index(name) {
            None => SetResult::Unknown,
            Some(i) => {
                self.values[i] = value;
                if TUNABLES[i].obsolete {
                    SetResult::Obsolete
                } else {
                    SetResult::Ok
                }
            }
        }
    }

    /// Names of the tunables that are not obsolete, in listing order.
    pub fn names() -> Vec<&'static str> {
        LIST_ORDER
            .iter()
            .copied()
            .filter(|n| !TUNABLES[Self::index(n).unwrap()].obsolete)
            .collect()
    }

    /// ctdb_tunable_list: every value as u32, struct order.
    pub fn encode_all(&self, w: &mut Writer) {
        for v in &self.values {
            w.u32(*v);
        }
    }

    pub fn database_hash_size(&self) -> u32 {
        self.get("DatabaseHashSize").unwrap()
    }
    pub fn recover_interval(&self) -> u32 {
        self.get("RecoverInterval").unwrap()
    }
    pub fn allow_client_db_attach(&self) -> u32 {
        self.get("AllowClientDBAttach").unwrap()
    }
    pub fn database_max_dead(&self) -> u32 {
        self.get("DatabaseMaxDead").unwrap()
    }
    pub fn vacuum_interval(&self) -> u32 {
        self.get("VacuumInterval").unwrap()
    }
    pub fn vacuum_max_run_time(&self) -> u32 {
        self.get("VacuumMaxRunTime").unwrap()
    }
    pub fn vacuum_fast_path_count(&self) -> u32 {
        self.get("VacuumFastPathCount").unwrap()
    }
    pub fn repack_limit(&self) -> u32 {
        self.get("RepackLimit").unwrap()
    }

    /// Loads a ctdb.tunables file ("Name=value" lines, '#' comments).  A missing
    /// file is fine; every bad line is reported, then the load fails.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<bool, Vec<String>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(vec![format!("Failed to open {}: {}", path.display(), e)]),
        };
        let mut errors = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                errors.push(format!(
                    "Invalid line for section {line} - sections not supported"
                ));
                continue;
            }
            let (name, value) = match line.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (line, ""),
            };
            if value.is_empty() {
                errors.push(format!("Invalid line containing \"{name}\""));
                continue;
            }
            let num = match parse_c_ulong(value) {
                Some(n) => n as u32,
                None => {
                    errors.push(format!("Invalid value \"{value}\" for tunable \"{name}\""));
                    continue;
                }
            };
            match self.set(name, num) {
                SetResult::Ok => {}
                SetResult::Unknown => errors.push(format!("Unknown tunable \"{name}\"")),
                SetResult::Obsolete => errors.push(format!("Obsolete tunable \"{name}\"")),
            }
        }
        if errors.is_empty() {
            Ok(true)
        } else {
            Err(errors)
        }
    }
}

/// strtoul with base 0 over the whole string: decimal, 0x hex or 0 octal.
pub fn parse_c_ulong(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_case_insensitive_lookup() {
        let t = Tunables::default();
        assert_eq!(t.get("recoverinterval"), Some(1));
        assert_eq!(t.get("DatabaseHashSize"), Some(100001));
        assert_eq!(t.get("NoSuch"), None);
        assert_eq!(TUNABLES.len(), 62);
    }

    #[test]
    fn listing_skips_obsolete() {
        let n = Tunables::names();
        assert_eq!(n.len(), 49);
        assert_eq!(n[0], "SeqnumInterval");
        assert!(!n.contains(&"VacuumLimit"));
        assert_eq!(*n.last().unwrap(), "AllowMixedVersions");
    }

    #[test]
    fn set_reports_obsolete_and_unknown() {
        let mut t = Tunables::default();
        assert!(matches!(t.set("RecoverInterval", 3), SetResult::Ok));
        assert_eq!(t.get("RecoverInterval"), Some(3));
        assert!(matches!(t.set("VacuumLimit", 3), SetResult::Obsolete));
        assert!(matches!(t.set("Bogus", 3), SetResult::Unknown));
    }

    #[test]
    fn numbers_parse_like_strtoul() {
        assert_eq!(parse_c_ulong("10"), Some(10));
        assert_eq!(parse_c_ulong("0x10"), Some(16));
        assert_eq!(parse_c_ulong("010"), Some(8));
        assert_eq!(parse_c_ulong("1x"), None);
        assert_eq!(parse_c_ulong("-1"), None);
    }

    #[test]
    fn file_load_reports_each_error() {
        let dir = std::env::temp_dir().join(format!("ctdbd-tun-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctdb.tunables");
        std::fs::write(
            &p,
            "# c\nRecoverInterval=4\nBogus=1\nVacuumLimit=2\nKeepaliveLimit=x\n",
        )
        .unwrap();
        let mut t = Tunables::default();
        let errs = t.load_file(&p).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(t.get("RecoverInterval"), Some(4));
        std::fs::write(&p, "RecoverInterval = 7\n").unwrap();
        let mut t = Tunables::default();
        assert_eq!(t.load_file(&p), Ok(true));
        assert_eq!(t.get("RecoverInterval"), Some(7));
        assert_eq!(t.load_file(&dir.join("none")), Ok(false));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
