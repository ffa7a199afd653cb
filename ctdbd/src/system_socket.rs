//! The packets CTDB puts on the wire itself, as Samba's
//! ctdb/common/system_socket.c: gratuitous ARPs (IPv4) and unsolicited
//! neighbour advertisements (IPv6) that tell a LAN an address moved, TCP
//! "tickle" ACKs and RSTs for a connection, and the capture of TCP segments
//! that `ctdb_killtcp` answers with RSTs.
//!
//! Frames and segments are built by pure functions (tested on their
//! bytes); sending uses raw sockets: AF_PACKET for link-level frames and
//! an IPPROTO_RAW socket (the IP header included) for TCP.

use nix::errno::Errno;
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, SockaddrLike,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

/// The TCP window of every segment built here (Samba's marker: a
/// capture can tell its own segments by it).
pub const TICKLE_WINDOW: u16 = 1234;
/// An ARP frame as sent: 14 bytes of Ethernet header and 28 of ARP,
/// padded to the Ethernet minimum of 64.
pub const ARP_FRAME_LEN: usize = 64;
/// An unsolicited neighbour advertisement: Ethernet (14), IPv6 (40), the
/// advertisement (24) and its target link-layer address option (8).
pub const NA_FRAME_LEN: usize = 86;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const PROTO_TCP: u8 = 6;
const PROTO_ICMPV6: u8 = 58;
const TCP_ACK: u8 = 0x10;
const TCP_RST: u8 = 0x04;

/// Why a packet could not be built, sent or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemSocketError {
    /// No interface of that name.
    NoInterface(String),
    /// The interface is not Ethernet (its ARPHRD type).
    NotEthernet {
        /// The interface.
        iface: String,
        /// Its hardware type.
        hatype: u16,
    },
    /// The two ends of a connection are of different address families.
    MixedFamilies(SocketAddr, SocketAddr),
    /// Opening a raw socket failed (root is needed).
    Open(Errno),
    /// Sending failed.
    Send(Errno),
    /// Only part of a packet went out.
    ShortSend {
        /// Bytes sent.
        sent: usize,
        /// Bytes meant.
        len: usize,
    },
    /// Reading the capture socket failed.
    Receive(Errno),
}

impl fmt::Display for SystemSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemSocketError::NoInterface(i) => write!(f, "Interface '{i}' not found"),
            SystemSocketError::NotEthernet { iface, hatype } => write!(
                f,
                "Not an ethernet address family (0x{hatype:x}) on interface {iface}"
            ),
            SystemSocketError::MixedFamilies(a, b) => {
                write!(f, "Addresses {a} and {b} are of different families")
            }
            SystemSocketError::Open(e) => write!(f, "Failed to open raw socket ({})", e.desc()),
            SystemSocketError::Send(e) => write!(f, "Failed sendto ({})", e.desc()),
            SystemSocketError::ShortSend { sent, len } => write!(
                f,
                "Failed sendto - didn't send full packet ({sent} of {len} bytes)"
            ),
            SystemSocketError::Receive(e) => write!(f, "Failed to read packet ({})", e.desc()),
        }
    }
}

impl std::error::Error for SystemSocketError {}

