//! The control payload layouts that are not statistics, tunables or records:
//! maps, address lists, traverse arguments and the small fixed structs.

use crate::error::DecodeError;
use crate::ids::{DbId, Generation, Pnn, Srvid};
use crate::ltdb::LtdbHeader;
use crate::wire::{Layout, Reader, SockAddr, Timeval, Writer};

/// Database flag: persistent.
pub const DB_FLAGS_PERSISTENT: u8 = 0x01;
/// Database flag: read-only delegations enabled.
pub const DB_FLAGS_READONLY: u8 = 0x02;
/// Database flag: sticky records enabled.
pub const DB_FLAGS_STICKY: u8 = 0x04;
/// Database flag: replicated.
pub const DB_FLAGS_REPLICATED: u8 = 0x08;

/// Node flag: not connected.
pub const NODE_FLAGS_DISCONNECTED: u32 = 0x01;
/// Node flag: monitoring says unhealthy.
pub const NODE_FLAGS_UNHEALTHY: u32 = 0x02;
/// Node flag: disabled by the administrator.
pub const NODE_FLAGS_PERMANENTLY_DISABLED: u32 = 0x04;
/// Node flag: banned.
pub const NODE_FLAGS_BANNED: u32 = 0x08;
/// Node flag: deleted from the nodes file.
pub const NODE_FLAGS_DELETED: u32 = 0x10;
/// Node flag: stopped.
pub const NODE_FLAGS_STOPPED: u32 = 0x20;
/// Unhealthy or disabled.
pub const NODE_FLAGS_DISABLED: u32 = NODE_FLAGS_UNHEALTHY | NODE_FLAGS_PERMANENTLY_DISABLED;
/// Deleted, disconnected, banned or stopped.
pub const NODE_FLAGS_INACTIVE: u32 =
    NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED | NODE_FLAGS_BANNED | NODE_FLAGS_STOPPED;

/// Capability: may become leader (recovery master).
pub const CAP_RECMASTER: u32 = 0x0000_0001;
/// Capability: may be lmaster of records.
pub const CAP_LMASTER: u32 = 0x0000_0002;
/// Feature: parallel database recovery.
pub const CAP_PARALLEL_RECOVERY: u32 = 0x0001_0000;
/// Feature: fragmented controls.
pub const CAP_FRAGMENTED_CONTROLS: u32 = 0x0002_0000;
/// What a default node reports.
pub const CAP_DEFAULT: u32 =
    CAP_RECMASTER | CAP_LMASTER | CAP_PARALLEL_RECOVERY | CAP_FRAGMENTED_CONTROLS;

/// Recovery mode: normal operation.
pub const RECOVERY_NORMAL: u32 = 0;
/// Recovery mode: recovery running.
pub const RECOVERY_ACTIVE: u32 = 1;

/// `lmaster` value of a pull that wants every record.
pub const LMASTER_ANY: Pnn = Pnn(0xFFFF_FFFF);

/// Reads a u32 count then that many `T`.  The count is not trusted for
/// allocation: each element is read (and may fail) before it is stored.
fn read_list<T: Layout>(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<T>, DecodeError> {
    let count = r.u32(what)?;
    let mut v = Vec::new();
    for _ in 0..count {
        v.push(T::read(r)?);
    }
    Ok(v)
}

/// Writes a u32 count then the elements.
fn write_list<T: Layout>(w: &mut Writer<'_>, items: &[T]) {
    w.len_u32(items.len());
    for i in items {
        i.write(w);
    }
}

macro_rules! list_layout {
    ($(#[$doc:meta])* $name:ident, $elem:ty, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name(pub Vec<$elem>);

        impl Layout for $name {
            const NAME: &'static str = $label;
            fn write(&self, w: &mut Writer<'_>) {
                write_list(w, &self.0);
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                read_list(r, $label).map($name)
            }
        }
    };
}

/// The run states of a daemon, in the order it passes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunState {
    /// Not known.
    Unknown = 0,
    /// Starting.
    Init = 1,
    /// Transport set up.
    Setup = 2,
    /// Waiting for the first recovery.
    FirstRecovery = 3,
    /// Running the startup event.
    Startup = 4,
    /// Serving.
    Running = 5,
    /// Shutting down.
    Shutdown = 6,
}

impl RunState {
    /// The name `ctdb runstate` prints.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Unknown => "UNKNOWN",
            RunState::Init => "INIT",
            RunState::Setup => "SETUP",
            RunState::FirstRecovery => "FIRST_RECOVERY",
            RunState::Startup => "STARTUP",
            RunState::Running => "RUNNING",
            RunState::Shutdown => "SHUTDOWN",
        }
    }
}

