//! Tunable variables: names, defaults and which ones are obsolete, in the
//! order of the ctdb_tunable_list structure (GET_ALL_TUNABLES sends them as
//! an array of u32 in exactly this order).

use ctdb_protocol::tunables::{TunableList, TUNABLE_COUNT};

/// Declares the `Tunables` struct (one u32 field per tunable, in the order
/// of Samba's ctdb_tunable_list, which is the wire order of
/// GET_ALL_TUNABLES) and `TUNABLES`, the table that maps each name to its
/// field and obsolete flag.
macro_rules! tunables {
    ($($field:ident: $name:literal = $default:expr, obsolete = $obsolete:literal;)*) => {
        /// Every tunable, typed: code reads `tunables.vacuum_interval`, so a
        /// misspelt name does not compile.  Fields are in struct (wire) order.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Tunables {
            $(#[doc = $name] pub $field: u32,)*
        }

        impl Default for Tunables {
            fn default() -> Self {
                Tunables { $($field: $default,)* }
            }
        }

        /// Struct order (the wire order of GET_ALL_TUNABLES).
        pub const TUNABLES: &[TunableDef] = &[
            $(TunableDef {
                name: $name,
                obsolete: $obsolete,
                value: |t| t.$field,
                field: |t| &mut t.$field,
            },)*
        ];
    };
}

/// One row of the name table.
pub struct TunableDef {
    /// The name the tool and ctdb.tunables use.
    pub name: &'static str,
    /// Obsolete: settable (SET_TUNABLE answers 1) but left out of listings.
    pub obsolete: bool,
    /// Reads the struct field that holds the value.
    pub value: fn(&Tunables) -> u32,
    /// The struct field that holds the value.
    pub field: fn(&mut Tunables) -> &mut u32,
}

tunables! {
    max_redirect_count: "MaxRedirectCount" = 3, obsolete = true;
    seqnum_interval: "SeqnumInterval" = 1000, obsolete = false;
    control_timeout: "ControlTimeout" = 60, obsolete = false;
    traverse_timeout: "TraverseTimeout" = 20, obsolete = false;
    keepalive_interval: "KeepaliveInterval" = 5, obsolete = false;
    keepalive_limit: "KeepaliveLimit" = 5, obsolete = false;
    recover_timeout: "RecoverTimeout" = 30, obsolete = false;
    recover_interval: "RecoverInterval" = 1, obsolete = false;
    election_timeout: "ElectionTimeout" = 3, obsolete = false;
    takeover_timeout: "TakeoverTimeout" = 9, obsolete = false;
    monitor_interval: "MonitorInterval" = 15, obsolete = false;
    tickle_update_interval: "TickleUpdateInterval" = 20, obsolete = false;
    event_script_timeout: "EventScriptTimeout" = 30, obsolete = false;
    monitor_timeout_count: "MonitorTimeoutCount" = 20, obsolete = false;
    event_script_unhealthy_on_timeout: "EventScriptUnhealthyOnTimeout" = 0, obsolete = true;
    recovery_grace_period: "RecoveryGracePeriod" = 120, obsolete = false;
    recovery_ban_period: "RecoveryBanPeriod" = 300, obsolete = false;
    database_hash_size: "DatabaseHashSize" = 100001, obsolete = false;
    database_max_dead: "DatabaseMaxDead" = 5, obsolete = false;
    rerecovery_timeout: "RerecoveryTimeout" = 10, obsolete = false;
    enable_bans: "EnableBans" = 1, obsolete = false;
    deterministic_ips: "DeterministicIPs" = 0, obsolete = true;
    reclock_ping_period: "ReclockPingPeriod" = 60, obsolete = true;
    no_ip_failback: "NoIPFailback" = 0, obsolete = false;
    disable_ip_failover: "DisableIPFailover" = 0, obsolete = true;
    verbose_memory_names: "VerboseMemoryNames" = 0, obsolete = false;
    recd_ping_timeout: "RecdPingTimeout" = 60, obsolete = false;
    recd_fail_count: "RecdFailCount" = 10, obsolete = false;
    log_latency_ms: "LogLatencyMs" = 0, obsolete = false;
    rec_lock_latency_ms: "RecLockLatencyMs" = 1000, obsolete = false;
    recovery_drop_all_ips: "RecoveryDropAllIPs" = 120, obsolete = false;
    verify_recovery_lock: "VerifyRecoveryLock" = 1, obsolete = true;
    vacuum_interval: "VacuumInterval" = 10, obsolete = false;
    vacuum_max_run_time: "VacuumMaxRunTime" = 120, obsolete = false;
    repack_limit: "RepackLimit" = 10_000, obsolete = false;
    vacuum_limit: "VacuumLimit" = 5_000, obsolete = true;
    max_queue_drop_msg: "MaxQueueDropMsg" = 1_000_000, obsolete = false;
    allow_unhealthy_db_read: "AllowUnhealthyDBRead" = 0, obsolete = false;
    stat_history_interval: "StatHistoryInterval" = 1, obsolete = false;
    deferred_attach_to: "DeferredAttachTO" = 120, obsolete = false;
    vacuum_fast_path_count: "VacuumFastPathCount" = 60, obsolete = false;
    lcp2_public_ips: "LCP2PublicIPs" = 1, obsolete = true;
    allow_client_db_attach: "AllowClientDBAttach" = 1, obsolete = false;
    recover_pdb_by_seq_num: "RecoverPDBBySeqNum" = 1, obsolete = true;
    deferred_rebalance_on_node_add: "DeferredRebalanceOnNodeAdd" = 300, obsolete = true;
    fetch_collapse: "FetchCollapse" = 1, obsolete = false;
    hopcount_make_sticky: "HopcountMakeSticky" = 50, obsolete = false;
    sticky_duration: "StickyDuration" = 600, obsolete = false;
    sticky_pindown: "StickyPindown" = 200, obsolete = false;
    no_ip_takeover: "NoIPTakeover" = 0, obsolete = false;
    db_record_count_warn: "DBRecordCountWarn" = 100_000, obsolete = false;
    db_record_size_warn: "DBRecordSizeWarn" = 10_000_000, obsolete = false;
    db_size_warn: "DBSizeWarn" = 100_000_000, obsolete = false;
    pull_db_preallocation: "PullDBPreallocation" = 10 * 1024 * 1024, obsolete = false;
    no_ip_host_on_all_disabled: "NoIPHostOnAllDisabled" = 1, obsolete = true;
    samba3_avoid_deadlocks: "Samba3AvoidDeadlocks" = 0, obsolete = true;
    tdb_mutex_enabled: "TDBMutexEnabled" = 1, obsolete = true;
    lock_processes_per_db: "LockProcessesPerDB" = 200, obsolete = false;
    rec_buffer_size_limit: "RecBufferSizeLimit" = 1_000_000, obsolete = false;
    queue_buffer_size: "QueueBufferSize" = 1024, obsolete = false;
    ip_alloc_algorithm: "IPAllocAlgorithm" = 2, obsolete = false;
    allow_mixed_versions: "AllowMixedVersions" = 0, obsolete = false;
}

