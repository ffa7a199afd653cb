//! Byte-level reading and writing of CTDB layouts: host-order (little-endian
//! on every platform CTDB runs on) integers, explicit struct padding,
//! NUL-terminated strings, length-prefixed blobs, timevals and the
//! `ctdb_sock_addr` union.
//!
//! Every layout type implements [`Layout`]: one `write` and one `read`, and
//! the rest (`encode`, `decode`, `to_bytes`) follows from them.

use crate::error::DecodeError;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A cursor over received bytes.  Every read checks the bytes left first, so
/// no read panics and no length field makes it allocate more than the buffer
/// holds.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes, or `Truncated` naming `what`.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A host-order u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A host-order u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A host-order i32.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// A host-order u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A host-order i64.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// A host-order IEEE double.
    pub fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A C `bool` (one byte, 0 or 1; anything else is `BadValue`).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::BadValue {
                what,
                value: v.into(),
            }),
        }
    }

    /// Skips `n` bytes of struct padding.  Their content is not checked:
    /// Samba does not read it either, and senders may leave it unset.
    pub fn padding(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n, "padding").map(|_| ())
    }

    /// `n` bytes whose length was read from a length field; the length is
    /// checked against the buffer before anything is copied.
    pub fn blob(&mut self, n: u32, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::BadValue {
            what,
            value: n.into(),
        })?;
        Ok(self.take(n, what)?.to_vec())
    }

    /// A u32 length followed by that many bytes (Samba's `TDB_DATA` with
    /// its size in front).
    pub fn counted_blob(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32(what)?;
        self.blob(n, what)
    }

    /// A NUL-terminated UTF-8 string; the NUL is consumed, not returned.
    pub fn cstring(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::MissingNul { what })?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| DecodeError::NotUtf8 { what })?;
        self.pos += end + 1;
        Ok(s.to_string())
    }

    /// A u32 length followed by a NUL-terminated string filling exactly that
    /// length (Samba's "stringn").  Length 0 stands for no string at all.
    pub fn counted_cstring(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        let n = self.u32(what)?;
        if n == 0 {
            return Ok(None);
        }
        self.sized_cstring(n, what).map(Some)
    }

    /// A NUL-terminated string of exactly `n` bytes (NUL included).
    pub fn sized_cstring(&mut self, n: u32, what: &'static str) -> Result<String, DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::BadValue {
            what,
            value: n.into(),
        })?;
        string_filling(self.take(n, what)?, what)
    }

    /// A fixed-size char array holding a NUL-terminated string; the bytes
    /// after the NUL are ignored.
    pub fn char_array(&mut self, size: usize, what: &'static str) -> Result<String, DecodeError> {
        let bytes = self.take(size, what)?;
        let end = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::MissingNul { what })?;
        std::str::from_utf8(&bytes[..end])
            .map(str::to_string)
            .map_err(|_| DecodeError::NotUtf8 { what })
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// `TrailingBytes` unless every byte was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }
}

/// A string that must fill `bytes` exactly: its NUL is the last byte.
fn string_filling(bytes: &[u8], what: &'static str) -> Result<String, DecodeError> {
    match bytes.split_last() {
        Some((0, body)) if !body.contains(&0) => std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|_| DecodeError::NotUtf8 { what }),
        _ => Err(DecodeError::MissingNul { what }),
    }
}

/// Appends host-order fields to a byte vector.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// Bytes in the vector so far (including what was there before).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when the vector is still empty.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A host-order u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A host-order u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A host-order i32.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A host-order u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A host-order i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A host-order IEEE double.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// A C `bool` as one byte.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v.into())
    }

    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    /// `n` zero bytes of struct padding.
    pub fn padding(&mut self, n: usize) -> &mut Self {
        self.out.resize(self.out.len() + n, 0);
        self
    }

    /// A length as the u32 the wire carries.  Lengths past u32 cannot be
    /// sent at all (a packet is at most [`crate::header::MAX_PACKET`]), so
    /// they saturate rather than wrap.
    pub fn len_u32(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A u32 length then the bytes.
    pub fn counted_blob(&mut self, b: &[u8]) -> &mut Self {
        self.len_u32(b.len()).bytes(b)
    }

    /// The string and its terminating NUL.
    pub fn cstring(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes()).u8(0)
    }

    /// A u32 length (string plus NUL, or 0 for `None`) then the string.
    pub fn counted_cstring(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.len_u32(s.len() + 1).cstring(s),
            None => self.u32(0),
        }
    }

    /// A string in a fixed `size`-byte char array: cut to `size - 1` bytes,
    /// NUL-terminated, zero-filled.
    pub fn char_array(&mut self, s: &str, size: usize) -> &mut Self {
        let b = s.as_bytes();
        let n = b.len().min(size.saturating_sub(1));
        self.bytes(&b[..n]).padding(size - n)
    }
}

/// A type with one C layout on the wire.
pub trait Layout: Sized {
    /// What the layout is, for error messages.
    const NAME: &'static str;

    /// Appends the layout's bytes.
    fn write(&self, w: &mut Writer<'_>);

    /// Reads one value from the reader's position.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Appends the layout's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        self.write(&mut Writer::new(out));
    }

    /// The layout's bytes in a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a value that fills `bytes` exactly.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(v)
    }
}

macro_rules! scalar_layout {
    ($ty:ty, $name:literal, $read:ident, $write:ident) => {
        impl Layout for $ty {
            const NAME: &'static str = $name;
            fn write(&self, w: &mut Writer<'_>) {
                w.$write(*self);
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$read($name)
            }
        }
    };
}

scalar_layout!(u32, "uint32", u32, u32);
scalar_layout!(i32, "int32", i32, i32);
scalar_layout!(u64, "uint64", u64, u64);
scalar_layout!(f64, "double", f64, f64);

