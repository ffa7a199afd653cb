//! Whole packets: finding complete packets in a stream buffer (no I/O here),
//! and the typed bodies of every packet operation.
//!
//! A packet is a [`Header`], a body laid out by its operation, and zero
//! bytes up to the next multiple of [`PACKET_ALIGN`]; the header's length
//! counts the padding.

use crate::error::DecodeError;
use crate::header::{aligned, check_length, Header, CTDB_MAGIC, CTDB_PROTOCOL, HEADER_LEN};
use crate::ids::{DbId, Pnn, Srvid};
use crate::opcode::{ControlOpcode, Operation};
use crate::wire::{Layout, Reader, Writer};

pub use crate::header::PACKET_ALIGN;

/// Most bytes a decoded packet may carry after its body.  Samba's daemon
/// sizes some packets by their C struct, whose 1-byte `data[1]` tail and
/// struct alignment add up to 8 bytes before the packet alignment adds its
/// own (a REPLY_CALL without data is 48 bytes, not 40).
pub const MAX_TRAILING_PADDING: usize = 2 * PACKET_ALIGN - 1;

/// Call flag: migrate the record to the caller at once.
pub const CALL_FLAG_IMMEDIATE_MIGRATION: u32 = 0x0000_0001;
/// Call flag: the migration is the vacuumer's.
pub const CALL_FLAG_VACUUM_MIGRATION: u32 = 0x0000_0002;
/// Call flag: a read-only delegation is enough.
pub const CALL_FLAG_WANT_READONLY: u32 = 0x0000_0004;
/// Call id of the call that does nothing (used to migrate a record).
pub const CALL_ID_NULL: u32 = 0xFF00_0001;
/// Call id of a fetch.
pub const CALL_ID_FETCH: u32 = 0xFF00_0002;
/// Call id of a fetch that returns the record header too.
pub const CALL_ID_FETCH_WITH_HEADER: u32 = 0xFF00_0003;

/// Control flag: the sender wants no reply.
pub const CONTROL_FLAG_NOREPLY: u32 = 0x0000_0001;
/// The bits of the control flags each opcode may use for itself.
pub const CONTROL_FLAG_OPCODE_SPECIFIC: u32 = 0xFFFF_0000;
/// GET_PUBLIC_IPS flag: only the addresses this node could host.
pub const CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE: u32 = 0x0001_0000;
/// DB_ATTACH flag: the attach comes from a recovery.
pub const CONTROL_FLAG_ATTACH_RECOVERY: u32 = 0x0002_0000;

