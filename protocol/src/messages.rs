//! Payloads of the messages (CTDB_REQ_MESSAGE) sent to Samba's well-known
//! server ids: elections, leader announcements, takeover runs, node flag
//! changes and the rest.  Messages to other srvids (a traverse's records, a
//! client's own ids) keep their bytes.

use crate::error::DecodeError;
use crate::ids::{DbId, Pnn, Srvid};
use crate::ltdb::RecBuffer;
use crate::types::{NodeFlagChange, PublicIp};
use crate::wire::{Layout, Reader, Timeval, Writer};

/// `ctdb_election_message`: num_connected u32, 4 bytes padding,
/// priority_time timeval, pnn u32, node_flags u32 (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElectionMessage {
    /// Nodes the candidate is connected to.
    pub num_connected: u32,
    /// When the candidate started (earlier wins).
    pub priority_time: Timeval,
    /// The candidate.
    pub pnn: Pnn,
    /// The candidate's node flags.
    pub node_flags: u32,
}

impl Layout for ElectionMessage {
    const NAME: &'static str = "ctdb_election_message";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.num_connected).padding(4);
        self.priority_time.write(w);
        w.u32(self.pnn.0).u32(self.node_flags);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let num_connected = r.u32(Self::NAME)?;
        r.padding(4)?;
        Ok(ElectionMessage {
            num_connected,
            priority_time: Timeval::read(r)?,
            pnn: Pnn::read(r)?,
            node_flags: r.u32(Self::NAME)?,
        })
    }
}

/// `ctdb_srvid_message`: pnn u32, 4 bytes padding, srvid u64: where to send
/// the answer to a request made by message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrvidMessage {
    /// The node to answer.
    pub pnn: Pnn,
    /// The srvid to answer to (0 for no answer).
    pub srvid: Srvid,
}

impl Layout for SrvidMessage {
    const NAME: &'static str = "ctdb_srvid_message";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.pnn.0).padding(4).u64(self.srvid.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let pnn = Pnn::read(r)?;
        r.padding(4)?;
        Ok(SrvidMessage {
            pnn,
            srvid: Srvid::read(r)?,
        })
    }
}

/// `ctdb_disable_message`: pnn u32, 4 bytes padding, srvid u64, timeout
/// u32, 4 bytes padding (24 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisableMessage {
    /// The node to answer.
    pub pnn: Pnn,
    /// The srvid to answer to.
    pub srvid: Srvid,
    /// Seconds to stay disabled (0 re-enables).
    pub timeout: u32,
}

impl Layout for DisableMessage {
    const NAME: &'static str = "ctdb_disable_message";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.pnn.0)
            .padding(4)
            .u64(self.srvid.0)
            .u32(self.timeout)
            .padding(4);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let pnn = Pnn::read(r)?;
        r.padding(4)?;
        let srvid = Srvid::read(r)?;
        let timeout = r.u32(Self::NAME)?;
        r.padding(4)?;
        Ok(DisableMessage {
            pnn,
            srvid,
            timeout,
        })
    }
}

/// The payload of a message, typed by its well-known srvid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// BANNING: banning credits for a node.
    Banning(Pnn),
    /// ELECTION: a candidate's election data.
    Election(ElectionMessage),
    /// LEADER: the leader announces its pnn.
    Leader(Pnn),
    /// RECONFIGURE: the cluster was reconfigured (no payload).
    Reconfigure,
    /// RELEASE_IP: an address was released (the address as text).
    ReleaseIp(String),
    /// TAKE_IP: an address was taken over (the address as text).
    TakeIp(String),
    /// SET_NODE_FLAGS: a node's flags changed.
    SetNodeFlags(NodeFlagChange),
    /// RECD_UPDATE_IP: an address's assignment changed.
    RecdUpdateIp(PublicIp),
    /// VACUUM_FETCH: records for the lmaster to migrate.
    VacuumFetch(RecBuffer),
    /// DETACH_DATABASE: a database to detach.
    DetachDatabase(DbId),
    /// MEM_DUMP: dump memory and answer to the srvid.
    MemDump(SrvidMessage),
    /// GETLOG (no payload).
    GetLog,
    /// CLEARLOG (no payload).
    ClearLog,
    /// PUSH_NODE_FLAGS: flags to push to every node.
    PushNodeFlags(NodeFlagChange),
    /// RELOAD_NODES: reload the nodes file (no payload).
    ReloadNodes,
    /// TAKEOVER_RUN: run a takeover run and answer to the srvid.
    TakeoverRun(SrvidMessage),
    /// REBALANCE_NODE: move addresses onto a node.
    RebalanceNode(Pnn),
    /// DISABLE_TAKEOVER_RUNS.
    DisableTakeoverRuns(DisableMessage),
    /// DISABLE_RECOVERIES.
    DisableRecoveries(DisableMessage),
    /// DISABLE_IP_CHECK: seconds.
    DisableIpCheck(u32),
    /// Any other srvid: the bytes as sent.
    Other(Vec<u8>),
}

fn empty(data: &[u8], what: &'static str) -> Result<(), DecodeError> {
    match data.len() {
        0 => Ok(()),
        count => Err(DecodeError::TrailingBytes { what, count }),
    }
}

