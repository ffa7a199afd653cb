//! CTDB wire protocol: packet header, control request/reply layouts and the
//! little-endian (host order on every platform ctdb runs on) marshalling
//! helpers.  See docs/ctdbd.md for the layouts in prose.

pub const CTDB_MAGIC: u32 = 0x4354_4442; // "CTDB"
pub const CTDB_PROTOCOL: u32 = 1;
pub const HEADER_LEN: usize = 32;
/// Packets are padded to a multiple of this many bytes; the length field
/// carries the padded size.
pub const PACKET_ALIGN: usize = 8;
/// Largest packet a client may send; anything bigger is treated as garbage.
pub const MAX_PACKET: usize = 64 * 1024 * 1024;

// Operations.
pub const REQ_CALL: u32 = 0;
pub const REPLY_CALL: u32 = 1;
pub const REQ_DMASTER: u32 = 2;
pub const REPLY_DMASTER: u32 = 3;
pub const REPLY_ERROR: u32 = 4;
pub const REQ_MESSAGE: u32 = 5;
pub const REQ_CONTROL: u32 = 7;
pub const REPLY_CONTROL: u32 = 8;
pub const REQ_KEEPALIVE: u32 = 9;
pub const REQ_TUNNEL: u32 = 10;

// Special destination node numbers.
pub const CURRENT_NODE: u32 = 0xF000_0001;
pub const BROADCAST_ALL: u32 = 0xF000_0002;
pub const BROADCAST_ACTIVE: u32 = 0xF000_0003;
pub const BROADCAST_CONNECTED: u32 = 0xF000_0004;
pub const MULTICAST: u32 = 0xF000_0005;
pub const UNKNOWN_PNN: u32 = 0xFFFF_FFFF;

pub const INVALID_GENERATION: u32 = 1;

// Well-known server ids.
pub const SRVID_ALL: u64 = u64::MAX;
pub const SRVID_LEADER: u64 = 0xF101_0000_0000_0000;

// Control flags.
pub const CTRL_FLAG_NOREPLY: u32 = 1;
/// GET_PUBLIC_IPS control flag: only the addresses this node could host.
pub const PUBLIC_IP_FLAGS_ONLY_AVAILABLE: u32 = 0x0001_0000;

// Database flags (dbmap).
pub const DB_FLAGS_PERSISTENT: u8 = 0x01;
pub const DB_FLAGS_READONLY: u8 = 0x02;
pub const DB_FLAGS_STICKY: u8 = 0x04;
pub const DB_FLAGS_REPLICATED: u8 = 0x08;

// Node flags.
pub const NODE_FLAGS_DISCONNECTED: u32 = 0x01;
pub const NODE_FLAGS_UNHEALTHY: u32 = 0x02;
pub const NODE_FLAGS_PERMANENTLY_DISABLED: u32 = 0x04;
pub const NODE_FLAGS_BANNED: u32 = 0x08;
pub const NODE_FLAGS_DELETED: u32 = 0x10;
pub const NODE_FLAGS_STOPPED: u32 = 0x20;

// Capabilities.
pub const CAP_RECMASTER: u32 = 0x0000_0001;
pub const CAP_LMASTER: u32 = 0x0000_0002;
pub const CAP_PARALLEL_RECOVERY: u32 = 0x0001_0000;
pub const CAP_FRAGMENTED_CONTROLS: u32 = 0x0002_0000;

pub const RECOVERY_NORMAL: u32 = 0;
pub const RECOVERY_ACTIVE: u32 = 1;

/// Run states, in the order the daemon passes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum RunState {
    Unknown = 0,
    Init = 1,
    Setup = 2,
    FirstRecovery = 3,
    Startup = 4,
    Running = 5,
    Shutdown = 6,
}

