//! Controls: a registry from opcode to handler, filled by the concern
//! modules below.  A handler gets the daemon and the decoded request and
//! returns an `Outcome`; it queues anything else it does (messages, timers,
//! database work) as actions or tracked requests.
//!
//! A new control goes into the module of its concern: write the handler,
//! add it in that module's `register`, and nothing else changes.

use crate::daemon::{Daemon, ReplyTo};
use crate::log_err;
use crate::transport::{ClientId, Origin};
use ctdb_protocol::packet::ReqControl;
use ctdb_protocol::{ControlOpcode, DecodeError, Header, Layout};
use std::collections::HashMap;

/// Attaches in a cluster: announced to the other nodes, held back during
/// recovery.
pub mod cluster_attach;
/// Database catalogue, attach, seqnums, flags.
pub mod databases;
/// MODIFY_FLAGS and the flags of this node (ban, stop, disable).
pub mod flags;
/// Who this node is and how it is.
pub mod node_state;
/// GET_NODES_FILE and RELOAD_NODES_FILE.
pub mod nodes_file;
/// TRANS3_COMMIT and UPDATE_RECORD across the nodes.
pub mod persistent;
/// Public addresses and interfaces.
pub mod public_ips;
/// DB_PULL: a frozen database's records streamed to a srvid on a node.
pub mod pull;
/// The node's recovery mode, vnn map and recovery start/end.
pub mod recmode;
/// Freeze, thaw, recovery transactions, DB_PUSH.
pub mod recovery;
#[cfg(test)]
mod recovery_tests;
/// Srvid and notification registrations.
pub mod srvids;
/// Statistics.
pub mod statistics;
/// Cluster-wide traverses.
pub mod traverse;
/// Tunables.
pub mod tunables;
/// Vacuuming between nodes: VACUUM_FETCH and TRY_DELETE_RECORDS.
pub mod vacuum_nodes;
/// Vacuum runs and the delete queue.
pub mod vacuuming;

/// A REQ_CONTROL, decoded, with where it came from.
pub struct Request {
    /// Where it came from; the reply goes back there.
    pub origin: Origin,
    /// Its header, srcnode set by origin.
    pub header: Header,
    /// Its body (the payload still raw).
    pub control: ReqControl,
}

impl Request {
    /// The control's payload.
    pub fn data(&self) -> &[u8] {
        &self.control.data
    }

    /// Where the reply goes.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            origin: self.origin,
            reqid: self.header.reqid,
            noreply: self.noreply(),
        }
    }

    /// The sender asked for no reply (CTRL_FLAG_NOREPLY).
    pub fn noreply(&self) -> bool {
        self.control.noreply()
    }

    /// The payload as exactly one `T` (the controls whose size Samba
    /// checks).
    pub fn decode<T: Layout>(&self) -> Result<T, DecodeError> {
        T::decode(&self.control.data)
    }

    /// The opcode.
    pub fn opcode(&self) -> ControlOpcode {
        self.control.opcode
    }

    /// The local client that sent it, if a local client did.
    pub fn client(&self) -> Option<ClientId> {
        self.origin.client()
    }
}

/// What a control handler decided.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Reply now with (status, data, error message).
    Reply(i32, Vec<u8>, Option<String>),
    /// The reply is sent later (when tracked work finishes).
    Later,
    /// The daemon is going down; no reply.
    Exit,
}

impl Outcome {
    /// Status 0 with `data`.
    pub fn ok(data: Vec<u8>) -> Outcome {
        Outcome::Reply(0, data, None)
    }

    /// A bare status, no data.
    pub fn status(s: i32) -> Outcome {
        Outcome::Reply(s, Vec::new(), None)
    }

    /// Status -1 with an error message.
    pub fn fail(msg: &str) -> Outcome {
        Outcome::Reply(-1, Vec::new(), Some(msg.to_string()))
    }

    /// A control whose data has the wrong size (Samba's
    /// CHECK_CONTROL_DATA_SIZE): logged, status -1.
    pub fn bad_size(name: &str, got: usize) -> Outcome {
        log_err!("Invalid data in {} control ({} bytes)", name, got);
        Outcome::status(-1)
    }

    /// Status 0 with one typed value.
    pub fn value<T: Layout>(v: &T) -> Outcome {
        Outcome::ok(v.to_bytes())
    }
}

/// A name at the front of a payload: the bytes up to the first NUL (or the
/// end, when a sender left the NUL out), if they are UTF-8.
pub fn name_in(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    std::str::from_utf8(&data[..end]).ok().map(str::to_string)
}

/// A control handler.
pub type Handler = fn(&mut Daemon, &Request) -> Outcome;

/// Opcode → handler.
pub struct Registry {
    handlers: HashMap<ControlOpcode, Handler>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            handlers: HashMap::new(),
        }
    }

    /// The registry with every concern's controls.
    pub fn with_every_concern() -> Registry {
        let mut r = Registry::new();
        node_state::register(&mut r);
        nodes_file::register(&mut r);
        srvids::register(&mut r);
        tunables::register(&mut r);
        statistics::register(&mut r);
        public_ips::register(&mut r);
        databases::register(&mut r);
        persistent::register(&mut r);
        traverse::register(&mut r);
        recovery::register(&mut r);
        recmode::register(&mut r);
        pull::register(&mut r);
        flags::register(&mut r);
        vacuuming::register(&mut r);
        crate::announce::register(&mut r);
        r
    }

    /// Registers the handler of `opcode`; an opcode has exactly one handler.
    pub fn add(&mut self, opcode: ControlOpcode, h: Handler) {
        let old = self.handlers.insert(opcode, h);
        assert!(old.is_none(), "control {opcode} registered twice");
    }

    /// The handler of `opcode`, if one is registered.
    pub fn get(&self, opcode: ControlOpcode) -> Option<Handler> {
        self.handlers.get(&opcode).copied()
    }

    /// The registered opcode numbers, sorted.
    #[cfg(test)]
    pub fn opcodes(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.handlers.keys().map(|o| o.to_u32()).collect();
        v.sort_unstable();
        v
    }
}

