//! Typed results of the getter controls, read from a finished request.

use ctdb_protocol::statistics::DbStatistics;
use ctdb_protocol::types::DbIdPadded;
use ctdb_protocol::types::{IfaceList, NodeMap, PublicIpList, VnnMap};
use ctdb_protocol::{ControlOpcode, ControlReply, ControlRequest, DbId, Pnn};

use crate::connection::Connection;
use crate::error::ClientError;
use crate::request::{Outcome, RequestId};

/// The getters a connection can send; each has a typed reader below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Getter {
    /// GET_PNN: the node's pnn.
    Pnn,
    /// GET_RECMODE: 0 normal, 1 recovery.
    Recmode,
    /// GET_CAPABILITIES.
    Capabilities,
    /// GET_NODEMAP.
    NodeMap,
    /// GETVNNMAP.
    VnnMap,
    /// GET_PUBLIC_IPS.
    PublicIps,
    /// GET_IFACES.
    Ifaces,
    /// GET_DB_SEQNUM of a database.
    DbSeqnum(DbId),
    /// GET_DB_STATISTICS of a database.
    DbStatistics(DbId),
}

impl Getter {
    /// The control request that asks for it.
    pub fn request(self) -> ControlRequest {
        match self {
            Getter::Pnn => ControlRequest::GetPnn,
            Getter::Recmode => ControlRequest::GetRecmode,
            Getter::Capabilities => ControlRequest::GetCapabilities,
            Getter::NodeMap => ControlRequest::GetNodeMap,
            Getter::VnnMap => ControlRequest::GetVnnMap,
            Getter::PublicIps => ControlRequest::GetPublicIps,
            Getter::Ifaces => ControlRequest::GetIfaces,
            Getter::DbSeqnum(db_id) => ControlRequest::GetDbSeqnum(DbIdPadded { db_id }),
            Getter::DbStatistics(db_id) => ControlRequest::GetDbStatistics(db_id),
        }
    }
}

impl Connection {
    /// Sends a getter control to node `dest`.
    pub fn get(&mut self, dest: Pnn, getter: Getter) -> RequestId {
        self.control(dest, getter.request())
    }

    /// The reply of a finished control request, with its opcode.
    fn control_reply(
        &self,
        id: RequestId,
    ) -> Result<(ControlOpcode, &ctdb_protocol::packet::ReplyControl), ClientError> {
        match self.result(id)? {
            Outcome::Control(opcode, reply) => Ok((*opcode, reply)),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// The status of a control answered by its status alone (GET_PNN,
    /// GET_RECMODE, REGISTER_SRVID...); a negative status is a failure.
    pub fn reply_status(&self, id: RequestId) -> Result<u32, ClientError> {
        let (opcode, reply) = self.control_reply(id)?;
        if reply.status < 0 {
            return Err(ClientError::ControlFailed {
                opcode,
                status: reply.status,
                message: reply.errmsg.clone(),
            });
        }
        Ok(reply.status as u32)
    }

    /// The typed data of a control that succeeded (status 0).
    pub fn reply_data(&self, id: RequestId) -> Result<ControlReply, ClientError> {
        let (opcode, reply) = self.control_reply(id)?;
        let reply = Connection::control_ok(opcode, reply.clone())?;
        Ok(reply.reply(opcode)?)
    }

    /// GET_PNN's answer.
    pub fn pnn_of(&self, id: RequestId) -> Result<Pnn, ClientError> {
        self.expect_opcode(id, ControlOpcode::GetPnn)?;
        self.reply_status(id).map(Pnn)
    }

    /// GET_RECMODE's answer.
    pub fn recmode_of(&self, id: RequestId) -> Result<u32, ClientError> {
        self.expect_opcode(id, ControlOpcode::GetRecmode)?;
        self.reply_status(id)
    }

    /// GET_CAPABILITIES's answer.
    pub fn capabilities_of(&self, id: RequestId) -> Result<u32, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetCapabilities(c) => Ok(c),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GET_NODEMAP's answer.
    pub fn nodemap_of(&self, id: RequestId) -> Result<NodeMap, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetNodeMap(m) => Ok(m),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GETVNNMAP's answer.
    pub fn vnnmap_of(&self, id: RequestId) -> Result<VnnMap, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetVnnMap(m) => Ok(m),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GET_PUBLIC_IPS's answer.
    pub fn public_ips_of(&self, id: RequestId) -> Result<PublicIpList, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetPublicIps(m) => Ok(m),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GET_IFACES's answer.
    pub fn ifaces_of(&self, id: RequestId) -> Result<IfaceList, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetIfaces(m) => Ok(m),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GET_DB_SEQNUM's answer.
    pub fn db_seqnum_of(&self, id: RequestId) -> Result<u64, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetDbSeqnum(n) => Ok(n),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// GET_DB_STATISTICS's answer.
    pub fn db_statistics_of(&self, id: RequestId) -> Result<DbStatistics, ClientError> {
        match self.reply_data(id)? {
            ControlReply::GetDbStatistics(s) => Ok(s),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// The leader a leader request found.
    pub fn leader_of(&self, id: RequestId) -> Result<Pnn, ClientError> {
        match self.result(id)? {
            Outcome::Leader(p) => Ok(*p),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// Fails unless request `id` is a control with `opcode`.
    fn expect_opcode(&self, id: RequestId, opcode: ControlOpcode) -> Result<(), ClientError> {
        match self.control_reply(id)? {
            (o, _) if o == opcode => Ok(()),
            _ => Err(ClientError::WrongKind),
        }
    }
}