/// The length of the first complete packet in `buf`, `None` while more
/// bytes are needed, or the error that makes the stream unusable (a length
/// outside [`HEADER_LEN`]..=[`crate::header::MAX_PACKET`], a wrong magic or
/// version).  The packet's body is not looked at.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let word = |at: usize| {
        buf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(len) = word(0) else {
        return Ok(None);
    };
    let len = check_length(len)?;
    if let Some(magic) = word(4) {
        if magic != CTDB_MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
    }
    if let Some(version) = word(8) {
        if version != CTDB_PROTOCOL {
            return Err(DecodeError::BadVersion(version));
        }
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Spare input space a [`Framer`] keeps once it has handed out every whole
/// packet; more than this (left by a burst) is given back.
pub const FRAMER_KEPT_CAPACITY: usize = 256 << 10;

/// The most a [`Framer`] asks one read for while no large packet is
/// pending; longer packets are read into room of their own size.
const READ_CHUNK: usize = 64 << 10;
/// What a [`Framer`] asks its first read for; the room doubles after each
/// read that filled it, up to [`READ_CHUNK`] (an idle connection keeps
/// little memory).
const FIRST_READ: usize = 1 << 10;

/// Splits complete packets off the front of a stream buffer.  Every packet
/// it returns is an allocation of its own, about the size of that packet,
/// so packets kept after the read (queued records, pending messages) never
/// pin the stream buffer's capacity. A packet longer than a read chunk is
/// read by [`Framer::read_from`] into a buffer of its own size and handed
/// out without a copy; others are copied out once.
#[derive(Debug, Default)]
pub struct Framer {
    /// Received bytes in `start..end`; zeroed room after `end`.
    buf: Vec<u8>,
    /// Where the first byte not yet handed out is in `buf`.
    start: usize,
    /// Where the received bytes end in `buf`.
    end: usize,
    /// What the next read asks for (0 until the first read).
    room: usize,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Moves an incomplete packet left over from the last `next_packet`
    /// calls to the front.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
    }

    /// Reads once from `r` into the framer, as `Read::read` does (0 at the
    /// end of the stream). While a packet longer than a read chunk is
    /// incomplete at the front, the read asks for exactly its missing bytes
    /// into room sized for that packet.
    pub fn read_from(&mut self, r: &mut impl std::io::Read) -> std::io::Result<usize> {
        self.compact();
        let pending = self.buf[..self.end]
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .filter(|&len| len > READ_CHUNK && len > self.end && len <= crate::header::MAX_PACKET);
        let want = match pending {
            Some(len) => len - self.end,
            None => self.room.max(FIRST_READ),
        };
        if self.buf.len() < self.end + want {
            self.buf.reserve_exact(self.end + want - self.buf.len());
            self.buf.resize(self.end + want, 0);
        }
        let n = r.read(&mut self.buf[self.end..self.end + want])?;
        self.end += n;
        if pending.is_none() && n == want {
            self.room = (want * 2).min(READ_CHUNK);
        }
        Ok(n)
    }

    /// Bytes held that do not form a complete packet yet.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes of input space allocated (what `buffered` holds and spare room).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete packet (header included); `None` while
    /// incomplete.  After an error the stream is unusable and the framer
    /// should be dropped with its connection.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some(len) = frame_length(&self.buf[self.start..self.end])? else {
            return Ok(None);
        };
        if self.start == 0 && len == self.end && len > READ_CHUNK {
            // A large packet that fills the buffer: hand the buffer over.
            self.buf.truncate(len);
            self.end = 0;
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        let end = self.start + len;
        let packet = self.buf[self.start..end].to_vec();
        self.start = end;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.capacity() > FRAMER_KEPT_CAPACITY {
                self.buf = Vec::new();
            }
        }
        Ok(Some(packet))
    }
}

/// CTDB_REQ_CALL: a record call on a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReqCall {
    /// `CALL_FLAG_*` bits.
    pub flags: u32,
    /// The database.
    pub db_id: DbId,
    /// `CALL_ID_*` or a registered call number.
    pub callid: u32,
    /// Times the call was forwarded.
    pub hopcount: u32,
    /// The record key.
    pub key: Vec<u8>,
    /// The call's argument.
    pub calldata: Vec<u8>,
}

impl Layout for ReqCall {
    const NAME: &'static str = "req_call";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.flags)
            .u32(self.db_id.0)
            .u32(self.callid)
            .u32(self.hopcount)
            .len_u32(self.key.len())
            .len_u32(self.calldata.len())
            .bytes(&self.key)
            .bytes(&self.calldata);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u32(Self::NAME)?;
        let db_id = DbId::read(r)?;
        let callid = r.u32(Self::NAME)?;
        let hopcount = r.u32(Self::NAME)?;
        let keylen = r.u32("req_call key length")?;
        let datalen = r.u32("req_call data length")?;
        Ok(ReqCall {
            flags,
            db_id,
            callid,
            hopcount,
            key: r.blob(keylen, "req_call key")?,
            calldata: r.blob(datalen, "req_call data")?,
        })
    }
}

/// CTDB_REPLY_CALL: the status and reply data of a record call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyCall {
    /// 0 on success.
    pub status: i32,
    /// What the call returned (for a fetch: the record).
    pub data: Vec<u8>,
}