impl RunState {
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

/// Control opcodes this daemon knows by name (the rest are answered with an
/// error reply).
pub mod ctrl {
    pub const PROCESS_EXISTS: u32 = 0;
    pub const STATISTICS: u32 = 1;
    pub const PING: u32 = 3;
    pub const GETDBPATH: u32 = 4;
    pub const GETVNNMAP: u32 = 5;
    pub const GET_DEBUG: u32 = 7;
    pub const SET_DEBUG: u32 = 8;
    pub const GET_DBMAP: u32 = 9;
    pub const GET_RECMODE: u32 = 15;
    pub const DB_ATTACH: u32 = 18;
    pub const REGISTER_SRVID: u32 = 23;
    pub const DEREGISTER_SRVID: u32 = 24;
    pub const GET_DBNAME: u32 = 25;
    pub const GET_PID: u32 = 30;
    pub const GET_PNN: u32 = 35;
    pub const SHUTDOWN: u32 = 36;
    pub const SET_TUNABLE: u32 = 48;
    pub const GET_TUNABLE: u32 = 49;
    pub const LIST_TUNABLES: u32 = 50;
    pub const GET_ALL_TUNABLES: u32 = 53;
    pub const DB_ATTACH_PERSISTENT: u32 = 61;
    pub const UPTIME: u32 = 69;
    pub const GET_CAPABILITIES: u32 = 80;
    pub const GET_NODEMAP: u32 = 91;
    pub const DB_GET_HEALTH: u32 = 122;
    pub const GET_IFACES: u32 = 124;
    pub const GET_RUNSTATE: u32 = 138;
    pub const GET_NODES_FILE: u32 = 140;
    pub const DB_OPEN_FLAGS: u32 = 149;
    pub const DB_ATTACH_REPLICATED: u32 = 150;
    pub const CHECK_PID_SRVID: u32 = 151;
    pub const ECHO_DATA: u32 = 156;
    pub const TRAVERSE_START: u32 = 20;
    pub const TRANS3_COMMIT: u32 = 119;
    pub const SET_DB_READONLY: u32 = 129;
    pub const SET_DB_STICKY: u32 = 133;
    pub const DB_DETACH: u32 = 139;
    pub const WIPE_DATABASE: u32 = 67;
    pub const GET_DB_SEQNUM: u32 = 120;
    pub const DB_SET_HEALTHY: u32 = 121;
    pub const SCHEDULE_FOR_DELETION: u32 = 128;
    pub const DB_VACUUM: u32 = 155;
    pub const TRAVERSE_START_EXT: u32 = 131;
    pub const DB_FREEZE: u32 = 141;
    pub const DB_THAW: u32 = 142;
    pub const DB_TRANSACTION_START: u32 = 143;
    pub const DB_TRANSACTION_COMMIT: u32 = 144;
    pub const DB_TRANSACTION_CANCEL: u32 = 145;
    pub const DB_PULL: u32 = 146;
    pub const DB_PUSH_START: u32 = 147;
    pub const DB_PUSH_CONFIRM: u32 = 148;
    pub const STATISTICS_RESET: u32 = 17;
    pub const GET_DB_STATISTICS: u32 = 132;
    pub const ENABLE_SEQNUM: u32 = 26;
    pub const UPDATE_SEQNUM: u32 = 27;
    pub const TCP_CLIENT: u32 = 44;
    pub const GET_PUBLIC_IPS: u32 = 90;
    pub const GET_PUBLIC_IP_INFO: u32 = 123;
    pub const REGISTER_NOTIFY: u32 = 114;
    pub const DEREGISTER_NOTIFY: u32 = 115;
}

/// The fixed 32-byte header in front of every packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub magic: u32,
    pub version: u32,
    pub generation: u32,
    pub operation: u32,
    pub destnode: u32,
    pub srcnode: u32,
    pub reqid: u32,
}

/// Why a packet was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PacketError {
    Short,
    BadMagic(u32),
    BadVersion(u32),
    BadLength(u32),
    Truncated,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::Short => write!(f, "packet shorter than the header"),
            PacketError::BadMagic(m) => write!(f, "non-CTDB packet (magic 0x{m:08x})"),
            PacketError::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            PacketError::BadLength(l) => write!(f, "invalid packet length {l}"),
            PacketError::Truncated => write!(f, "packet body truncated"),
        }
    }
}

impl Header {
    pub fn parse(buf: &[u8]) -> Result<Header, PacketError> {
        if buf.len() < HEADER_LEN {
            return Err(PacketError::Short);
        }
        let mut r = Reader::new(buf);
        let h = Header {
            length: r.u32().unwrap(),
            magic: r.u32().unwrap(),
            version: r.u32().unwrap(),
            generation: r.u32().unwrap(),
            operation: r.u32().unwrap(),
            destnode: r.u32().unwrap(),
            srcnode: r.u32().unwrap(),
            reqid: r.u32().unwrap(),
        };
        if h.magic != CTDB_MAGIC {
            return Err(PacketError::BadMagic(h.magic));
        }
        if h.version != CTDB_PROTOCOL {
            return Err(PacketError::BadVersion(h.version));
        }
        Ok(h)
    }
}

