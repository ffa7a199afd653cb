//! The 32-byte `ctdb_req_header` in front of every packet.

use crate::error::DecodeError;
use crate::ids::{Generation, Pnn};
use crate::opcode::Operation;
use crate::wire::{Layout, Reader, Writer};

/// "CTDB" read as a host-order u32.
pub const CTDB_MAGIC: u32 = 0x4354_4442;
/// The only protocol version.
pub const CTDB_PROTOCOL: u32 = 1;
/// Size of the header.
pub const HEADER_LEN: usize = 32;
/// Packets are padded to a multiple of this; the length field counts the
/// padding.
pub const PACKET_ALIGN: usize = 8;
/// Largest packet accepted; a longer length field is treated as garbage.
pub const MAX_PACKET: usize = 64 * 1024 * 1024;

/// A packet header.  The magic and version are implied: encoding writes
/// them, decoding checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Whole packet length including the header and the alignment padding.
    pub length: u32,
    /// The sender's cluster generation.
    pub generation: Generation,
    /// What the body is.
    pub operation: Operation,
    /// The node (or special destination) the packet is for.
    pub destnode: Pnn,
    /// The node that sent it.
    pub srcnode: Pnn,
    /// The request id that pairs a reply with its request.
    pub reqid: u32,
}

impl Header {
    /// A header with length 0 (filled in when the packet is encoded).
    pub fn new(operation: Operation, destnode: Pnn, srcnode: Pnn, reqid: u32) -> Header {
        Header {
            length: 0,
            generation: Generation(0),
            operation,
            destnode,
            srcnode,
            reqid,
        }
    }
}

impl Layout for Header {
    const NAME: &'static str = "ctdb_req_header";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.length)
            .u32(CTDB_MAGIC)
            .u32(CTDB_PROTOCOL)
            .u32(self.generation.0)
            .u32(self.operation.to_u32())
            .u32(self.destnode.0)
            .u32(self.srcnode.0)
            .u32(self.reqid);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let length = r.u32(Self::NAME)?;
        let magic = r.u32(Self::NAME)?;
        if magic != CTDB_MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let version = r.u32(Self::NAME)?;
        if version != CTDB_PROTOCOL {
            return Err(DecodeError::BadVersion(version));
        }
        Ok(Header {
            length,
            generation: Generation(r.u32(Self::NAME)?),
            operation: Operation::from_u32(r.u32(Self::NAME)?),
            destnode: Pnn(r.u32(Self::NAME)?),
            srcnode: Pnn(r.u32(Self::NAME)?),
            reqid: r.u32(Self::NAME)?,
        })
    }
}

/// Checks a packet length word: at least a header, at most [`MAX_PACKET`].
pub fn check_length(len: u32) -> Result<usize, DecodeError> {
    match usize::try_from(len) {
        Ok(l) if (HEADER_LEN..=MAX_PACKET).contains(&l) => Ok(l),
        _ => Err(DecodeError::BadLength(len)),
    }
}

/// `n` rounded up to the packet alignment.
pub fn aligned(n: usize) -> usize {
    n.div_ceil(PACKET_ALIGN) * PACKET_ALIGN
}