impl Layout for ReplyCall {
    const NAME: &'static str = "reply_call";
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.status).counted_blob(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReplyCall {
            status: r.i32(Self::NAME)?,
            data: r.counted_blob("reply_call data")?,
        })
    }
}

/// CTDB_REPLY_ERROR: a call failed on the node it reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyError {
    /// The error status.
    pub status: i32,
    /// The error message bytes as sent.
    pub msg: Vec<u8>,
}

impl Layout for ReplyError {
    const NAME: &'static str = "reply_error";
    fn write(&self, w: &mut Writer<'_>) {
        w.i32(self.status).counted_blob(&self.msg);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReplyError {
            status: r.i32(Self::NAME)?,
            msg: r.counted_blob("reply_error message")?,
        })
    }
}

/// Reads the record flags Samba's daemon appends after the key and data of
/// a dmaster packet: present when 4 more bytes follow, as Samba's receiver
/// decides (so a packet without them but with 4 or more bytes of alignment
/// padding reads as flags 0, as it does for Samba), absent otherwise.
fn trailing_record_flags(r: &mut Reader<'_>) -> Result<Option<u32>, DecodeError> {
    if r.remaining() >= 4 {
        r.u32("record flags").map(Some)
    } else {
        Ok(None)
    }
}

/// Writes what both dmaster packets carry after their fixed fields: the key
/// and data lengths, the key, the data, then the record flags when there are
/// (read back by each packet, the flags with [`trailing_record_flags`]).
fn write_dmaster_record(w: &mut Writer<'_>, key: &[u8], data: &[u8], record_flags: Option<u32>) {
    w.len_u32(key.len())
        .len_u32(data.len())
        .bytes(key)
        .bytes(data);
    if let Some(f) = record_flags {
        w.u32(f);
    }
}

/// CTDB_REQ_DMASTER: asks the lmaster to make `dmaster` the record's
/// dmaster, carrying the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReqDmaster {
    /// The database.
    pub db_id: DbId,
    /// The record sequence number.
    pub rsn: u64,
    /// The new dmaster.
    pub dmaster: Pnn,
    /// The record key.
    pub key: Vec<u8>,
    /// The record data.
    pub data: Vec<u8>,
    /// The record's header flags, which Samba 4.17 appends after the data
    /// (`None`: not sent).
    pub record_flags: Option<u32>,
}

impl Layout for ReqDmaster {
    const NAME: &'static str = "req_dmaster";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0)
            .padding(4)
            .u64(self.rsn)
            .u32(self.dmaster.0);
        write_dmaster_record(w, &self.key, &self.data, self.record_flags);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let db_id = DbId::read(r)?;
        r.padding(4)?;
        let rsn = r.u64(Self::NAME)?;
        let dmaster = Pnn::read(r)?;
        let keylen = r.u32("req_dmaster key length")?;
        let datalen = r.u32("req_dmaster data length")?;
        Ok(ReqDmaster {
            db_id,
            rsn,
            dmaster,
            key: r.blob(keylen, "req_dmaster key")?,
            data: r.blob(datalen, "req_dmaster data")?,
            record_flags: trailing_record_flags(r)?,
        })
    }
}

/// CTDB_REPLY_DMASTER: hands the record to its new dmaster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyDmaster {
    /// The database.
    pub db_id: DbId,
    /// The record sequence number.
    pub rsn: u64,
    /// The record key.
    pub key: Vec<u8>,
    /// The record data.
    pub data: Vec<u8>,
    /// The record's header flags, which Samba 4.17 appends after the data
    /// (`None`: not sent).
    pub record_flags: Option<u32>,
}

impl Layout for ReplyDmaster {
    const NAME: &'static str = "reply_dmaster";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.db_id.0).padding(4).u64(self.rsn);
        write_dmaster_record(w, &self.key, &self.data, self.record_flags);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let db_id = DbId::read(r)?;
        r.padding(4)?;
        let rsn = r.u64(Self::NAME)?;
        let keylen = r.u32("reply_dmaster key length")?;
        let datalen = r.u32("reply_dmaster data length")?;
        Ok(ReplyDmaster {
            db_id,
            rsn,
            key: r.blob(keylen, "reply_dmaster key")?,
            data: r.blob(datalen, "reply_dmaster data")?,
            record_flags: trailing_record_flags(r)?,
        })
    }
}

