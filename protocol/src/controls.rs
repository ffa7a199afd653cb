//! Typed control payloads: [`ControlRequest`] for the data of a
//! CTDB_REQ_CONTROL and [`ControlReply`] for the data of a successful
//! CTDB_REPLY_CONTROL, one variant per control, named after its opcode.
//!
//! Decoding is strict: the payload must be exactly the opcode's layout
//! (no bytes left over, strings NUL-terminated), which is what Samba 4.17's
//! clients and daemon send.  A control without a typed layout here keeps
//! its raw bytes (`Other`), so an unknown or obsolete opcode still decodes
//! and can be answered with an error.

use crate::error::DecodeError;
use crate::ids::{DbId, Srvid};
use crate::ltdb::{RecBuffer, RecData};
use crate::opcode::ControlOpcode;
use crate::statistics::{DbStatistics, Statistics, StatisticsList};
use crate::tunables::{Tunable, TunableList, VarList};
use crate::types::{
    AddrInfo, BanState, Connection, DbIdPadded, DbMap, DbVacuum, EchoData, Iface, IfaceList,
    KeyData, NodeFlagChange, NodeMap, PidSrvid, PublicIp, PublicIpInfo, PublicIpList, PullDbExt,
    RunState, TickleList, TransDb, TraverseAll, TraverseAllExt, TraverseStart, TraverseStartExt,
    Uptime, VnnMap,
};
use crate::wire::{CountedString, Layout, PlainText, SockAddr};

/// Decodes `data` as exactly one `T`.
fn payload<T: Layout>(data: &[u8]) -> Result<T, DecodeError> {
    T::decode(data)
}

/// Fails unless a control that carries no payload got none.
fn no_payload(opcode: ControlOpcode, data: &[u8]) -> Result<(), DecodeError> {
    if data.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes {
            what: opcode.name(),
            count: data.len(),
        })
    }
}