impl Message {
    /// Decodes the payload of a message to `srvid`; a srvid without a
    /// typed layout gives `Other` and never fails.
    pub fn decode(srvid: Srvid, data: &[u8]) -> Result<Message, DecodeError> {
        Ok(match srvid {
            Srvid::BANNING => Message::Banning(Pnn::decode(data)?),
            Srvid::ELECTION => Message::Election(ElectionMessage::decode(data)?),
            Srvid::LEADER => Message::Leader(Pnn::decode(data)?),
            Srvid::RECONFIGURE => {
                empty(data, "reconfigure message").map(|_| Message::Reconfigure)?
            }
            Srvid::RELEASE_IP => Message::ReleaseIp(String::decode(data)?),
            Srvid::TAKE_IP => Message::TakeIp(String::decode(data)?),
            Srvid::SET_NODE_FLAGS => Message::SetNodeFlags(NodeFlagChange::decode(data)?),
            Srvid::RECD_UPDATE_IP => Message::RecdUpdateIp(PublicIp::decode(data)?),
            Srvid::VACUUM_FETCH => Message::VacuumFetch(RecBuffer::decode(data)?),
            Srvid::DETACH_DATABASE => Message::DetachDatabase(DbId::decode(data)?),
            Srvid::MEM_DUMP => Message::MemDump(SrvidMessage::decode(data)?),
            Srvid::GETLOG => empty(data, "getlog message").map(|_| Message::GetLog)?,
            Srvid::CLEARLOG => empty(data, "clearlog message").map(|_| Message::ClearLog)?,
            Srvid::PUSH_NODE_FLAGS => Message::PushNodeFlags(NodeFlagChange::decode(data)?),
            Srvid::RELOAD_NODES => {
                empty(data, "reload nodes message").map(|_| Message::ReloadNodes)?
            }
            Srvid::TAKEOVER_RUN => Message::TakeoverRun(SrvidMessage::decode(data)?),
            Srvid::REBALANCE_NODE => Message::RebalanceNode(Pnn::decode(data)?),
            Srvid::DISABLE_TAKEOVER_RUNS => {
                Message::DisableTakeoverRuns(DisableMessage::decode(data)?)
            }
            Srvid::DISABLE_RECOVERIES => Message::DisableRecoveries(DisableMessage::decode(data)?),
            Srvid::DISABLE_IP_CHECK => Message::DisableIpCheck(u32::decode(data)?),
            _ => Message::Other(data.to_vec()),
        })
    }

    /// Appends the payload bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Banning(p) | Message::Leader(p) | Message::RebalanceNode(p) => p.encode(out),
            Message::Election(e) => e.encode(out),
            Message::Reconfigure | Message::GetLog | Message::ClearLog | Message::ReloadNodes => {}
            Message::ReleaseIp(s) | Message::TakeIp(s) => s.encode(out),
            Message::SetNodeFlags(f) | Message::PushNodeFlags(f) => f.encode(out),
            Message::RecdUpdateIp(ip) => ip.encode(out),
            Message::VacuumFetch(b) => b.encode(out),
            Message::DetachDatabase(id) => id.encode(out),
            Message::MemDump(m) | Message::TakeoverRun(m) => m.encode(out),
            Message::DisableTakeoverRuns(d) | Message::DisableRecoveries(d) => d.encode(out),
            Message::DisableIpCheck(t) => t.encode(out),
            Message::Other(data) => out.extend_from_slice(data),
        }
    }

    /// The payload bytes in a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The well-known srvid this payload is sent to (`None` for `Other`).
    pub fn srvid(&self) -> Option<Srvid> {
        Some(match self {
            Message::Banning(_) => Srvid::BANNING,
            Message::Election(_) => Srvid::ELECTION,
            Message::Leader(_) => Srvid::LEADER,
            Message::Reconfigure => Srvid::RECONFIGURE,
            Message::ReleaseIp(_) => Srvid::RELEASE_IP,
            Message::TakeIp(_) => Srvid::TAKE_IP,
            Message::SetNodeFlags(_) => Srvid::SET_NODE_FLAGS,
            Message::RecdUpdateIp(_) => Srvid::RECD_UPDATE_IP,
            Message::VacuumFetch(_) => Srvid::VACUUM_FETCH,
            Message::DetachDatabase(_) => Srvid::DETACH_DATABASE,
            Message::MemDump(_) => Srvid::MEM_DUMP,
            Message::GetLog => Srvid::GETLOG,
            Message::ClearLog => Srvid::CLEARLOG,
            Message::PushNodeFlags(_) => Srvid::PUSH_NODE_FLAGS,
            Message::ReloadNodes => Srvid::RELOAD_NODES,
            Message::TakeoverRun(_) => Srvid::TAKEOVER_RUN,
            Message::RebalanceNode(_) => Srvid::REBALANCE_NODE,
            Message::DisableTakeoverRuns(_) => Srvid::DISABLE_TAKEOVER_RUNS,
            Message::DisableRecoveries(_) => Srvid::DISABLE_RECOVERIES,
            Message::DisableIpCheck(_) => Srvid::DISABLE_IP_CHECK,
            Message::Other(_) => return None,
        })
    }
}