/// The Internet checksum's running sum of `data` as big-endian 16-bit
/// words (a last odd byte counts as the high byte of a word).
fn sum_words(data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a running sum into the one's complement checksum; a result of 0
/// is sent as 0xffff, as Samba does.
fn fold_checksum(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// The checksum of a TCP segment or ICMPv6 message `data` (its checksum
/// field zero) with the pseudo-header of its IP addresses and protocol.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, data: &[u8]) -> u16 {
    let addr_sum = |a: IpAddr| match a {
        IpAddr::V4(a) => sum_words(&a.octets()),
        IpAddr::V6(a) => sum_words(&a.octets()),
    };
    let len = data.len() as u32;
    let sum = addr_sum(src)
        + addr_sum(dst)
        + u32::from(proto)
        + (len >> 16)
        + (len & 0xffff)
        + sum_words(data);
    fold_checksum(sum)
}

/// The two frames that announce `ip` at `mac`: a gratuitous ARP request
/// (sender and target address both `ip`, target hardware zero) and an
/// unsolicited ARP reply (target hardware `mac`), both broadcast.
pub fn arp_frames(mac: [u8; 6], ip: Ipv4Addr) -> [[u8; ARP_FRAME_LEN]; 2] {
    let frame = |reply: bool| {
        let mut f = [0u8; ARP_FRAME_LEN];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        let arp = &mut f[14..42];
        arp[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
        arp[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        arp[4] = 6;
        arp[5] = 4;
        arp[6..8].copy_from_slice(&(if reply { 2u16 } else { 1u16 }).to_be_bytes());
        arp[8..14].copy_from_slice(&mac);
        arp[14..18].copy_from_slice(&ip.octets());
        if reply {
            arp[18..24].copy_from_slice(&mac);
        }
        arp[24..28].copy_from_slice(&ip.octets());
        f
    };
    [frame(false), frame(true)]
}

/// The unsolicited neighbour advertisement of `ip` at `mac`: to the
/// all-nodes group (ff02::1, Ethernet 33:33:00:00:00:01), hop limit 255,
/// the override flag set, with the target link-layer address option.
pub fn neighbour_advert_frame(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let (ip6, na) = f[14..].split_at_mut(40);
    ip6[0] = 6 << 4;
    ip6[4..6].copy_from_slice(&32u16.to_be_bytes());
    ip6[6] = PROTO_ICMPV6;
    ip6[7] = 255;
    ip6[8..24].copy_from_slice(&ip.octets());
    ip6[24..40].copy_from_slice(&all_nodes.octets());
    na[0] = 136; // neighbour advertisement, code 0
    na[4] = 0x20; // override
    na[8..24].copy_from_slice(&ip.octets());
    na[24] = 2; // target link-layer address, 1 unit of 8 bytes
    na[25] = 1;
    na[26..32].copy_from_slice(&mac);
    let sum = transport_checksum(IpAddr::V6(ip), IpAddr::V6(all_nodes), PROTO_ICMPV6, na);
    na[2..4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The 20-byte TCP header from `src` to `dst` (ports only used): ACK,
/// with RST when `rst`, window [`TICKLE_WINDOW`], checksum 0.
fn tcp_header(src: u16, dst: u16, seq: u32, ack: u32, rst: bool) -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&src.to_be_bytes());
    t[2..4].copy_from_slice(&dst.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = TCP_ACK | if rst { TCP_RST } else { 0 };
    t[14..16].copy_from_slice(&TICKLE_WINDOW.to_be_bytes());
    t
}

/// An IP packet holding one TCP segment from `src` to `dst` with sequence
/// number `seq`, acknowledgement `ack`, ACK set and RST when `rst`: the
/// tickle ACK (seq and ack 0) makes the receiver answer with an ACK of its
/// own that shows its real numbers; a RST with those numbers resets it.
/// IPv4: TTL 255, the kernel fills in the ID and header checksum; IPv6:
/// hop limit 64.
pub fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    rst: bool,
) -> Result<Vec<u8>, SystemSocketError> {
    let mut tcp = tcp_header(src.port(), dst.port(), seq, ack, rst);
    let sum = transport_checksum(src.ip(), dst.ip(), PROTO_TCP, &tcp);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut p = Vec::with_capacity(60);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 255, PROTO_TCP, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[6 << 4, 0, 0, 0, 0, 20, PROTO_TCP, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => return Err(SystemSocketError::MixedFamilies(src, dst)),
    }
    p.extend_from_slice(&tcp);
    Ok(p)
}

/// The link-level address of interface `iface` (its index and hardware
/// type and address), from getifaddrs.
fn link_of(iface: &str) -> Result<LinkAddr, SystemSocketError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(SystemSocketError::Open)?;
    addrs
        .filter(|a| a.interface_name == iface)
        .find_map(|a| a.address.and_then(|s| s.as_link_addr().copied()))
        .ok_or_else(|| SystemSocketError::NoInterface(iface.to_string()))
}

fn send_all<S: SockaddrLike>(fd: &OwnedFd, bytes: &[u8], to: &S) -> Result<(), SystemSocketError> {
    let sent =
        sendto(fd.as_raw_fd(), bytes, to, MsgFlags::empty()).map_err(SystemSocketError::Send)?;
    if sent != bytes.len() {
        return Err(SystemSocketError::ShortSend {
            sent,
            len: bytes.len(),
        });
    }
    Ok(())
}

/// Announces that `addr` is on interface `iface` now: for IPv4 a
/// gratuitous ARP request and an ARP reply, for IPv6 an unsolicited
/// neighbour advertisement, sent with the interface's hardware address.
/// Nothing is sent on a loopback interface (success, as Samba).
pub fn send_arp(addr: IpAddr, iface: &str) -> Result<(), SystemSocketError> {
    let link = link_of(iface)?;
    if link.hatype() == ARPHRD_LOOPBACK {
        return Ok(());
    }
    let mac = match (link.hatype(), link.addr()) {
        (ARPHRD_ETHER, Some(mac)) => mac,
        (hatype, _) => {
            return Err(SystemSocketError::NotEthernet {
                iface: iface.to_string(),
                hatype,
            })
        }
    };
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(SystemSocketError::Open)?;
    match addr {
        IpAddr::V4(ip) => {
            for frame in arp_frames(mac, ip) {
                send_all(&fd, &frame, &link)?;
            }
            Ok(())
        }
        IpAddr::V6(ip) => send_all(&fd, &neighbour_advert_frame(mac, ip), &link),
    }
}

/// Sends one TCP segment (see [`tcp_packet`]) from `src` to `dst` through
/// a raw IP socket; the kernel routes it.
pub fn send_tcp(
    dst: SocketAddr,
    src: SocketAddr,
    seq: u32,
    ack: u32,
    rst: bool,
) -> Result<(), SystemSocketError> {
    // Mixed families: the kernel's answer to Samba's attempt.
    let packet = tcp_packet(src, dst, seq, ack, rst)
        .map_err(|_| SystemSocketError::Send(Errno::EAFNOSUPPORT))?;
    let family = match dst {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Raw,
    )
    .map_err(SystemSocketError::Open)?;
    match dst {
        SocketAddr::V4(d) => send_all(&fd, &packet, &SockaddrIn::from(d)),
        // A raw IPv6 socket takes port 0 (or a protocol) only.
        SocketAddr::V6(mut d) => {
            d.set_port(0);
            send_all(&fd, &packet, &SockaddrIn6::from(d))
        }
    }
}

/// A TCP segment seen by a capture: its addresses, numbers, RST flag and
/// window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    /// Where it came from.
    pub src: SocketAddr,
    /// Where it goes.
    pub dst: SocketAddr,
    /// Its sequence number.
    pub seq: u32,
    /// Its acknowledgement number.
    pub ack: u32,
    /// RST is set.
    pub rst: bool,
    /// Its window.
    pub window: u16,
}

impl TcpSegment {
    /// A segment built here ([`TICKLE_WINDOW`], and a RST or a tickle's
    /// zero sequence number), which a capture must not answer.
    pub fn is_own(&self) -> bool {
        self.window == TICKLE_WINDOW && (self.rst || self.seq == 0)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The TCP segment in an Ethernet frame (IPv4 or IPv6 carrying TCP
/// directly; no fragment other than the first), if there is one: its
/// header's first 16 bytes are enough.
pub fn parse_frame(frame: &[u8]) -> Option<TcpSegment> {
    if frame.len() < 14 {
        return None;
    }
    let ip = &frame[14..];
    let (src, dst, tcp) = match be16(frame, 12) {
        ETHERTYPE_IPV4 => {
            if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != PROTO_TCP {
                return None;
            }
            if be16(ip, 6) & 0x1fff != 0 {
                return None;
            }
            let hl = usize::from(ip[0] & 0x0f) * 4;
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip.get(hl..)?)
        }
        ETHERTYPE_IPV6 => {
            if ip.len() < 40 || ip[0] >> 4 != 6 || ip[6] != PROTO_TCP {
                return None;
            }
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), &ip[40..])
        }
        _ => return None,
    };
    if tcp.len() < 16 {
        return None;
    }
    Some(TcpSegment {
        src: SocketAddr::new(src, be16(tcp, 0)),
        dst: SocketAddr::new(dst, be16(tcp, 2)),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        rst: tcp[13] & TCP_RST != 0,
        window: be16(tcp, 14),
    })
}

/// A non-blocking socket that sees every frame of every interface (sent
/// and received), for reading TCP segments.
pub struct CaptureSocket {
    fd: OwnedFd,
}

impl CaptureSocket {
    /// Opens the capture (AF_PACKET, all protocols; root needed).
    pub fn open() -> Result<CaptureSocket, SystemSocketError> {
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthAll,
        )
        .map_err(SystemSocketError::Open)?;
        Ok(CaptureSocket { fd })
    }

    /// The descriptor, for polling.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The next frame's TCP segment: `Ok(None)` when nothing is waiting,
    /// `Ok(Some(None))` for a frame without one.
    pub fn read_segment(&self) -> Result<Option<Option<TcpSegment>>, SystemSocketError> {
        let mut buf = [0u8; 128];
        match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC) {
            Ok(n) => Ok(Some(parse_frame(&buf[..n.min(buf.len())]))),
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::EINTR) => Ok(Some(None)),
            Err(e) => Err(SystemSocketError::Receive(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071's words 0001 f203 f4f5 f6f7 sum to ddf2 (after the
        // carry), whose complement is 220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold_checksum(sum_words(&data)), 0x220d);
        // An odd byte is the high half of a word.
        assert_eq!(sum_words(&[0x12]), 0x1200);
        // A zero result is sent as ffff.
        assert_eq!(fold_checksum(0xffff), 0xffff);
    }

    #[test]
    fn gratuitous_arp_request_and_reply_bytes() {
        let [req, rep] = arp_frames(MAC, Ipv4Addr::new(192, 0, 2, 1));
        let head = "ffffffffffff02005e1020300806"; // broadcast, ours, ARP
        let arp = "0001080006040001"; // Ethernet, IPv4, 6, 4, request
        assert_eq!(
            hex(&req[..42]),
            format!("{head}{arp}02005e102030c0000201000000000000c0000201")
        );
        assert_eq!(
            hex(&rep[..42]),
            format!("{head}000108000604000202005e102030c000020102005e102030c0000201")
        );
        assert!(req[42..].iter().chain(&rep[42..]).all(|b| *b == 0));
    }

    #[test]
    fn neighbour_advert_bytes_and_checksum() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let f = neighbour_advert_frame(MAC, ip);
        assert_eq!(hex(&f[..14]), "33330000000102005e10203086dd");
        // IPv6: version 6, payload 32, ICMPv6, hop limit 255, to ff02::1.
        assert_eq!(hex(&f[14..22]), "6000000000203aff");
        assert_eq!(hex(&f[22..38]), "20010db8000000000000000000000001");
        assert_eq!(hex(&f[38..54]), "ff020000000000000000000000000001");
        // Type 136, code 0, override flag, target, option 2 length 1, MAC.
        assert_eq!(f[54], 136);
        assert_eq!(hex(&f[58..62]), "20000000");
        assert_eq!(hex(&f[62..78]), "20010db8000000000000000000000001");
        assert_eq!(hex(&f[78..86]), "020102005e102030");
        // The checksum over the pseudo-header and message verifies: summing
        // with it in place gives ffff (complement 0, sent as ffff).
        let sum = transport_checksum(
            IpAddr::V6(ip),
            "ff02::1".parse().unwrap(),
            PROTO_ICMPV6,
            &f[54..],
        );
        assert_eq!(sum, 0xffff);
        assert_ne!(be16(&f, 56), 0);
    }

    #[test]
    fn tickle_ack_ipv4_layout() {
        let src: SocketAddr = "192.0.2.1:445".parse().unwrap();
        let dst: SocketAddr = "198.51.100.9:40001".parse().unwrap();
        let p = tcp_packet(src, dst, 0, 0, false).unwrap();
        assert_eq!(p.len(), 40);
        assert_eq!(hex(&p[..20]), "4500002800000000ff060000c0000201c6336409");
        // Ports 445 -> 40001, seq 0, ack 0, offset 5, ACK, window 1234.
        assert_eq!(hex(&p[20..36]), "01bd9c410000000000000000501004d2");
        let sum = be16(&p, 36);
        // Hand-computed: pseudo-header c000+0201+c633+6409+0006+0014 and
        // header 01bd+9c41+5010+04d2.
        let words: u32 = [
            0xc000, 0x0201, 0xc633, 0x6409, 0x0006, 0x0014, 0x01bd, 0x9c41, 0x5010, 0x04d2,
        ]
        .iter()
        .sum();
        assert_eq!(sum, fold_checksum(words));
        assert_eq!(hex(&p[38..40]), "0000");
    }

    #[test]
    fn rst_ipv6_layout_and_family_mismatch() {
        let src: SocketAddr = "[2001:db8::9]:40001".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::1]:445".parse().unwrap();
        let p = tcp_packet(src, dst, 7, 9, true).unwrap();
        assert_eq!(p.len(), 60);
        assert_eq!(hex(&p[..8]), "6000000000140640");
        assert_eq!(p[40 + 13], TCP_ACK | TCP_RST);
        assert_eq!(be32(&p, 44), 7);
        assert_eq!(be32(&p, 48), 9);
        let check = transport_checksum(src.ip(), dst.ip(), PROTO_TCP, &p[40..]);
        assert_eq!(check, 0xffff, "checksum verifies");
        let v4: SocketAddr = "192.0.2.1:445".parse().unwrap();
        assert_eq!(
            tcp_packet(src, v4, 0, 0, false),
            Err(SystemSocketError::MixedFamilies(src, v4))
        );
    }

    #[test]
    fn parse_frame_reads_back_built_segments() {
        let src: SocketAddr = "192.0.2.1:445".parse().unwrap();
        let dst: SocketAddr = "198.51.100.9:40001".parse().unwrap();
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame.extend(tcp_packet(src, dst, 5, 6, true).unwrap());
        let s = parse_frame(&frame).unwrap();
        assert_eq!((s.src, s.dst, s.seq, s.ack, s.rst), (src, dst, 5, 6, true));
        assert!(s.is_own());
        let s6src: SocketAddr = "[2001:db8::9]:1".parse().unwrap();
        let s6dst: SocketAddr = "[2001:db8::1]:2".parse().unwrap();
        let mut f6 = vec![0u8; 12];
        f6.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f6.extend(tcp_packet(s6src, s6dst, 100, 0, false).unwrap());
        let s = parse_frame(&f6).unwrap();
        assert_eq!((s.src, s.dst, s.seq, s.rst), (s6src, s6dst, 100, false));
        assert!(!s.is_own(), "a non-zero seq without RST is someone else's");
        // ARP and truncated frames carry no segment.
        assert_eq!(parse_frame(&arp_frames(MAC, Ipv4Addr::LOCALHOST)[0]), None);
        assert_eq!(parse_frame(&frame[..30]), None);
    }
}