/// Samba's "string": the bytes and a terminating NUL, filling the payload.
impl Layout for String {
    const NAME: &'static str = "string";
    fn write(&self, w: &mut Writer<'_>) {
        w.cstring(self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.cstring("string")
    }
}

/// A string payload that may be absent: no bytes at all stand for none
/// (Samba sends a NULL string as zero bytes).
impl Layout for Option<String> {
    const NAME: &'static str = "optional string";
    fn write(&self, w: &mut Writer<'_>) {
        if let Some(s) = self {
            w.cstring(s);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.remaining() == 0 {
            return Ok(None);
        }
        r.cstring("optional string").map(Some)
    }
}

/// Samba's "stringn": a u32 length, then a NUL-terminated string of exactly
/// that length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountedString(pub String);

impl Layout for CountedString {
    const NAME: &'static str = "counted string";
    fn write(&self, w: &mut Writer<'_>) {
        w.counted_cstring(Some(&self.0));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.counted_cstring("counted string")?
            .map(CountedString)
            .ok_or(DecodeError::MissingNul {
                what: "counted string",
            })
    }
}

/// A `struct timeval` as x86-64 lays it out: two i64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeval {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Microseconds within the second.
    pub usec: i64,
}

impl Timeval {
    /// The current wall-clock time (the epoch if the clock is before it).
    pub fn now() -> Timeval {
        Timeval::from(std::time::SystemTime::now())
    }
}

impl From<std::time::SystemTime> for Timeval {
    fn from(t: std::time::SystemTime) -> Timeval {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timeval {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            usec: i64::from(d.subsec_micros()),
        }
    }
}

impl Layout for Timeval {
    const NAME: &'static str = "timeval";
    fn write(&self, w: &mut Writer<'_>) {
        w.i64(self.sec).i64(self.usec);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Timeval {
            sec: r.i64("timeval")?,
            usec: r.i64("timeval")?,
        })
    }
}

/// Size of `ctdb_sock_addr`, the union of `sockaddr_in` and `sockaddr_in6`.
pub const SOCK_ADDR_LEN: usize = 28;
/// Linux `AF_INET`.
pub const AF_INET: u16 = 2;
/// Linux `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// A `ctdb_sock_addr`: the family in host order, port and IPv4 address (or
/// flowinfo and IPv6 address) in network order, the IPv6 scope id in host
/// order, zero-filled to 28 bytes.  Another family keeps its raw bytes so
/// that it survives decoding and encoding unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockAddr {
    /// An IPv4 address and port.
    Inet(SocketAddrV4),
    /// An IPv6 address, port, flowinfo and scope id.
    Inet6(SocketAddrV6),
    /// Any other family (0 for an unset address), bytes as received.
    Other([u8; SOCK_ADDR_LEN]),
}

impl SockAddr {
    /// The address as a std socket address, if it is IPv4 or IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self {
            SockAddr::Inet(a) => Some(SocketAddr::V4(*a)),
            SockAddr::Inet6(a) => Some(SocketAddr::V6(*a)),
            SockAddr::Other(_) => None,
        }
    }

    /// The IP address, if it is IPv4 or IPv6.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.to_socket_addr().map(|a| a.ip())
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> SockAddr {
        match a {
            SocketAddr::V4(a) => SockAddr::Inet(a),
            SocketAddr::V6(a) => SockAddr::Inet6(a),
        }
    }
}

impl From<std::net::IpAddr> for SockAddr {
    fn from(ip: std::net::IpAddr) -> SockAddr {
        SockAddr::from(SocketAddr::new(ip, 0))
    }
}

impl Layout for SockAddr {
    const NAME: &'static str = "ctdb_sock_addr";
    fn write(&self, w: &mut Writer<'_>) {
        let start = w.len();
        match self {
            SockAddr::Inet(a) => {
                w.u16(AF_INET)
                    .bytes(&a.port().to_be_bytes())
                    .bytes(&a.ip().octets());
            }
            SockAddr::Inet6(a) => {
                w.u16(AF_INET6)
                    .bytes(&a.port().to_be_bytes())
                    .bytes(&a.flowinfo().to_be_bytes())
                    .bytes(&a.ip().octets())
                    .u32(a.scope_id());
            }
            SockAddr::Other(raw) => {
                w.bytes(raw);
            }
        }
        let used = w.len() - start;
        w.padding(SOCK_ADDR_LEN - used);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = r.take(SOCK_ADDR_LEN, Self::NAME)?;
        let family = u16::from_le_bytes([raw[0], raw[1]]);
        let port = u16::from_be_bytes([raw[2], raw[3]]);
        let word = |at: usize| [raw[at], raw[at + 1], raw[at + 2], raw[at + 3]];
        Ok(match family {
            AF_INET => SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::from(word(4)), port)),
            AF_INET6 => {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&raw[8..24]);
                SockAddr::Inet6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port,
                    u32::from_be_bytes(word(4)),
                    u32::from_le_bytes(word(24)),
                ))
            }
            _ => {
                let mut all = [0u8; SOCK_ADDR_LEN];
                all.copy_from_slice(raw);
                SockAddr::Other(all)
            }
        })
    }
}

/// Text filling the whole payload with no terminating NUL (how Samba's
/// daemon answers DUMP_MEMORY).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlainText(pub String);

impl Layout for PlainText {
    const NAME: &'static str = "text";
    fn write(&self, w: &mut Writer<'_>) {
        w.bytes(self.0.as_bytes());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        std::str::from_utf8(r.rest())
            .map(|s| PlainText(s.to_string()))
            .map_err(|_| DecodeError::NotUtf8 { what: Self::NAME })
    }
}
