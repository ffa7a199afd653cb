//! Packet operations and control opcodes, with the numbers Samba 4.17 uses
//! on the wire.  Numbers this crate does not know stay representable
//! (`Unknown`), so a peer's new packet or control can be answered instead of
//! dropped.

/// The `operation` field of a packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A record call (fetch, fetch-with-header, null call).
    ReqCall,
    /// The answer to a record call.
    ReplyCall,
    /// A request to make a node the dmaster of a record.
    ReqDmaster,
    /// The answer to a dmaster request, carrying the record.
    ReplyDmaster,
    /// An error answer to a call.
    ReplyError,
    /// A message to a server id.
    ReqMessage,
    /// A control request.
    ReqControl,
    /// A control reply.
    ReplyControl,
    /// A keepalive between nodes.
    ReqKeepalive,
    /// A tunnelled packet.
    ReqTunnel,
    /// A number this crate does not know.
    Unknown(u32),
}

impl Operation {
    /// The operation for a wire number; unknown numbers map to `Unknown`.
    pub fn from_u32(n: u32) -> Operation {
        match n {
            0 => Operation::ReqCall,
            1 => Operation::ReplyCall,
            2 => Operation::ReqDmaster,
            3 => Operation::ReplyDmaster,
            4 => Operation::ReplyError,
            5 => Operation::ReqMessage,
            7 => Operation::ReqControl,
            8 => Operation::ReplyControl,
            9 => Operation::ReqKeepalive,
            10 => Operation::ReqTunnel,
            n => Operation::Unknown(n),
        }
    }

    /// The wire number; `from_u32(x.to_u32()) == x` for every known value.
    pub fn to_u32(self) -> u32 {
        match self {
            Operation::ReqCall => 0,
            Operation::ReplyCall => 1,
            Operation::ReqDmaster => 2,
            Operation::ReplyDmaster => 3,
            Operation::ReplyError => 4,
            Operation::ReqMessage => 5,
            Operation::ReqControl => 7,
            Operation::ReplyControl => 8,
            Operation::ReqKeepalive => 9,
            Operation::ReqTunnel => 10,
            Operation::Unknown(n) => n,
        }
    }
}

impl From<u32> for Operation {
    fn from(n: u32) -> Operation {
        Operation::from_u32(n)
    }
}

impl From<Operation> for u32 {
    fn from(op: Operation) -> u32 {
        op.to_u32()
    }
}

macro_rules! control_opcodes {
    ($( $variant:ident = $num:literal, $name:literal, $obsolete:literal; )*) => {
        /// A control opcode (`enum ctdb_controls` of Samba 4.17), every
        /// number Samba defines, and `Unknown` for the rest.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ControlOpcode {
            $(
                #[doc = concat!("CTDB_CONTROL_", $name, " (", stringify!($num), ")")]
                $variant,
            )*
            /// A number Samba 4.17 does not define.
            Unknown(u32),
        }

        impl ControlOpcode {
            /// Every opcode Samba 4.17 defines, in numeric order.
            pub const ALL: &'static [ControlOpcode] = &[$(ControlOpcode::$variant,)*];

            /// The opcode for a wire number; unknown numbers map to `Unknown`.
            pub fn from_u32(n: u32) -> ControlOpcode {
                match n {
                    $($num => ControlOpcode::$variant,)*
                    n => ControlOpcode::Unknown(n),
                }
            }

            /// The wire number; `from_u32(x.to_u32()) == x` for every value
            /// `from_u32` returns.
            pub fn to_u32(self) -> u32 {
                match self {
                    $(ControlOpcode::$variant => $num,)*
                    ControlOpcode::Unknown(n) => n,
                }
            }

            /// Samba's name without the `CTDB_CONTROL_` prefix, or "UNKNOWN".
            pub fn name(self) -> &'static str {
                match self {
                    $(ControlOpcode::$variant => $name,)*
                    ControlOpcode::Unknown(_) => "UNKNOWN",
                }
            }

            /// True for opcodes Samba 4.17 marks obsolete (its daemon refuses
            /// them) and for unknown numbers.
            pub fn is_obsolete(self) -> bool {
                match self {
                    $(ControlOpcode::$variant => $obsolete,)*
                    ControlOpcode::Unknown(_) => true,
                }
            }
        }
    };
}