/// Checks the length word at the front of a packet; returns it when sane.
pub fn check_length(len: u32) -> Result<usize, PacketError> {
    let l = len as usize;
    if !(HEADER_LEN..=MAX_PACKET).contains(&l) {
        return Err(PacketError::BadLength(len));
    }
    Ok(l)
}

/// Cursor over a received buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.remaining() < n {
            return None;
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    pub fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// Growable little-endian writer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.u32(v as u32)
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }
    /// A C string with its terminating NUL (the "string" wire type).
    pub fn cstring(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self
    }
    /// A struct timeval as the x86-64 ABI lays it out (two 64-bit words).
    pub fn timeval(&mut self, t: Timeval) -> &mut Self {
        self.i64(t.sec).i64(t.usec)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}

impl Timeval {
    pub fn now() -> Timeval {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timeval {
            sec: d.as_secs() as i64,
            usec: d.subsec_micros() as i64,
        }
    }
}

/// Builds a whole packet: header + body, length set, padded to 8 bytes.
pub fn build_packet(mut h: Header, body: &[u8]) -> Vec<u8> {
    let raw = HEADER_LEN + body.len();
    let padded = (raw + PACKET_ALIGN - 1) & !(PACKET_ALIGN - 1);
    h.length = padded as u32;
    h.magic = CTDB_MAGIC;
    h.version = CTDB_PROTOCOL;
    let mut w = Writer::new();
    w.u32(h.length)
        .u32(h.magic)
        .u32(h.version)
        .u32(h.generation)
        .u32(h.operation)
        .u32(h.destnode)
        .u32(h.srcnode)
        .u32(h.reqid)
        .bytes(body)
        .zeros(padded - raw);
    w.buf
}

/// A decoded CTDB_REQ_CONTROL body.
#[derive(Debug, Clone)]
pub struct ReqControl {
    pub opcode: u32,
    pub srvid: u64,
    pub client_id: u32,
    pub flags: u32,
    pub data: Vec<u8>,
}

impl ReqControl {
    /// Layout after the header: opcode u32, pad u32, srvid u64, client_id u32,
    /// flags u32, datalen u32, data.
    pub fn parse(body: &[u8]) -> Result<ReqControl, PacketError> {
        let mut r = Reader::new(body);
        let opcode = r.u32().ok_or(PacketError::Truncated)?;
        let _pad = r.u32().ok_or(PacketError::Truncated)?;
        let srvid = r.u64().ok_or(PacketError::Truncated)?;
        let client_id = r.u32().ok_or(PacketError::Truncated)?;
        let flags = r.u32().ok_or(PacketError::Truncated)?;
        let len = r.u32().ok_or(PacketError::Truncated)? as usize;
        let data = r.bytes(len).ok_or(PacketError::Truncated)?.to_vec();
        Ok(ReqControl {
            opcode,
            srvid,
            client_id,
            flags,
            data,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.opcode)
            .u32(0)
            .u64(self.srvid)
            .u32(self.client_id)
            .u32(self.flags)
            .u32(self.data.len() as u32)
            .bytes(&self.data);
        w.buf
    }
}

/// Body of a CTDB_REPLY_CONTROL: status i32, datalen u32, errorlen u32, then
/// the data (on success) or the NUL-terminated error message (on failure).
pub fn reply_control_body(status: i32, data: &[u8], errmsg: Option<&str>) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(status);
    if status == 0 {
        w.u32(data.len() as u32).u32(0).bytes(data);
    } else {
        match errmsg {
            Some(m) => {
                w.u32(0).u32(m.len() as u32 + 1).cstring(m);
            }
            None => {
                w.u32(0).u32(0);
            }
        }
    }
    w.buf
}

/// A decoded CTDB_REQ_CALL body: flags u32, db_id u32, callid u32,
/// hopcount u32, keylen u32, calldatalen u32, key, calldata.
#[derive(Debug, Clone)]
pub struct ReqCall {
    pub flags: u32,
    pub db_id: u32,
    pub callid: u32,
    pub hopcount: u32,
    pub key: Vec<u8>,
    pub calldata: Vec<u8>,
}