macro_rules! control_requests {
    (
        empty { $( $(#[$udoc:meta])* $unit:ident, )* }
        data { $( $(#[$ddoc:meta])* $var:ident($ty:ty), )* }
    ) => {
        /// The payload of a control request, one variant per control.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ControlRequest {
            $( $(#[$udoc])* $unit, )*
            $( $(#[$ddoc])* $var($ty), )*
            /// A control without a typed layout here: its opcode and bytes.
            Other {
                /// The opcode as received.
                opcode: ControlOpcode,
                /// The payload as received.
                data: Vec<u8>,
            },
        }

        impl ControlRequest {
            /// The opcode this request is sent with.
            pub fn opcode(&self) -> ControlOpcode {
                match self {
                    $( ControlRequest::$unit => ControlOpcode::$unit, )*
                    $( ControlRequest::$var(_) => ControlOpcode::$var, )*
                    ControlRequest::Other { opcode, .. } => *opcode,
                }
            }

            /// Decodes the payload of a request with `opcode`; an opcode
            /// without a typed layout gives `Other` and never fails.
            pub fn decode(opcode: ControlOpcode, data: &[u8]) -> Result<Self, DecodeError> {
                match opcode {
                    $( ControlOpcode::$unit => {
                        no_payload(opcode, data)?;
                        Ok(ControlRequest::$unit)
                    } )*
                    $( ControlOpcode::$var => Ok(ControlRequest::$var(payload(data)?)), )*
                    _ => Ok(ControlRequest::Other { opcode, data: data.to_vec() }),
                }
            }

            /// Appends the payload bytes (nothing for controls without one).
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $( ControlRequest::$unit => {} )*
                    $( ControlRequest::$var(v) => v.encode(out), )*
                    ControlRequest::Other { data, .. } => out.extend_from_slice(data),
                }
            }

            /// The payload bytes in a new vector.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode(&mut out);
                out
            }
        }
    };
}

control_requests! {
    empty {
        /// STATISTICS: the daemon's counters.
        Statistics,
        /// PING: status is the number of clients.
        Ping,
        /// GETVNNMAP.
        GetVnnMap,
        /// GET_DEBUG: the log level.
        GetDebug,
        /// GET_DBMAP: the attached databases.
        GetDbMap,
        /// GET_RECMODE: status is the recovery mode.
        GetRecmode,
        /// STATISTICS_RESET.
        StatisticsReset,
        /// REGISTER_SRVID: the srvid is the request's `srvid` field.
        RegisterSrvid,
        /// DEREGISTER_SRVID: the srvid is the request's `srvid` field.
        DeregisterSrvid,
        /// DUMP_MEMORY.
        DumpMemory,
        /// GET_PID: status is the daemon's pid.
        GetPid,
        /// FREEZE: freeze every database.
        Freeze,
        /// GET_PNN: status is the node's pnn.
        GetPnn,
        /// SHUTDOWN.
        Shutdown,
        /// STARTUP: a node announces it started.
        Startup,
        /// LIST_TUNABLES: the names.
        ListTunables,
        /// GET_ALL_TUNABLES: every value.
        GetAllTunables,
        /// UPTIME.
        Uptime,
        /// START_RECOVERY.
        StartRecovery,
        /// END_RECOVERY.
        EndRecovery,
        /// RELOAD_NODES_FILE.
        ReloadNodesFile,
        /// GET_CAPABILITIES.
        GetCapabilities,
        /// RECD_PING: the recovery daemon is alive.
        RecdPing,
        /// GET_PUBLIC_IPS (flags may ask for available ones only).
        GetPublicIps,
        /// GET_NODEMAP.
        GetNodeMap,
        /// GET_RECLOCK_FILE.
        GetReclockFile,
        /// STOP_NODE.
        StopNode,
        /// CONTINUE_NODE.
        ContinueNode,
        /// GET_BAN_STATE.
        GetBanState,
        /// GET_IFACES.
        GetIfaces,
        /// GET_STAT_HISTORY.
        GetStatHistory,
        /// RELOAD_PUBLIC_IPS.
        ReloadPublicIps,
        /// IPREALLOCATED: a takeover run finished.
        IpReallocated,
        /// GET_RUNSTATE.
        GetRunState,
        /// GET_NODES_FILE.
        GetNodesFile,
        /// TUNNEL_REGISTER: the tunnel id is the request's `srvid` field.
        TunnelRegister,
        /// TUNNEL_DEREGISTER: the tunnel id is the request's `srvid` field.
        TunnelDeregister,
        /// DISABLE_NODE.
        DisableNode,
        /// ENABLE_NODE.
        EnableNode,
    }
    data {
        /// PROCESS_EXISTS: a pid (i32).
        ProcessExists(i32),
        /// GETDBPATH.
        GetDbPath(DbId),
        /// SETVNNMAP.
        SetVnnMap(VnnMap),
        /// SET_DEBUG: the new log level.
        SetDebug(u32),
        /// SET_RECMODE: the new recovery mode.
        SetRecmode(u32),
        /// DB_ATTACH: a volatile database's name.
        DbAttach(String),
        /// TRAVERSE_START.
        TraverseStart(TraverseStart),
        /// TRAVERSE_ALL: a traverse fanned out to this node.
        TraverseAll(TraverseAll),
        /// TRAVERSE_DATA: one record of a fanned-out traverse (empty key
        /// and data end it).
        TraverseData(RecData),
        /// GET_DBNAME.
        GetDbName(DbId),
        /// ENABLE_SEQNUM.
        EnableSeqnum(DbId),
        /// UPDATE_SEQNUM.
        UpdateSeqnum(DbId),
        /// TCP_CLIENT: a client connection to track.
        TcpClient(Connection),
        /// TCP_ADD.
        TcpAdd(Connection),
        /// TCP_REMOVE.
        TcpRemove(Connection),
        /// SET_TUNABLE.
        SetTunable(Tunable),
        /// GET_TUNABLE: the name as a counted string.
        GetTunable(CountedString),
        /// MODIFY_FLAGS.
        ModifyFlags(NodeFlagChange),
        /// GET_TCP_TICKLE_LIST.
        GetTcpTickleList(SockAddr),
        /// SET_TCP_TICKLE_LIST.
        SetTcpTickleList(TickleList),
        /// DB_ATTACH_PERSISTENT: the database's name.
        DbAttachPersistent(String),
        /// UPDATE_RECORD.
        UpdateRecord(RecBuffer),
        /// SEND_GRATUITOUS_ARP.
        SendGratuitousArp(AddrInfo),
        /// WIPE_DATABASE.
        WipeDatabase(TransDb),
        /// TRY_DELETE_RECORDS.
        TryDeleteRecords(RecBuffer),
        /// ADD_PUBLIC_IP.
        AddPublicIp(AddrInfo),
        /// DEL_PUBLIC_IP.
        DelPublicIp(AddrInfo),
        /// RELEASE_IP.
        ReleaseIp(PublicIp),
        /// TAKEOVER_IP.
        TakeoverIp(PublicIp),
        /// TRAVERSE_KILL.
        TraverseKill(TraverseStart),
        /// RECD_RECLOCK_LATENCY: seconds.
        RecdReclockLatency(f64),
        /// SET_LMASTERROLE: 0 or 1.
        SetLmasterRole(u32),
        /// SET_RECMASTERROLE: 0 or 1.
        SetRecmasterRole(u32),
        /// SET_BAN_STATE.
        SetBanState(BanState),
        /// REGISTER_NOTIFY.
        RegisterNotify(crate::types::NotifyData),
        /// DEREGISTER_NOTIFY: the srvid registered.
        DeregisterNotify(Srvid),
        /// TRANS3_COMMIT: the records of a persistent transaction.
        Trans3Commit(RecBuffer),
        /// GET_DB_SEQNUM: db_id and 4 bytes padding.
        GetDbSeqnum(DbIdPadded),
        /// DB_SET_HEALTHY.
        DbSetHealthy(DbId),
        /// DB_GET_HEALTH.
        DbGetHealth(DbId),
        /// GET_PUBLIC_IP_INFO.
        GetPublicIpInfo(SockAddr),
        /// SET_IFACE_LINK_STATE.
        SetIfaceLinkState(Iface),
        /// TCP_ADD_DELAYED_UPDATE.
        TcpAddDelayedUpdate(Connection),
        /// SCHEDULE_FOR_DELETION.
        ScheduleForDeletion(KeyData),
        /// SET_DB_READONLY.
        SetDbReadonly(DbId),
        /// TRAVERSE_START_EXT.
        TraverseStartExt(TraverseStartExt),
        /// GET_DB_STATISTICS.
        GetDbStatistics(DbId),
        /// SET_DB_STICKY.
        SetDbSticky(DbId),
        /// TRAVERSE_ALL_EXT.
        TraverseAllExt(TraverseAllExt),
        /// DB_DETACH.
        DbDetach(DbId),
        /// DB_FREEZE.
        DbFreeze(DbId),
        /// DB_THAW.
        DbThaw(DbId),
        /// DB_TRANSACTION_START.
        DbTransactionStart(TransDb),
        /// DB_TRANSACTION_COMMIT.
        DbTransactionCommit(TransDb),
        /// DB_TRANSACTION_CANCEL.
        DbTransactionCancel(DbId),
        /// DB_PULL: records travel as messages to the srvid.
        DbPull(PullDbExt),
        /// DB_PUSH_START: records arrive as messages to the srvid.
        DbPushStart(PullDbExt),
        /// DB_PUSH_CONFIRM.
        DbPushConfirm(DbId),
        /// DB_OPEN_FLAGS.
        DbOpenFlags(DbId),
        /// DB_ATTACH_REPLICATED: the database's name.
        DbAttachReplicated(String),
        /// CHECK_PID_SRVID.
        CheckPidSrvid(PidSrvid),
        /// VACUUM_FETCH.
        VacuumFetch(RecBuffer),
        /// DB_VACUUM.
        DbVacuum(DbVacuum),
        /// ECHO_DATA.
        EchoData(EchoData),
    }
}

impl ControlRequest {
    /// The database a request is about, for the controls that name one.
    pub fn db_id(&self) -> Option<DbId> {
        use ControlRequest as R;
        match self {
            R::GetDbPath(id)
            | R::GetDbName(id)
            | R::EnableSeqnum(id)
            | R::UpdateSeqnum(id)
            | R::DbSetHealthy(id)
            | R::DbGetHealth(id)
            | R::SetDbReadonly(id)
            | R::GetDbStatistics(id)
            | R::SetDbSticky(id)
            | R::DbDetach(id)
            | R::DbFreeze(id)
            | R::DbThaw(id)
            | R::DbTransactionCancel(id)
            | R::DbPushConfirm(id)
            | R::DbOpenFlags(id) => Some(*id),
            R::GetDbSeqnum(p) => Some(p.db_id),
            R::WipeDatabase(t) | R::DbTransactionStart(t) | R::DbTransactionCommit(t) => {
                Some(t.db_id)
            }
            R::TraverseStart(t) | R::TraverseKill(t) => Some(t.db_id),
            R::TraverseStartExt(t) => Some(t.db_id),
            R::TraverseAll(t) => Some(t.db_id),
            R::TraverseAllExt(t) => Some(t.all.db_id),
            R::ScheduleForDeletion(k) => Some(k.db_id),
            R::DbPull(p) | R::DbPushStart(p) => Some(p.db_id),
            R::DbVacuum(v) => Some(v.db_id),
            R::UpdateRecord(b)
            | R::TryDeleteRecords(b)
            | R::Trans3Commit(b)
            | R::VacuumFetch(b) => Some(b.db_id),
            _ => None,
        }
    }
}

macro_rules! control_replies {
    ( $( $(#[$doc:meta])* $var:ident($ty:ty), )* ) => {
        /// The data of a successful control reply, one variant per control
        /// that answers with data.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ControlReply {
            /// No data (controls that answer with the status alone).
            Empty,
            /// Data for a control without a typed reply layout here.
            Other(Vec<u8>),
            $( $(#[$doc])* $var($ty), )*
        }

        impl ControlReply {
            /// Decodes the data of a successful reply to `opcode`.  Controls
            /// without a typed reply give `Empty` for no bytes and `Other`
            /// otherwise, and never fail.
            pub fn decode(opcode: ControlOpcode, data: &[u8]) -> Result<Self, DecodeError> {
                match opcode {
                    $( ControlOpcode::$var => Ok(ControlReply::$var(payload(data)?)), )*
                    _ if data.is_empty() => Ok(ControlReply::Empty),
                    _ => Ok(ControlReply::Other(data.to_vec())),
                }
            }

            /// Appends the reply data.
            pub fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    ControlReply::Empty => {}
                    ControlReply::Other(data) => out.extend_from_slice(data),
                    $( ControlReply::$var(v) => v.encode(out), )*
                }
            }

            /// The reply data in a new vector.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode(&mut out);
                out
            }

            /// The opcode whose typed reply this is (`None` for `Empty` and
            /// `Other`).
            pub fn opcode(&self) -> Option<ControlOpcode> {
                match self {
                    ControlReply::Empty | ControlReply::Other(_) => None,
                    $( ControlReply::$var(_) => Some(ControlOpcode::$var), )*
                }
            }
        }
    };
}

control_replies! {
    /// STATISTICS.
    Statistics(Statistics),
    /// GETDBPATH: the database file's path.
    GetDbPath(String),
    /// GETVNNMAP.
    GetVnnMap(VnnMap),
    /// GET_DEBUG: the log level.
    GetDebug(u32),
    /// GET_DBMAP.
    GetDbMap(DbMap),
    /// DB_ATTACH: the database id.
    DbAttach(DbId),
    /// GET_DBNAME.
    GetDbName(String),
    /// DUMP_MEMORY: a text report (sent without a NUL).
    DumpMemory(PlainText),
    /// GET_TUNABLE: the value.
    GetTunable(u32),
    /// LIST_TUNABLES: the names.
    ListTunables(VarList),
    /// GET_ALL_TUNABLES.
    GetAllTunables(TunableList),
    /// GET_TCP_TICKLE_LIST.
    GetTcpTickleList(TickleList),
    /// DB_ATTACH_PERSISTENT: the database id.
    DbAttachPersistent(DbId),
    /// UPTIME.
    Uptime(Uptime),
    /// TRY_DELETE_RECORDS: the records that could not be deleted.
    TryDeleteRecords(RecBuffer),
    /// GET_CAPABILITIES: `CAP_*` bits.
    GetCapabilities(u32),
    /// GET_PUBLIC_IPS.
    GetPublicIps(PublicIpList),
    /// GET_NODEMAP.
    GetNodeMap(NodeMap),
    /// GET_RECLOCK_FILE: the cluster lock, if any.
    GetReclockFile(Option<String>),
    /// GET_BAN_STATE.
    GetBanState(BanState),
    /// GET_DB_SEQNUM.
    GetDbSeqnum(u64),
    /// DB_GET_HEALTH: why the database is unhealthy, nothing if healthy.
    DbGetHealth(Option<String>),
    /// GET_PUBLIC_IP_INFO.
    GetPublicIpInfo(PublicIpInfo),
    /// GET_IFACES.
    GetIfaces(IfaceList),
    /// GET_STAT_HISTORY.
    GetStatHistory(StatisticsList),
    /// GET_DB_STATISTICS.
    GetDbStatistics(DbStatistics),
    /// GET_RUNSTATE.
    GetRunState(RunState),
    /// GET_NODES_FILE.
    GetNodesFile(NodeMap),
    /// DB_PULL: records sent.
    DbPull(u32),
    /// DB_PUSH_CONFIRM: records received.
    DbPushConfirm(u32),
    /// DB_OPEN_FLAGS: the tdb open flags.
    DbOpenFlags(i32),
    /// DB_ATTACH_REPLICATED: the database id.
    DbAttachReplicated(DbId),
    /// ECHO_DATA: the data echoed.
    EchoData(EchoData),
}