impl Daemon {
    /// Runs the handler registered for the request's opcode; an unknown
    /// control fails, as in Samba.
    pub(crate) fn control(&mut self, req: &Request) -> Outcome {
        match self.controls.get(req.control.opcode) {
            Some(h) => h(self, req),
            None => {
                let pid = req.client().map_or(-1, |c| self.transport.pid(c));
                log_err!(
                    "Unknown control {} from client pid:{}",
                    req.control.opcode.to_u32(),
                    pid
                );
                Outcome::fail("unknown control")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_control_has_one_handler() {
        let r = Registry::with_every_concern();
        let want = [
            ControlOpcode::ProcessExists,
            ControlOpcode::Statistics,
            ControlOpcode::Ping,
            ControlOpcode::GetDbPath,
            ControlOpcode::GetVnnMap,
            ControlOpcode::GetDebug,
            ControlOpcode::SetDebug,
            ControlOpcode::GetDbMap,
            ControlOpcode::GetRecmode,
            ControlOpcode::StatisticsReset,
            ControlOpcode::DbAttach,
            ControlOpcode::TraverseStart,
            ControlOpcode::TraverseAll,
            ControlOpcode::TraverseData,
            ControlOpcode::UpdateRecord,
            ControlOpcode::TraverseKill,
            ControlOpcode::TraverseAllExt,
            ControlOpcode::RegisterSrvid,
            ControlOpcode::DeregisterSrvid,
            ControlOpcode::GetDbName,
            ControlOpcode::EnableSeqnum,
            ControlOpcode::UpdateSeqnum,
            ControlOpcode::GetPid,
            ControlOpcode::GetPnn,
            ControlOpcode::Shutdown,
            ControlOpcode::TcpClient,
            ControlOpcode::SetTunable,
            ControlOpcode::GetTunable,
            ControlOpcode::ListTunables,
            ControlOpcode::GetAllTunables,
            ControlOpcode::DbAttachPersistent,
            ControlOpcode::WipeDatabase,
            ControlOpcode::Uptime,
            ControlOpcode::GetCapabilities,
            ControlOpcode::SetLmasterRole,
            ControlOpcode::SetRecmasterRole,
            ControlOpcode::GetPublicIps,
            ControlOpcode::GetNodeMap,
            ControlOpcode::RegisterNotify,
            ControlOpcode::DeregisterNotify,
            ControlOpcode::Trans3Commit,
            ControlOpcode::GetDbSeqnum,
            ControlOpcode::DbSetHealthy,
            ControlOpcode::DbGetHealth,
            ControlOpcode::GetPublicIpInfo,
            ControlOpcode::GetIfaces,
            ControlOpcode::ScheduleForDeletion,
            ControlOpcode::SetDbReadonly,
            ControlOpcode::TraverseStartExt,
            ControlOpcode::GetDbStatistics,
            ControlOpcode::SetDbSticky,
            ControlOpcode::GetRunState,
            ControlOpcode::DbDetach,
            ControlOpcode::GetNodesFile,
            ControlOpcode::ReloadNodesFile,
            ControlOpcode::VacuumFetch,
            ControlOpcode::TryDeleteRecords,
            ControlOpcode::DbFreeze,
            ControlOpcode::DbThaw,
            ControlOpcode::DbTransactionStart,
            ControlOpcode::DbTransactionCommit,
            ControlOpcode::DbTransactionCancel,
            ControlOpcode::DbPushStart,
            ControlOpcode::DbPushConfirm,
            ControlOpcode::DbOpenFlags,
            ControlOpcode::DbAttachReplicated,
            ControlOpcode::CheckPidSrvid,
            ControlOpcode::DbVacuum,
            ControlOpcode::SetRecmode,
            ControlOpcode::SetVnnMap,
            ControlOpcode::StartRecovery,
            ControlOpcode::EndRecovery,
            ControlOpcode::Freeze,
            ControlOpcode::GetReclockFile,
            ControlOpcode::RecdPing,
            ControlOpcode::RecdReclockLatency,
            ControlOpcode::DbPull,
            ControlOpcode::ModifyFlags,
            ControlOpcode::StopNode,
            ControlOpcode::ContinueNode,
            ControlOpcode::DisableNode,
            ControlOpcode::EnableNode,
            ControlOpcode::SetBanState,
            ControlOpcode::GetBanState,
            ControlOpcode::Startup,
            ControlOpcode::IpReallocated,
            ControlOpcode::SetIfaceLinkState,
            ControlOpcode::TakeoverIp,
            ControlOpcode::ReleaseIp,
            ControlOpcode::AddPublicIp,
            ControlOpcode::DelPublicIp,
            ControlOpcode::ReloadPublicIps,
            ControlOpcode::TcpAdd,
            ControlOpcode::TcpAddDelayedUpdate,
            ControlOpcode::TcpRemove,
            ControlOpcode::GetTcpTickleList,
            ControlOpcode::SetTcpTickleList,
            ControlOpcode::SendGratuitousArp,
        ];
        let mut want: Vec<u32> = want.iter().map(|o| o.to_u32()).collect();
        want.sort_unstable();
        assert_eq!(r.opcodes(), want);
        assert!(r.get(ControlOpcode::EchoData).is_none());
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_second_handler_for_an_opcode_is_refused() {
        let mut r = Registry::new();
        node_state::register(&mut r);
        node_state::register(&mut r);
    }
}