impl ReqCall {
    pub fn parse(body: &[u8]) -> Result<ReqCall, PacketError> {
        let mut r = Reader::new(body);
        let flags = r.u32().ok_or(PacketError::Truncated)?;
        let db_id = r.u32().ok_or(PacketError::Truncated)?;
        let callid = r.u32().ok_or(PacketError::Truncated)?;
        let hopcount = r.u32().ok_or(PacketError::Truncated)?;
        let klen = r.u32().ok_or(PacketError::Truncated)? as usize;
        let dlen = r.u32().ok_or(PacketError::Truncated)? as usize;
        let key = r.bytes(klen).ok_or(PacketError::Truncated)?.to_vec();
        let calldata = r.bytes(dlen).ok_or(PacketError::Truncated)?.to_vec();
        Ok(ReqCall {
            flags,
            db_id,
            callid,
            hopcount,
            key,
            calldata,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.flags)
            .u32(self.db_id)
            .u32(self.callid)
            .u32(self.hopcount)
            .u32(self.key.len() as u32)
            .u32(self.calldata.len() as u32)
            .bytes(&self.key)
            .bytes(&self.calldata);
        w.buf
    }
}

/// Body of a CTDB_REPLY_CALL: status i32, datalen u32, data.
pub fn reply_call_body(status: i32, data: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.i32(status).u32(data.len() as u32).bytes(data);
    w.buf
}

/// One marshalled record (ctdb_rec_data): length u32 (of the whole entry),
/// reqid u32, keylen u32, datalen u32, key, data.  No padding.
pub fn rec_data(w: &mut Writer, reqid: u32, key: &[u8], data: &[u8]) {
    w.u32((16 + key.len() + data.len()) as u32)
        .u32(reqid)
        .u32(key.len() as u32)
        .u32(data.len() as u32)
        .bytes(key)
        .bytes(data);
}

/// A record as (key, stored value).
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A marshall buffer (ctdb_rec_buffer): db_id u32, count u32, then count
/// rec_data entries whose data starts with the 24-byte ltdb header.
/// Returns (db_id, [(key, data-with-header)]).
pub fn parse_rec_buffer(b: &[u8]) -> Option<(u32, Vec<KeyValue>)> {
    let mut r = Reader::new(b);
    let db_id = r.u32()?;
    let count = r.u32()?;
    let mut recs = Vec::new();
    for _ in 0..count {
        let len = r.u32()? as usize;
        let _reqid = r.u32()?;
        let klen = r.u32()? as usize;
        let dlen = r.u32()? as usize;
        if len != 16 + klen + dlen {
            return None;
        }
        let key = r.bytes(klen)?.to_vec();
        let data = r.bytes(dlen)?.to_vec();
        recs.push((key, data));
    }
    Some((db_id, recs))
}

/// A decoded CTDB_REQ_MESSAGE body: srvid u64, datalen u32, data.
#[derive(Debug, Clone)]
pub struct ReqMessage {
    pub srvid: u64,
    pub data: Vec<u8>,
}

impl ReqMessage {
    pub fn parse(body: &[u8]) -> Result<ReqMessage, PacketError> {
        let mut r = Reader::new(body);
        let srvid = r.u64().ok_or(PacketError::Truncated)?;
        let len = r.u32().ok_or(PacketError::Truncated)? as usize;
        let data = r.bytes(len).ok_or(PacketError::Truncated)?.to_vec();
        Ok(ReqMessage { srvid, data })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.srvid)
            .u32(self.data.len() as u32)
            .bytes(&self.data);
        w.buf
    }
}

/// ctdb_sock_addr: the 28-byte union of sockaddr_in/sockaddr_in6, family in
/// host order, port and address in network order.
pub fn sock_addr(w: &mut Writer, addr: &std::net::SocketAddr) {
    let start = w.buf.len();
    match addr {
        std::net::SocketAddr::V4(a) => {
            w.u16(libc::AF_INET as u16);
            w.bytes(&a.port().to_be_bytes());
            w.bytes(&a.ip().octets());
        }
        std::net::SocketAddr::V6(a) => {
            w.u16(libc::AF_INET6 as u16);
            w.bytes(&a.port().to_be_bytes());
            w.bytes(&a.flowinfo().to_be_bytes());
            w.bytes(&a.ip().octets());
            w.u32(a.scope_id());
        }
    }
    let used = w.buf.len() - start;
    w.zeros(28 - used);
}

/// Size of a ctdb_sock_addr (the sockaddr_in/sockaddr_in6 union).
pub const SOCK_ADDR_LEN: usize = 28;