control_opcodes! {
    ProcessExists = 0, "PROCESS_EXISTS", false;
    Statistics = 1, "STATISTICS", false;
    Ping = 3, "PING", false;
    GetDbPath = 4, "GETDBPATH", false;
    GetVnnMap = 5, "GETVNNMAP", false;
    SetVnnMap = 6, "SETVNNMAP", false;
    GetDebug = 7, "GET_DEBUG", false;
    SetDebug = 8, "SET_DEBUG", false;
    GetDbMap = 9, "GET_DBMAP", false;
    GetNodeMapV4 = 10, "GET_NODEMAPv4", true;
    SetDmaster = 11, "SET_DMASTER", true;
    PullDb = 13, "PULL_DB", true;
    PushDb = 14, "PUSH_DB", true;
    GetRecmode = 15, "GET_RECMODE", false;
    SetRecmode = 16, "SET_RECMODE", false;
    StatisticsReset = 17, "STATISTICS_RESET", false;
    DbAttach = 18, "DB_ATTACH", false;
    SetCall = 19, "SET_CALL", true;
    TraverseStart = 20, "TRAVERSE_START", false;
    TraverseAll = 21, "TRAVERSE_ALL", false;
    TraverseData = 22, "TRAVERSE_DATA", false;
    RegisterSrvid = 23, "REGISTER_SRVID", false;
    DeregisterSrvid = 24, "DEREGISTER_SRVID", false;
    GetDbName = 25, "GET_DBNAME", false;
    EnableSeqnum = 26, "ENABLE_SEQNUM", false;
    UpdateSeqnum = 27, "UPDATE_SEQNUM", false;
    DumpMemory = 29, "DUMP_MEMORY", false;
    GetPid = 30, "GET_PID", false;
    GetRecmaster = 31, "GET_RECMASTER", true;
    SetRecmaster = 32, "SET_RECMASTER", true;
    Freeze = 33, "FREEZE", false;
    Thaw = 34, "THAW", true;
    GetPnn = 35, "GET_PNN", false;
    Shutdown = 36, "SHUTDOWN", false;
    GetMonMode = 37, "GET_MONMODE", true;
    TakeoverIpV4 = 42, "TAKEOVER_IPv4", true;
    ReleaseIpV4 = 43, "RELEASE_IPv4", true;
    TcpClient = 44, "TCP_CLIENT", false;
    TcpAdd = 45, "TCP_ADD", false;
    TcpRemove = 46, "TCP_REMOVE", false;
    Startup = 47, "STARTUP", false;
    SetTunable = 48, "SET_TUNABLE", false;
    GetTunable = 49, "GET_TUNABLE", false;
    ListTunables = 50, "LIST_TUNABLES", false;
    GetPublicIpsV4 = 51, "GET_PUBLIC_IPSv4", true;
    ModifyFlags = 52, "MODIFY_FLAGS", false;
    GetAllTunables = 53, "GET_ALL_TUNABLES", false;
    KillTcp = 54, "KILL_TCP", true;
    GetTcpTickleList = 55, "GET_TCP_TICKLE_LIST", false;
    SetTcpTickleList = 56, "SET_TCP_TICKLE_LIST", false;
    RegisterServerId = 57, "REGISTER_SERVER_ID", true;
    UnregisterServerId = 58, "UNREGISTER_SERVER_ID", true;
    CheckServerId = 59, "CHECK_SERVER_ID", true;
    GetServerIdList = 60, "GET_SERVER_ID_LIST", true;
    DbAttachPersistent = 61, "DB_ATTACH_PERSISTENT", false;
    PersistentStore = 62, "PERSISTENT_STORE", true;
    UpdateRecord = 63, "UPDATE_RECORD", false;
    SendGratuitousArp = 64, "SEND_GRATUITOUS_ARP", false;
    TransactionStart = 65, "TRANSACTION_START", true;
    TransactionCommit = 66, "TRANSACTION_COMMIT", true;
    WipeDatabase = 67, "WIPE_DATABASE", false;
    Uptime = 69, "UPTIME", false;
    StartRecovery = 70, "START_RECOVERY", false;
    EndRecovery = 71, "END_RECOVERY", false;
    ReloadNodesFile = 72, "RELOAD_NODES_FILE", false;
    TryDeleteRecords = 74, "TRY_DELETE_RECORDS", false;
    EnableMonitor = 75, "ENABLE_MONITOR", true;
    DisableMonitor = 76, "DISABLE_MONITOR", true;
    AddPublicIp = 77, "ADD_PUBLIC_IP", false;
    DelPublicIp = 78, "DEL_PUBLIC_IP", false;
    RunEventscripts = 79, "RUN_EVENTSCRIPTS", true;
    GetCapabilities = 80, "GET_CAPABILITIES", false;
    StartPersistentUpdate = 81, "START_PERSISTENT_UPDATE", true;
    CancelPersistentUpdate = 82, "CANCEL_PERSISTENT_UPDATE", true;
    Trans2Commit = 83, "TRANS2_COMMIT", true;
    Trans2Finished = 84, "TRANS2_FINISHED", true;
    Trans2Error = 85, "TRANS2_ERROR", true;
    Trans2CommitRetry = 86, "TRANS2_COMMIT_RETRY", true;
    RecdPing = 87, "RECD_PING", false;
    ReleaseIp = 88, "RELEASE_IP", false;
    TakeoverIp = 89, "TAKEOVER_IP", false;
    GetPublicIps = 90, "GET_PUBLIC_IPS", false;
    GetNodeMap = 91, "GET_NODEMAP", false;
    GetEventScriptStatus = 96, "GET_EVENT_SCRIPT_STATUS", true;
    TraverseKill = 97, "TRAVERSE_KILL", false;
    RecdReclockLatency = 98, "RECD_RECLOCK_LATENCY", false;
    GetReclockFile = 99, "GET_RECLOCK_FILE", false;
    SetReclockFile = 100, "SET_RECLOCK_FILE", true;
    StopNode = 101, "STOP_NODE", false;
    ContinueNode = 102, "CONTINUE_NODE", false;
    SetNatgwState = 103, "SET_NATGWSTATE", true;
    SetLmasterRole = 104, "SET_LMASTERROLE", false;
    SetRecmasterRole = 105, "SET_RECMASTERROLE", false;
    EnableScript = 107, "ENABLE_SCRIPT", true;
    DisableScript = 108, "DISABLE_SCRIPT", true;
    SetBanState = 109, "SET_BAN_STATE", false;
    GetBanState = 110, "GET_BAN_STATE", false;
    SetDbPriority = 111, "SET_DB_PRIORITY", true;
    GetDbPriority = 112, "GET_DB_PRIORITY", true;
    TransactionCancel = 113, "TRANSACTION_CANCEL", true;
    RegisterNotify = 114, "REGISTER_NOTIFY", false;
    DeregisterNotify = 115, "DEREGISTER_NOTIFY", false;
    Trans2Active = 116, "TRANS2_ACTIVE", true;
    GetLog = 117, "GET_LOG", true;
    ClearLog = 118, "CLEAR_LOG", true;
    Trans3Commit = 119, "TRANS3_COMMIT", false;
    GetDbSeqnum = 120, "GET_DB_SEQNUM", false;
    DbSetHealthy = 121, "DB_SET_HEALTHY", false;
    DbGetHealth = 122, "DB_GET_HEALTH", false;
    GetPublicIpInfo = 123, "GET_PUBLIC_IP_INFO", false;
    GetIfaces = 124, "GET_IFACES", false;
    SetIfaceLinkState = 125, "SET_IFACE_LINK_STATE", false;
    TcpAddDelayedUpdate = 126, "TCP_ADD_DELAYED_UPDATE", false;
    GetStatHistory = 127, "GET_STAT_HISTORY", false;
    ScheduleForDeletion = 128, "SCHEDULE_FOR_DELETION", false;
    SetDbReadonly = 129, "SET_DB_READONLY", false;
    CheckSrvids = 130, "CHECK_SRVIDS", true;
    TraverseStartExt = 131, "TRAVERSE_START_EXT", false;
    GetDbStatistics = 132, "GET_DB_STATISTICS", false;
    SetDbSticky = 133, "SET_DB_STICKY", false;
    ReloadPublicIps = 134, "RELOAD_PUBLIC_IPS", false;
    TraverseAllExt = 135, "TRAVERSE_ALL_EXT", false;
    ReceiveRecords = 136, "RECEIVE_RECORDS", true;
    IpReallocated = 137, "IPREALLOCATED", false;
    GetRunState = 138, "GET_RUNSTATE", false;
    DbDetach = 139, "DB_DETACH", false;
    GetNodesFile = 140, "GET_NODES_FILE", false;
    DbFreeze = 141, "DB_FREEZE", false;
    DbThaw = 142, "DB_THAW", false;
    DbTransactionStart = 143, "DB_TRANSACTION_START", false;
    DbTransactionCommit = 144, "DB_TRANSACTION_COMMIT", false;
    DbTransactionCancel = 145, "DB_TRANSACTION_CANCEL", false;
    DbPull = 146, "DB_PULL", false;
    DbPushStart = 147, "DB_PUSH_START", false;
    DbPushConfirm = 148, "DB_PUSH_CONFIRM", false;
    DbOpenFlags = 149, "DB_OPEN_FLAGS", false;
    DbAttachReplicated = 150, "DB_ATTACH_REPLICATED", false;
    CheckPidSrvid = 151, "CHECK_PID_SRVID", false;
    TunnelRegister = 152, "TUNNEL_REGISTER", false;
    TunnelDeregister = 153, "TUNNEL_DEREGISTER", false;
    VacuumFetch = 154, "VACUUM_FETCH", false;
    DbVacuum = 155, "DB_VACUUM", false;
    EchoData = 156, "ECHO_DATA", false;
    DisableNode = 157, "DISABLE_NODE", false;
    EnableNode = 158, "ENABLE_NODE", false;
}

impl From<u32> for ControlOpcode {
    fn from(n: u32) -> ControlOpcode {
        ControlOpcode::from_u32(n)
    }
}

impl From<ControlOpcode> for u32 {
    fn from(op: ControlOpcode) -> u32 {
        op.to_u32()
    }
}

impl std::fmt::Display for ControlOpcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.to_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in 0..200u32 {
            assert_eq!(ControlOpcode::from_u32(n).to_u32(), n);
            assert_eq!(Operation::from_u32(n).to_u32(), n);
        }
        assert_eq!(ControlOpcode::ALL.len(), 145);
        assert_eq!(ControlOpcode::from_u32(2), ControlOpcode::Unknown(2));
        assert_eq!(ControlOpcode::from_u32(155), ControlOpcode::DbVacuum);
        assert_eq!(ControlOpcode::DbTransactionCancel.to_u32(), 145);
        assert_eq!(ControlOpcode::GetDbSeqnum.name(), "GET_DB_SEQNUM");
        assert!(ControlOpcode::PullDb.is_obsolete());
        assert!(!ControlOpcode::DbPull.is_obsolete());
        assert_eq!(Operation::from_u32(6), Operation::Unknown(6));
    }
}