impl TryFrom<u32> for RunState {
    type Error = DecodeError;
    fn try_from(v: u32) -> Result<RunState, DecodeError> {
        Ok(match v {
            0 => RunState::Unknown,
            1 => RunState::Init,
            2 => RunState::Setup,
            3 => RunState::FirstRecovery,
            4 => RunState::Startup,
            5 => RunState::Running,
            6 => RunState::Shutdown,
            v => {
                return Err(DecodeError::BadValue {
                    what: "runstate",
                    value: v.into(),
                })
            }
        })
    }
}

impl Layout for RunState {
    const NAME: &'static str = "runstate";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(*self as u32);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        RunState::try_from(r.u32(Self::NAME)?)
    }
}

/// `ctdb_vnn_map`: generation u32, size u32, then size pnns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VnnMap {
    /// The generation the map belongs to.
    pub generation: Generation,
    /// The lmaster of each hash slot.
    pub map: Vec<Pnn>,
}

impl Layout for VnnMap {
    const NAME: &'static str = "ctdb_vnn_map";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.generation.0);
        write_list(w, &self.map);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VnnMap {
            generation: Generation::read(r)?,
            map: read_list(r, Self::NAME)?,
        })
    }
}

/// `ctdb_dbid`: db_id u32, flags u8, 3 bytes padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbIdEntry {
    /// The database.
    pub db_id: DbId,
    /// `DB_FLAGS_*` bits.
    pub flags: u8,
}

impl Layout for DbIdEntry {
    const NAME: &'static str = "ctdb_dbid";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).u8(self.flags).padding(3);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let e = DbIdEntry {
            db_id: DbId::read(r)?,
            flags: r.u8(Self::NAME)?,
        };
        r.padding(3)?;
        Ok(e)
    }
}

list_layout!(
    /// `ctdb_dbid_map`: num u32, then the entries (GET_DBMAP).
    DbMap, DbIdEntry, "ctdb_dbid_map"
);

/// `ctdb_node_and_flags`: pnn u32, flags u32, address (36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAndFlags {
    /// The node.
    pub pnn: Pnn,
    /// `NODE_FLAGS_*` bits.
    pub flags: u32,
    /// The node's address.
    pub addr: SockAddr,
}

impl Layout for NodeAndFlags {
    const NAME: &'static str = "ctdb_node_and_flags";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.pnn.0).u32(self.flags);
        self.addr.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeAndFlags {
            pnn: Pnn::read(r)?,
            flags: r.u32(Self::NAME)?,
            addr: SockAddr::read(r)?,
        })
    }
}

list_layout!(
    /// `ctdb_node_map`: num u32, then the nodes (GET_NODEMAP, GET_NODES_FILE).
    NodeMap, NodeAndFlags, "ctdb_node_map"
);

/// `ctdb_public_ip`: pnn u32 (the holder, or unknown), address (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicIp {
    /// The node holding the address.
    pub pnn: Pnn,
    /// The address.
    pub addr: SockAddr,
}

impl Layout for PublicIp {
    const NAME: &'static str = "ctdb_public_ip";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.pnn.0);
        self.addr.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PublicIp {
            pnn: Pnn::read(r)?,
            addr: SockAddr::read(r)?,
        })
    }
}

list_layout!(
    /// `ctdb_public_ip_list`: num u32, then the addresses (GET_PUBLIC_IPS).
    PublicIpList, PublicIp, "ctdb_public_ip_list"
);

/// Size of an interface name array (IFNAMSIZ + 2).
pub const IFACE_NAME_LEN: usize = 18;

/// `ctdb_iface`: name in an 18-byte array (at most 17 bytes kept),
/// link_state u16, references u32 (24 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iface {
    /// The interface name.
    pub name: String,
    /// 1 when the link is up.
    pub link_state: u16,
    /// Addresses using the interface.
    pub references: u32,
}

