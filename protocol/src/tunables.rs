//! Tunable layouts: `ctdb_tunable_list` (GET_ALL_TUNABLES, every value as a
//! u32 in struct order), `ctdb_var_list` (LIST_TUNABLES, names joined by
//! ':') and `ctdb_tunable` (SET_TUNABLE).

use crate::error::DecodeError;
use crate::wire::{Layout, Reader, Writer};

/// Number of values in `ctdb_tunable_list`.
pub const TUNABLE_COUNT: usize = 62;

/// The tunables' names in the order of `ctdb_tunable_list` (the wire order
/// of GET_ALL_TUNABLES), obsolete ones included.
pub const TUNABLE_NAMES: [&str; TUNABLE_COUNT] = [
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
    "MaxQueueDropMsg",
    "AllowUnhealthyDBRead",
    "StatHistoryInterval",
    "DeferredAttachTO",
    "VacuumFastPathCount",
    "LCP2PublicIPs",
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

/// `ctdb_tunable_list`: [`TUNABLE_COUNT`] u32 values in the order of
/// [`TUNABLE_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunableList(pub [u32; TUNABLE_COUNT]);

impl Default for TunableList {
    fn default() -> Self {
        TunableList([0; TUNABLE_COUNT])
    }
}

impl TunableList {
    /// The value of the tunable named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<u32> {
        TUNABLE_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| self.0[i])
    }

    /// Sets the tunable named `name` (case-insensitive); false for a name
    /// that is not in the list.
    pub fn set(&mut self, name: &str, value: u32) -> bool {
        match TUNABLE_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i] = value;
                true
            }
            None => false,
        }
    }
}

impl Layout for TunableList {
    const NAME: &'static str = "ctdb_tunable_list";
    fn write(&self, w: &mut Writer<'_>) {
        for v in &self.0 {
            w.u32(*v);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut a = [0u32; TUNABLE_COUNT];
        for v in &mut a {
            *v = r.u32(Self::NAME)?;
        }
        Ok(TunableList(a))
    }
}

/// `ctdb_var_list`: a u32 length, then the names joined by ':' with one
/// terminating NUL (no bytes at all for an empty list).  Decoding keeps
/// empty segments (Samba's daemon starts its list with a ':', which gives
/// an empty first one) so that the bytes survive a round trip; readers use
/// [`VarList::names`], which skips them as Samba's tool does.  Names must
/// contain no ':'.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarList(pub Vec<String>);

impl VarList {
    /// The non-empty names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str).filter(|s| !s.is_empty())
    }
}

impl Layout for VarList {
    const NAME: &'static str = "ctdb_var_list";
    fn write(&self, w: &mut Writer<'_>) {
        if self.0.is_empty() {
            w.u32(0);
            return;
        }
        let joined = self.0.join(":");
        w.len_u32(joined.len() + 1).cstring(&joined);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.u32(Self::NAME)?;
        if n == 0 {
            return Ok(VarList(Vec::new()));
        }
        let joined = r.sized_cstring(n, Self::NAME)?;
        Ok(VarList(joined.split(':').map(str::to_string).collect()))
    }
}

/// `ctdb_tunable` (SET_TUNABLE): value u32, then the name as a counted
/// NUL-terminated string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tunable {
    /// The tunable's name.
    pub name: String,
    /// The new value.
    pub value: u32,
}

impl Layout for Tunable {
    const NAME: &'static str = "ctdb_tunable";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.value).counted_cstring(Some(&self.name));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let value = r.u32(Self::NAME)?;
        let name = r
            .counted_cstring("ctdb_tunable name")?
            .ok_or(DecodeError::MissingNul {
                what: "ctdb_tunable name",
            })?;
        Ok(Tunable { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_list_layout() {
        let v = VarList(vec!["A".into(), "Bc".into()]);
        let b = v.to_bytes();
        assert_eq!(b, [5, 0, 0, 0, b'A', b':', b'B', b'c', 0]);
        assert_eq!(VarList::decode(&b).unwrap(), v);
        assert_eq!(VarList::default().to_bytes(), [0, 0, 0, 0]);
        // Samba's daemon sends a leading ':'.
        let samba = VarList::decode(&[3, 0, 0, 0, b':', b'A', 0]).unwrap();
        assert_eq!(samba.names().collect::<Vec<_>>(), ["A"]);
        assert_eq!(samba.to_bytes(), [3, 0, 0, 0, b':', b'A', 0]);
        assert_eq!(TUNABLE_NAMES[17], "DatabaseHashSize");
        assert_eq!(TunableList::default().to_bytes().len(), 4 * TUNABLE_COUNT);
    }
}