/// Reads a ctdb_sock_addr: family u16 in host order, then the port and
/// address in network order.  None for another family or a short buffer.
pub fn parse_sock_addr(data: &[u8]) -> Option<std::net::SocketAddr> {
    if data.len() < SOCK_ADDR_LEN {
        return None;
    }
    let family = u16::from_le_bytes([data[0], data[1]]) as i32;
    let port = u16::from_be_bytes([data[2], data[3]]);
    if family == libc::AF_INET {
        let ip: [u8; 4] = data[4..8].try_into().unwrap();
        Some(std::net::SocketAddr::new(std::net::IpAddr::from(ip), port))
    } else if family == libc::AF_INET6 {
        let flowinfo = u32::from_be_bytes(data[4..8].try_into().unwrap());
        let ip: [u8; 16] = data[8..24].try_into().unwrap();
        let scope = u32::from_le_bytes(data[24..28].try_into().unwrap());
        Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
            ip.into(),
            port,
            flowinfo,
            scope,
        )))
    } else {
        None
    }
}

/// ctdb_connection (TCP_CLIENT): `src` then `dst`, 56 bytes; only that
/// exact size is accepted.  smbd puts the SMB client's address in `src` and
/// its own (server) address in `dst`, which is the one the daemon looks up
/// among the public addresses.  Returns (src, dst).
pub fn parse_connection(data: &[u8]) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
    if data.len() != 2 * SOCK_ADDR_LEN {
        return None;
    }
    Some((
        parse_sock_addr(&data[..SOCK_ADDR_LEN])?,
        parse_sock_addr(&data[SOCK_ADDR_LEN..])?,
    ))
}

/// ctdb_notify_data_old (REGISTER_NOTIFY): `srvid u64, len u32, data[len]`,
/// nothing after the data.
pub fn parse_notify_data(data: &[u8]) -> Option<(u64, Vec<u8>)> {
    let mut r = Reader::new(data);
    let srvid = r.u64()?;
    let len = r.u32()? as usize;
    if r.remaining() != len {
        return None;
    }
    Some((srvid, r.rest().to_vec()))
}

/// ctdb_public_ip_list_old (GET_PUBLIC_IPS): `num u32`, then per address
/// `pnn u32, ctdb_sock_addr` (32 bytes each).
pub fn public_ip_list(w: &mut Writer, ips: &[(u32, std::net::IpAddr)]) {
    w.u32(ips.len() as u32);
    for (pnn, ip) in ips {
        w.u32(*pnn);
        sock_addr(w, &std::net::SocketAddr::new(*ip, 0));
    }
}

/// ctdb_iface: `name[18]` (NUL padded, at most 17 bytes kept),
/// `link_state u16, references u32` (24 bytes).
pub fn iface(w: &mut Writer, name: &str, link_state: u16, references: u32) {
    let mut n = [0u8; 18];
    let b = name.as_bytes();
    let l = b.len().min(17);
    n[..l].copy_from_slice(&b[..l]);
    w.bytes(&n).u16(link_state).u32(references);
}