impl Layout for Iface {
    const NAME: &'static str = "ctdb_iface";
    fn write(&self, w: &mut Writer<'_>) {
        w.char_array(&self.name, IFACE_NAME_LEN)
            .u16(self.link_state)
            .u32(self.references);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Iface {
            name: r.char_array(IFACE_NAME_LEN, "ctdb_iface name")?,
            link_state: r.u16(Self::NAME)?,
            references: r.u32(Self::NAME)?,
        })
    }
}

list_layout!(
    /// `ctdb_iface_list`: num u32, then the interfaces (GET_IFACES).
    IfaceList, Iface, "ctdb_iface_list"
);

/// `ctdb_public_ip_info`: the address, active_idx u32, its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicIpInfo {
    /// The address and its holder.
    pub ip: PublicIp,
    /// Index of the active interface in `ifaces` (u32::MAX for none).
    pub active_idx: u32,
    /// The interfaces that can carry the address.
    pub ifaces: IfaceList,
}

impl Layout for PublicIpInfo {
    const NAME: &'static str = "ctdb_public_ip_info";
    fn write(&self, w: &mut Writer<'_>) {
        self.ip.write(w);
        w.u32(self.active_idx);
        self.ifaces.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PublicIpInfo {
            ip: PublicIp::read(r)?,
            active_idx: r.u32(Self::NAME)?,
            ifaces: IfaceList::read(r)?,
        })
    }
}

/// `ctdb_traverse_start`: db_id u32, reqid u32, srvid u64 (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraverseStart {
    /// The database.
    pub db_id: DbId,
    /// The traverse id the records carry.
    pub reqid: u32,
    /// Where the records are sent.
    pub srvid: Srvid,
}

impl Layout for TraverseStart {
    const NAME: &'static str = "ctdb_traverse_start";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).u32(self.reqid).u64(self.srvid.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TraverseStart {
            db_id: DbId::read(r)?,
            reqid: r.u32(Self::NAME)?,
            srvid: Srvid::read(r)?,
        })
    }
}

/// `ctdb_traverse_start_ext`: [`TraverseStart`] plus withemptyrecords (a
/// bool) and 7 bytes padding (24 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraverseStartExt {
    /// The database.
    pub db_id: DbId,
    /// The traverse id the records carry.
    pub reqid: u32,
    /// Where the records are sent.
    pub srvid: Srvid,
    /// Whether records with empty data are sent too.
    pub with_empty_records: bool,
}

impl Layout for TraverseStartExt {
    const NAME: &'static str = "ctdb_traverse_start_ext";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0)
            .u32(self.reqid)
            .u64(self.srvid.0)
            .bool(self.with_empty_records)
            .padding(7);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = TraverseStartExt {
            db_id: DbId::read(r)?,
            reqid: r.u32(Self::NAME)?,
            srvid: Srvid::read(r)?,
            with_empty_records: r.bool("withemptyrecords")?,
        };
        r.padding(7)?;
        Ok(t)
    }
}

/// `ctdb_traverse_all`: db_id, reqid, pnn, client_reqid (u32 each), srvid
/// u64 (24 bytes): a traverse fanned out to every node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraverseAll {
    /// The database.
    pub db_id: DbId,
    /// The fan-out's id.
    pub reqid: u32,
    /// The node collecting the records.
    pub pnn: Pnn,
    /// The client's traverse id.
    pub client_reqid: u32,
    /// The client's srvid.
    pub srvid: Srvid,
}

impl Layout for TraverseAll {
    const NAME: &'static str = "ctdb_traverse_all";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0)
            .u32(self.reqid)
            .u32(self.pnn.0)
            .u32(self.client_reqid)
            .u64(self.srvid.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TraverseAll {
            db_id: DbId::read(r)?,
            reqid: r.u32(Self::NAME)?,
            pnn: Pnn::read(r)?,
            client_reqid: r.u32(Self::NAME)?,
            srvid: Srvid::read(r)?,
        })
    }
}

/// `ctdb_traverse_all_ext`: [`TraverseAll`] plus withemptyrecords and 7
/// bytes padding (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraverseAllExt {
    /// The fan-out itself.
    pub all: TraverseAll,
    /// Whether records with empty data are sent too.
    pub with_empty_records: bool,
}