/// CTDB_REQ_MESSAGE: data for the handlers registered for a srvid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReqMessage {
    /// The destination server id.
    pub srvid: Srvid,
    /// The message payload (its layout depends on the srvid).
    pub data: Vec<u8>,
}

impl Layout for ReqMessage {
    const NAME: &'static str = "req_message";
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.srvid.0).counted_blob(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReqMessage {
            srvid: Srvid::read(r)?,
            data: r.counted_blob("req_message data")?,
        })
    }
}

/// CTDB_REQ_CONTROL: a control request; `data` is the opcode's payload,
/// typed by [`crate::controls::ControlRequest::decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqControl {
    /// The control.
    pub opcode: ControlOpcode,
    /// The srvid argument (REGISTER_SRVID and friends).
    pub srvid: Srvid,
    /// The client id (unused by Samba 4.17 clients, kept as sent).
    pub client_id: u32,
    /// `CONTROL_FLAG_*` bits.
    pub flags: u32,
    /// The payload bytes.
    pub data: Vec<u8>,
}

impl ReqControl {
    /// True when the sender asked for no reply.
    pub fn noreply(&self) -> bool {
        self.flags & CONTROL_FLAG_NOREPLY != 0
    }

    /// The payload as a typed request.
    pub fn request(&self) -> Result<crate::controls::ControlRequest, DecodeError> {
        crate::controls::ControlRequest::decode(self.opcode, &self.data)
    }
}

impl Layout for ReqControl {
    const NAME: &'static str = "req_control";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.opcode.to_u32())
            .padding(4)
            .u64(self.srvid.0)
            .u32(self.client_id)
            .u32(self.flags)
            .counted_blob(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let opcode = ControlOpcode::from_u32(r.u32(Self::NAME)?);
        r.padding(4)?;
        Ok(ReqControl {
            opcode,
            srvid: Srvid::read(r)?,
            client_id: r.u32(Self::NAME)?,
            flags: r.u32(Self::NAME)?,
            data: r.counted_blob("req_control data")?,
        })
    }
}

/// CTDB_REPLY_CONTROL: status, reply data and an optional error message.
/// `data` is typed by [`crate::controls::ControlReply::decode`] with the
/// opcode of the request it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyControl {
    /// 0 on success; some controls answer with a count or a value here.
    pub status: i32,
    /// The reply payload.
    pub data: Vec<u8>,
    /// The error message (sent with its NUL; `None` sends length 0).
    pub errmsg: Option<String>,
}

impl ReplyControl {
    /// A success reply carrying `data`.
    pub fn ok(data: Vec<u8>) -> ReplyControl {
        ReplyControl {
            status: 0,
            data,
            errmsg: None,
        }
    }

    /// A reply that is only a status.
    pub fn status(status: i32) -> ReplyControl {
        ReplyControl {
            status,
            ..Default::default()
        }
    }

    /// A failure with a message.
    pub fn error(status: i32, msg: &str) -> ReplyControl {
        ReplyControl {
            status,
            data: Vec::new(),
            errmsg: Some(msg.to_string()),
        }
    }

    /// The payload as the typed reply to `opcode`.
    pub fn reply(
        &self,
        opcode: ControlOpcode,
    ) -> Result<crate::controls::ControlReply, DecodeError> {
        crate::controls::ControlReply::decode(opcode, &self.data)
    }
}