/// Reads a NUL-terminated string; the NUL may be missing at the very end.
pub fn parse_cstring(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    std::str::from_utf8(&data[..end])
        .ok()
        .map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_is_padded_and_parses_back() {
        let h = Header {
            operation: REPLY_CONTROL,
            reqid: 7,
            destnode: 3,
            srcnode: 3,
            generation: 99,
            ..Default::default()
        };
        let body = reply_control_body(0, &[1, 2, 3, 4], None);
        let p = build_packet(h, &body);
        assert_eq!(p.len(), 48); // 32 + 16 rounded up to 8
        let back = Header::parse(&p).unwrap();
        assert_eq!(back.length, 48);
        assert_eq!(back.reqid, 7);
        assert_eq!(back.magic, CTDB_MAGIC);
        let mut r = Reader::new(&p[HEADER_LEN..]);
        assert_eq!(r.i32(), Some(0));
        assert_eq!(r.u32(), Some(4));
        assert_eq!(r.u32(), Some(0));
        assert_eq!(r.bytes(4), Some(&[1u8, 2, 3, 4][..]));
    }

    #[test]
    fn error_reply_carries_message() {
        let b = reply_control_body(-1, &[9, 9], Some("nope"));
        let mut r = Reader::new(&b);
        assert_eq!(r.i32(), Some(-1));
        assert_eq!(r.u32(), Some(0));
        assert_eq!(r.u32(), Some(5));
        assert_eq!(r.rest(), b"nope\0");
    }

    #[test]
    fn bad_magic_and_version_are_refused() {
        let mut p = build_packet(
            Header {
                operation: REQ_CONTROL,
                ..Default::default()
            },
            &[],
        );
        p[4] = 0;
        assert!(matches!(Header::parse(&p), Err(PacketError::BadMagic(_))));
        let mut p = build_packet(
            Header {
                operation: REQ_CONTROL,
                ..Default::default()
            },
            &[],
        );
        p[8] = 2;
        assert_eq!(Header::parse(&p), Err(PacketError::BadVersion(2)));
        assert!(check_length(8).is_err());
        assert!(check_length(32).is_ok());
    }

    #[test]
    fn control_roundtrip() {
        let c = ReqControl {
            opcode: 49,
            srvid: 5,
            client_id: 0,
            flags: 0,
            data: vec![1, 2, 3],
        };
        let back = ReqControl::parse(&c.encode()).unwrap();
        assert_eq!(back.opcode, 49);
        assert_eq!(back.srvid, 5);
        assert_eq!(back.data, vec![1, 2, 3]);
        assert!(ReqControl::parse(&c.encode()[..20]).is_err());
    }

    #[test]
    fn req_call_roundtrip_and_rec_data_layout() {
        let c = ReqCall {
            flags: 1,
            db_id: 0x88127240,
            callid: 0xFF000001,
            hopcount: 0,
            key: b"k1".to_vec(),
            calldata: vec![],
        };
        let b = c.encode();
        assert_eq!(b.len(), 24 + 2);
        let back = ReqCall::parse(&b).unwrap();
        assert_eq!(
            (back.flags, back.db_id, back.callid, back.key),
            (1, 0x88127240, 0xFF000001, b"k1".to_vec())
        );
        assert!(ReqCall::parse(&b[..25]).is_err());
        let mut w = Writer::new();
        rec_data(&mut w, 5, b"ab", b"xyz");
        assert_eq!(w.buf.len(), 21);
        assert_eq!(
            &w.buf[..16],
            &[21, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            reply_call_body(0, b"hi"),
            vec![0, 0, 0, 0, 2, 0, 0, 0, b'h', b'i']
        );
    }

    #[test]
    fn sockaddr_v4_layout() {
        let mut w = Writer::new();
        sock_addr(&mut w, &"127.0.0.1:4379".parse().unwrap());
        assert_eq!(w.buf.len(), 28);
        assert_eq!(&w.buf[..8], &[2, 0, 0x11, 0x1b, 127, 0, 0, 1]);
    }

    #[test]
    fn sockaddr_round_trip_and_connection() {
        for a in ["127.0.0.1:4455", "10.1.2.3:0", "[fe80::1]:445"] {
            let a: std::net::SocketAddr = a.parse().unwrap();
            let mut w = Writer::new();
            sock_addr(&mut w, &a);
            assert_eq!(parse_sock_addr(&w.buf), Some(a));
        }
        assert_eq!(parse_sock_addr(&[0u8; 28]), None);
        assert_eq!(parse_sock_addr(&[2u8; 27]), None);
        let mut w = Writer::new();
        sock_addr(&mut w, &"127.0.0.1:4455".parse().unwrap());
        sock_addr(&mut w, &"127.0.0.2:40000".parse().unwrap());
        let (src, dst) = parse_connection(&w.buf).unwrap();
        assert_eq!((src.port(), dst.port()), (4455, 40000));
        w.u8(0);
        assert!(parse_connection(&w.buf).is_none());
    }

    #[test]
    fn notify_data_and_public_ips() {
        // As smbd's ctdb_watch_us builds it: srvid, len 1, one data byte.
        let mut w = Writer::new();
        w.u64(0xFE00_0000_0000_0000).u32(1).u8(0);
        assert_eq!(
            parse_notify_data(&w.buf),
            Some((0xFE00_0000_0000_0000, vec![0]))
        );
        w.u8(0);
        assert_eq!(parse_notify_data(&w.buf), None);
        assert_eq!(parse_notify_data(&[0u8; 11]), None);
        let mut w = Writer::new();
        public_ip_list(&mut w, &[]);
        assert_eq!(w.buf, vec![0, 0, 0, 0]);
        let mut w = Writer::new();
        public_ip_list(&mut w, &[(UNKNOWN_PNN, "10.0.0.9".parse().unwrap())]);
        assert_eq!(w.buf.len(), 4 + 32);
        assert_eq!(
            &w.buf[4..16],
            &[0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 10, 0, 0, 9]
        );
        let mut w = Writer::new();
        iface(&mut w, "a-very-long-interface-name", 1, 7);
        assert_eq!(w.buf.len(), 24);
        assert_eq!(&w.buf[..18], b"a-very-long-inter\0");
        assert_eq!(&w.buf[18..], &[1, 0, 7, 0, 0, 0]);
    }
}
