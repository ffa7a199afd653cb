//! Distinct types for the numbers the protocol passes around, so that a
//! database id cannot be used where a node number is meant.

use crate::error::DecodeError;
use crate::wire::{Layout, Reader, Writer};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $read:ident, $write:ident, $label:literal, $fmt:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl Layout for $name {
            const NAME: &'static str = $label;
            fn write(&self, w: &mut Writer<'_>) {
                w.$write(self.0);
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$read($label).map($name)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> $name {
                $name(v)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> $inner {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $fmt, self.0)
            }
        }
    };
}

id_type!(
    /// A database id (the hash of the database name Samba derives).
    DbId(u32), u32, u32, "db_id", "0x{:08x}"
);
id_type!(
    /// A physical node number, or one of the special destinations.
    Pnn(u32), u32, u32, "pnn", "{}"
);
id_type!(
    /// A cluster generation (changes with every recovery).
    Generation(u32), u32, u32, "generation", "{}"
);
id_type!(
    /// A server id: the address of a message handler.
    Srvid(u64), u64, u64, "srvid", "0x{:016x}"
);

impl Pnn {
    /// Destination of a client packet for the daemon it talks to.
    pub const CURRENT_NODE: Pnn = Pnn(0xF000_0001);
    /// Every node, active or not.
    pub const BROADCAST_ALL: Pnn = Pnn(0xF000_0002);
    /// Every node in the vnn map.
    pub const BROADCAST_ACTIVE: Pnn = Pnn(0xF000_0003);
    /// Every connected node.
    pub const BROADCAST_CONNECTED: Pnn = Pnn(0xF000_0004);
    /// Selected connected nodes.
    pub const MULTICAST: Pnn = Pnn(0xF000_0005);
    /// No node (an unassigned public address, an unknown leader).
    pub const UNKNOWN: Pnn = Pnn(0xFFFF_FFFF);

    /// True for the broadcast and multicast destinations.
    pub fn is_broadcast(self) -> bool {
        matches!(
            self,
            Pnn::BROADCAST_ALL | Pnn::BROADCAST_ACTIVE | Pnn::BROADCAST_CONNECTED | Pnn::MULTICAST
        )
    }
}

impl Generation {
    /// The generation of a node that has not finished a recovery.
    pub const INVALID: Generation = Generation(1);
}

impl Srvid {
    /// Receives every message.
    pub const ALL: Srvid = Srvid(u64::MAX);
    /// Pulls and pushes of databases during recovery (prefix).
    pub const RECOVERY: Srvid = Srvid(0xF001_0000_0000_0000);
    /// Banning credits.
    pub const BANNING: Srvid = Srvid(0xF002_0000_0000_0000);
    /// Election data.
    pub const ELECTION: Srvid = Srvid(0xF100_0000_0000_0000);
    /// Announcements of the leader's pnn.
    pub const LEADER: Srvid = Srvid(0xF101_0000_0000_0000);
    /// Ours, not Samba's: a client put a node into recovery mode ACTIVE
    /// (SET_RECMODE), so the leader's recovery daemon should look at the
    /// cluster now rather than at its next RecoverInterval.  Broadcast by
    /// the node that took the control; a Samba daemon has no client
    /// registered for it and drops it.
    pub const RECMODE_ACTIVE_BY_CLIENT: Srvid = Srvid(0xF102_0000_0000_0000);
    /// The cluster was reconfigured.
    pub const RECONFIGURE: Srvid = Srvid(0xF200_0000_0000_0000);
    /// A public address was released.
    pub const RELEASE_IP: Srvid = Srvid(0xF300_0000_0000_0000);
    /// A public address was taken over.
    pub const TAKE_IP: Srvid = Srvid(0xF301_0000_0000_0000);
    /// Node flags to the recovery daemon (obsolete).
    pub const SET_NODE_FLAGS: Srvid = Srvid(0xF400_0000_0000_0000);
    /// Update of a public address assignment.
    pub const RECD_UPDATE_IP: Srvid = Srvid(0xF500_0000_0000_0000);
    /// Records to migrate (vacuum fetch).
    pub const VACUUM_FETCH: Srvid = Srvid(0xF700_0000_0000_0000);
    /// A database to detach.
    pub const DETACH_DATABASE: Srvid = Srvid(0xF701_0000_0000_0000);
    /// Dump memory usage.
    pub const MEM_DUMP: Srvid = Srvid(0xF800_0000_0000_0000);
    /// Send logs (obsolete).
    pub const GETLOG: Srvid = Srvid(0xF801_0000_0000_0000);
    /// Clear logs (obsolete).
    pub const CLEARLOG: Srvid = Srvid(0xF802_0000_0000_0000);
    /// Push node flags to the other nodes.
    pub const PUSH_NODE_FLAGS: Srvid = Srvid(0xF900_0000_0000_0000);
    /// Reload the nodes file.
    pub const RELOAD_NODES: Srvid = Srvid(0xFA00_0000_0000_0000);
    /// Run a takeover run.
    pub const TAKEOVER_RUN: Srvid = Srvid(0xFB00_0000_0000_0000);
    /// Rebalance addresses onto a node.
    pub const REBALANCE_NODE: Srvid = Srvid(0xFB01_0000_0000_0000);
    /// Disable takeover runs for a while.
    pub const DISABLE_TAKEOVER_RUNS: Srvid = Srvid(0xFB03_0000_0000_0000);
    /// Disable recoveries for a while.
    pub const DISABLE_RECOVERIES: Srvid = Srvid(0xFB04_0000_0000_0000);
    /// Disable the public address checks for a while.
    pub const DISABLE_IP_CHECK: Srvid = Srvid(0xFC00_0000_0000_0000);
    /// Samba's range (smbd's notifications).
    pub const SAMBA_RANGE: Srvid = Srvid(0xFE00_0000_0000_0000);
    /// The ctdb tool's range.
    pub const TOOL_RANGE: Srvid = Srvid(0xCE00_0000_0000_0000);
    /// The client library's range.
    pub const CLIENT_RANGE: Srvid = Srvid(0xBE00_0000_0000_0000);
}