impl Layout for ReplyControl {
    const NAME: &'static str = "reply_control";
    fn write(&self, w: &mut Writer<'_>) {
        let esize = self.errmsg.as_ref().map_or(0, |m| m.len() + 1);
        w.i32(self.status)
            .len_u32(self.data.len())
            .len_u32(esize)
            .bytes(&self.data);
        if let Some(m) = &self.errmsg {
            w.cstring(m);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let status = r.i32(Self::NAME)?;
        let dsize = r.u32("reply_control data length")?;
        let esize = r.u32("reply_control error length")?;
        let data = r.blob(dsize, "reply_control data")?;
        let errmsg = match esize {
            0 => None,
            n => Some(r.sized_cstring(n, "reply_control error message")?),
        };
        Ok(ReplyControl {
            status,
            data,
            errmsg,
        })
    }
}

/// CTDB_REQ_KEEPALIVE between nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReqKeepalive {
    /// The sender's protocol version word.
    pub version: u32,
    /// The sender's uptime in seconds.
    pub uptime: u32,
}

impl Layout for ReqKeepalive {
    const NAME: &'static str = "req_keepalive";
    fn write(&self, w: &mut Writer<'_>) {
        w.u32(self.version).u32(self.uptime);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReqKeepalive {
            version: r.u32(Self::NAME)?,
            uptime: r.u32(Self::NAME)?,
        })
    }
}

/// CTDB_REQ_TUNNEL: data for a registered tunnel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReqTunnel {
    /// The tunnel.
    pub tunnel_id: u64,
    /// Request / reply / noreply bits.
    pub flags: u32,
    /// The tunnelled bytes.
    pub data: Vec<u8>,
}

impl Layout for ReqTunnel {
    const NAME: &'static str = "req_tunnel";
    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.tunnel_id)
            .u32(self.flags)
            .counted_blob(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReqTunnel {
            tunnel_id: r.u64(Self::NAME)?,
            flags: r.u32(Self::NAME)?,
            data: r.counted_blob("req_tunnel data")?,
        })
    }
}

/// A decoded packet body, one variant per operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    /// CTDB_REQ_CALL.
    ReqCall(ReqCall),
    /// CTDB_REPLY_CALL.
    ReplyCall(ReplyCall),
    /// CTDB_REQ_DMASTER.
    ReqDmaster(ReqDmaster),
    /// CTDB_REPLY_DMASTER.
    ReplyDmaster(ReplyDmaster),
    /// CTDB_REPLY_ERROR.
    ReplyError(ReplyError),
    /// CTDB_REQ_MESSAGE.
    ReqMessage(ReqMessage),
    /// CTDB_REQ_CONTROL.
    ReqControl(ReqControl),
    /// CTDB_REPLY_CONTROL.
    ReplyControl(ReplyControl),
    /// CTDB_REQ_KEEPALIVE.
    ReqKeepalive(ReqKeepalive),
    /// CTDB_REQ_TUNNEL.
    ReqTunnel(ReqTunnel),
}

impl Packet {
    /// The header operation of this body.
    pub fn operation(&self) -> Operation {
        match self {
            Packet::ReqCall(_) => Operation::ReqCall,
            Packet::ReplyCall(_) => Operation::ReplyCall,
            Packet::ReqDmaster(_) => Operation::ReqDmaster,
            Packet::ReplyDmaster(_) => Operation::ReplyDmaster,
            Packet::ReplyError(_) => Operation::ReplyError,
            Packet::ReqMessage(_) => Operation::ReqMessage,
            Packet::ReqControl(_) => Operation::ReqControl,
            Packet::ReplyControl(_) => Operation::ReplyControl,
            Packet::ReqKeepalive(_) => Operation::ReqKeepalive,
            Packet::ReqTunnel(_) => Operation::ReqTunnel,
        }
    }

    /// Writes the body's bytes (no header, no alignment padding).
    pub fn write_body(&self, w: &mut Writer<'_>) {
        match self {
            Packet::ReqCall(b) => b.write(w),
            Packet::ReplyCall(b) => b.write(w),
            Packet::ReqDmaster(b) => b.write(w),
            Packet::ReplyDmaster(b) => b.write(w),
            Packet::ReplyError(b) => b.write(w),
            Packet::ReqMessage(b) => b.write(w),
            Packet::ReqControl(b) => b.write(w),
            Packet::ReplyControl(b) => b.write(w),
            Packet::ReqKeepalive(b) => b.write(w),
            Packet::ReqTunnel(b) => b.write(w),
        }
    }