/// Where the order `ctdb listvars` shows (the order of Samba's name table)
/// differs from the struct order: each first name is listed right after the
/// second instead of at its struct place.
const LISTED_AFTER: &[(&str, &str)] = &[
    ("LCP2PublicIPs", "DeterministicIPs"),
    ("VacuumFastPathCount", "VacuumLimit"),
];

/// Every tunable's name, obsolete ones included, in listing order.
fn list_order() -> impl Iterator<Item = &'static str> {
    let moved = |name: &str| LISTED_AFTER.iter().any(|(m, _)| *m == name);
    let followers = |name: &'static str| {
        LISTED_AFTER
            .iter()
            .filter(move |(_, after)| *after == name)
            .map(|(m, _)| *m)
    };
    TUNABLES
        .iter()
        .map(|d| d.name)
        .filter(move |n| !moved(n))
        .flat_map(move |n| std::iter::once(n).chain(followers(n)))
}

/// What SET_TUNABLE did.
pub enum SetResult {
    Ok,
    /// Set, but the tunable is obsolete.
    Obsolete,
    /// No tunable by that name.
    Unknown,
}

impl Tunables {
    fn index(name: &str) -> Option<usize> {
        TUNABLES
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The value of the tunable called `name` (any case).
    pub fn get(&self, name: &str) -> Option<u32> {
        Self::index(name).map(|i| (TUNABLES[i].value)(self))
    }

    /// Sets the tunable called `name` (any case).
    pub fn set(&mut self, name: &str, value: u32) -> SetResult {
        match Self::index(name) {
            None => SetResult::Unknown,
            Some(i) => {
                *(TUNABLES[i].field)(self) = value;
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
        list_order()
            .filter(|n| !TUNABLES[Self::index(n).unwrap()].obsolete)
            .collect()
    }

    /// Every value in struct order, as GET_ALL_TUNABLES sends them.
    pub fn to_list(&self) -> TunableList {
        let mut list = [0u32; TUNABLE_COUNT];
        for (v, d) in list.iter_mut().zip(TUNABLES) {
            *v = (d.value)(self);
        }
        TunableList(list)
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
    fn names_reach_the_typed_fields() {
        let mut t = Tunables::default();
        assert_eq!(t.vacuum_interval, 10);
        assert!(matches!(t.set("vacuuminterval", 3), SetResult::Ok));
        assert_eq!(t.vacuum_interval, 3);
        t.traverse_timeout = 7;
        assert_eq!(t.get("TraverseTimeout"), Some(7));
        // The wire order is the table's order, which is the protocol's.
        let list = t.to_list();
        assert_eq!(list.0[3], 7);
        assert_eq!(list.get("VacuumInterval"), Some(3));
        let names: Vec<&str> = TUNABLES.iter().map(|d| d.name).collect();
        assert_eq!(names, ctdb_protocol::tunables::TUNABLE_NAMES);
        // Every name in the listing order is a tunable, once.
        let order: Vec<&str> = list_order().collect();
        for n in &order {
            assert!(Tunables::index(n).is_some(), "{n}");
        }
        for (moved, after) in LISTED_AFTER {
            let at = order.iter().position(|n| n == after).unwrap();
            assert_eq!(order[at + 1], *moved);
        }
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), TUNABLES.len());
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