impl Layout for TraverseAllExt {
    const NAME: &'static str = "ctdb_traverse_all_ext";
    fn write(&self, w: &mut Writer<'_>) {
        self.all.write(w);
        w.bool(self.with_empty_records).padding(7);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = TraverseAllExt {
            all: TraverseAll::read(r)?,
            with_empty_records: r.bool("withemptyrecords")?,
        };
        r.padding(7)?;
        Ok(t)
    }
}

/// `ctdb_key_data` (SCHEDULE_FOR_DELETION): db_id u32, 4 bytes padding,
/// the record header, keylen u32, key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyData {
    /// The database.
    pub db_id: DbId,
    /// The record's header as the sender saw it.
    pub header: LtdbHeader,
    /// The record key.
    pub key: Vec<u8>,
}

impl Layout for KeyData {
    const NAME: &'static str = "ctdb_key_data";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).padding(4);
        self.header.write(w);
        w.counted_blob(&self.key);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let db_id = DbId::read(r)?;
        r.padding(4)?;
        Ok(KeyData {
            db_id,
            header: LtdbHeader::read(r)?,
            key: r.counted_blob("ctdb_key_data key")?,
        })
    }
}

/// `ctdb_connection`: two addresses (56 bytes).  smbd puts the SMB
/// client's address first and its own (the server's) second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The first address (`src`, the SMB client for smbd).
    pub src: SockAddr,
    /// The second address (`dst`, the server for smbd).
    pub dst: SockAddr,
}

impl Layout for Connection {
    const NAME: &'static str = "ctdb_connection";
    fn write(&self, w: &mut Writer<'_>) {
        self.src.write(w);
        self.dst.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Connection {
            src: SockAddr::read(r)?,
            dst: SockAddr::read(r)?,
        })
    }
}

/// `ctdb_tickle_list`: an address, num u32, then the connections to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickleList {
    /// The public address.
    pub addr: SockAddr,
    /// Its connections.
    pub connections: Vec<Connection>,
}

impl Layout for TickleList {
    const NAME: &'static str = "ctdb_tickle_list";
    fn write(&self, w: &mut Writer<'_>) {
        self.addr.write(w);
        write_list(w, &self.connections);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TickleList {
            addr: SockAddr::read(r)?,
            connections: read_list(r, Self::NAME)?,
        })
    }
}

/// `ctdb_notify_data` (REGISTER_NOTIFY): srvid u64, len u32, data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyData {
    /// Where the notification goes when the client disconnects.
    pub srvid: Srvid,
    /// What it carries.
    pub data: Vec<u8>,
}

impl Layout for NotifyData {
    const NAME: &'static str = "ctdb_notify_data";
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.srvid.0).counted_blob(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NotifyData {
            srvid: Srvid::read(r)?,
            data: r.counted_blob("ctdb_notify_data data")?,
        })
    }
}

/// `ctdb_uptime`: four timevals (64 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uptime {
    /// The daemon's clock when it answered.
    pub current_time: Timeval,
    /// When the daemon started.
    pub ctdbd_start_time: Timeval,
    /// When the last recovery started.
    pub last_recovery_started: Timeval,
    /// When the last recovery finished.
    pub last_recovery_finished: Timeval,
}

impl Layout for Uptime {
    const NAME: &'static str = "ctdb_uptime";
    fn write(&self, w: &mut Writer<'_>) {
        self.current_time.write(w);
        self.ctdbd_start_time.write(w);
        self.last_recovery_started.write(w);
        self.last_recovery_finished.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Uptime {
            current_time: Timeval::read(r)?,
            ctdbd_start_time: Timeval::read(r)?,
            last_recovery_started: Timeval::read(r)?,
            last_recovery_finished: Timeval::read(r)?,
        })
    }
}

macro_rules! fixed_struct {
    ($(#[$doc:meta])* $name:ident, $label:literal { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? } pad $pad:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $ty, )*
        }

        impl Layout for $name {
            const NAME: &'static str = $label;
            fn write(&self, w: &mut Writer<'_>) {
                $( self.$field.write(w); )*
                w.padding($pad);
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let v = $name { $( $field: <$ty>::read(r)?, )* };
                r.padding($pad)?;
                Ok(v)
            }
        }
    };
}