    /// Appends the body's bytes (no header, no alignment padding).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        self.write_body(&mut Writer::new(out));
    }

    /// Decodes the body of a packet with `operation` from `body` (the bytes
    /// after the header).  Up to [`MAX_TRAILING_PADDING`] bytes of padding
    /// may follow the body (their content is not checked); more is
    /// `TrailingBytes`.
    pub fn decode_body(operation: Operation, body: &[u8]) -> Result<Packet, DecodeError> {
        let mut r = Reader::new(body);
        let p = match operation {
            Operation::ReqCall => Packet::ReqCall(ReqCall::read(&mut r)?),
            Operation::ReplyCall => Packet::ReplyCall(ReplyCall::read(&mut r)?),
            Operation::ReqDmaster => Packet::ReqDmaster(ReqDmaster::read(&mut r)?),
            Operation::ReplyDmaster => Packet::ReplyDmaster(ReplyDmaster::read(&mut r)?),
            Operation::ReplyError => Packet::ReplyError(ReplyError::read(&mut r)?),
            Operation::ReqMessage => Packet::ReqMessage(ReqMessage::read(&mut r)?),
            Operation::ReqControl => Packet::ReqControl(ReqControl::read(&mut r)?),
            Operation::ReplyControl => Packet::ReplyControl(ReplyControl::read(&mut r)?),
            Operation::ReqKeepalive => Packet::ReqKeepalive(ReqKeepalive::read(&mut r)?),
            Operation::ReqTunnel => Packet::ReqTunnel(ReqTunnel::read(&mut r)?),
            Operation::Unknown(n) => return Err(DecodeError::UnknownOperation(n)),
        };
        if r.remaining() > MAX_TRAILING_PADDING {
            return Err(DecodeError::TrailingBytes {
                what: "packet body",
                count: r.remaining(),
            });
        }
        Ok(p)
    }

    /// The whole packet: `header` with its operation and length set from
    /// this body, the body, and zero padding to the alignment.
    pub fn encode(&self, header: Header) -> Vec<u8> {
        // The body goes straight behind room for the header, which is
        // written once the length is known: a big body is copied once.
        let mut out = Vec::with_capacity(aligned(HEADER_LEN + self.payload_len() + 64));
        out.resize(HEADER_LEN, 0);
        self.encode_body(&mut out);
        let total = aligned(out.len());
        out.resize(total, 0);
        let header = Header {
            length: u32::try_from(total).unwrap_or(u32::MAX),
            operation: self.operation(),
            ..header
        };
        let mut head = Vec::with_capacity(HEADER_LEN);
        header.encode(&mut head);
        out[..HEADER_LEN].copy_from_slice(&head);
        out
    }

    /// The bytes of the variable part a body carries (data, error text),
    /// to size its encoding.
    fn payload_len(&self) -> usize {
        match self {
            Packet::ReqMessage(m) => m.data.len(),
            Packet::ReqControl(c) => c.data.len(),
            Packet::ReplyControl(r) => r.data.len() + r.errmsg.as_ref().map_or(0, |e| e.len()),
            _ => 0,
        }
    }

    /// Decodes one whole packet (as [`frame_length`] cut it): the header,
    /// whose length must be the packet's, and the body.
    pub fn decode(packet: &[u8]) -> Result<(Header, Packet), DecodeError> {
        let mut r = Reader::new(packet);
        let header = Header::read(&mut r)?;
        check_length(header.length)?;
        if header.length as usize != packet.len() {
            return Err(DecodeError::LengthMismatch {
                what: "packet length",
                declared: header.length.into(),
                actual: packet.len() as u64,
            });
        }
        let body = Packet::decode_body(header.operation, r.rest())?;
        Ok((header, body))
    }
}