fixed_struct!(
    /// `ctdb_transdb`: db_id u32, tid u32 (transaction controls, WIPE_DATABASE).
    TransDb, "ctdb_transdb" {
        /// The database.
        db_id: DbId,
        /// The transaction id.
        tid: u32,
    } pad 0
);

fixed_struct!(
    /// `ctdb_pulldb`: db_id u32, lmaster u32 (PULL_DB).
    PullDb, "ctdb_pulldb" {
        /// The database.
        db_id: DbId,
        /// Only records of this lmaster ([`LMASTER_ANY`] for all).
        lmaster: Pnn,
    } pad 0
);

fixed_struct!(
    /// `ctdb_pulldb_ext`: db_id u32, lmaster u32, srvid u64 (DB_PULL,
    /// DB_PUSH_START).
    PullDbExt, "ctdb_pulldb_ext" {
        /// The database.
        db_id: DbId,
        /// Only records of this lmaster ([`LMASTER_ANY`] for all).
        lmaster: Pnn,
        /// Where the record buffers travel.
        srvid: Srvid,
    } pad 0
);

fixed_struct!(
    /// `ctdb_pid_srvid` (CHECK_PID_SRVID): pid i32 then srvid u64, packed
    /// (12 bytes).
    PidSrvid, "ctdb_pid_srvid" {
        /// The process.
        pid: i32,
        /// The srvid it should have registered.
        srvid: Srvid,
    } pad 0
);

fixed_struct!(
    /// `ctdb_ban_state`: pnn u32, time u32 (seconds).
    BanState, "ctdb_ban_state" {
        /// The node.
        pnn: Pnn,
        /// Ban duration in seconds (0 lifts the ban).
        time: u32,
    } pad 0
);

fixed_struct!(
    /// `ctdb_node_flag_change` (MODIFY_FLAGS): pnn, new_flags, old_flags.
    NodeFlagChange, "ctdb_node_flag_change" {
        /// The node.
        pnn: Pnn,
        /// Flags after the change.
        new_flags: u32,
        /// Flags before the change.
        old_flags: u32,
    } pad 0
);

/// `ctdb_db_vacuum` (DB_VACUUM): db_id u32, full_vacuum_run bool (5 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbVacuum {
    /// The database.
    pub db_id: DbId,
    /// Whether to run a full vacuum (traverse the whole database).
    pub full_vacuum_run: bool,
}

impl Layout for DbVacuum {
    const NAME: &'static str = "ctdb_db_vacuum";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).bool(self.full_vacuum_run);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DbVacuum {
            db_id: DbId::read(r)?,
            full_vacuum_run: r.bool("full_vacuum_run")?,
        })
    }
}

/// `ctdb_echo_data` (ECHO_DATA): timeout u32, len u32, data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoData {
    /// Milliseconds to wait before answering.
    pub timeout: u32,
    /// The bytes echoed back.
    pub buf: Vec<u8>,
}

impl Layout for EchoData {
    const NAME: &'static str = "ctdb_echo_data";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.timeout).counted_blob(&self.buf);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EchoData {
            timeout: r.u32(Self::NAME)?,
            buf: r.counted_blob("ctdb_echo_data data")?,
        })
    }
}

/// `ctdb_addr_info`: address, mask u32, interface as a counted string
/// (ADD_PUBLIC_IP, DEL_PUBLIC_IP, SEND_GRATUITOUS_ARP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address.
    pub addr: SockAddr,
    /// Netmask bits.
    pub mask: u32,
    /// Interface names, comma separated (`None` sends length 0).
    pub iface: Option<String>,
}

impl Layout for AddrInfo {
    const NAME: &'static str = "ctdb_addr_info";
    fn write(&self, w: &mut Writer<'_>) {
        self.addr.write(w);
        w.u32(self.mask).counted_cstring(self.iface.as_deref());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AddrInfo {
            addr: SockAddr::read(r)?,
            mask: r.u32(Self::NAME)?,
            iface: r.counted_cstring("ctdb_addr_info iface")?,
        })
    }
}

/// Payload of GET_DB_SEQNUM: db_id u32 then 4 bytes padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbIdPadded {
    /// The database.
    pub db_id: DbId,
}

impl Layout for DbIdPadded {
    const NAME: &'static str = "padded db_id";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).padding(4);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let db_id = DbId::read(r)?;
        r.padding(4)?;
        Ok(DbIdPadded { db_id })
    }
}
