//! `ctdb_killtcp`: resets TCP connections to an address this host serves,
//! a drop-in for Samba's /usr/libexec/ctdb/ctdb_killtcp, which
//! 10.interface's releaseip runs (ctdb/config/functions
//! `kill_tcp_connections`).
//!
//!   ctdb_killtcp IFACE [CLIENT:PORT SERVER:PORT]
//!
//! Without the pair, connections are read from stdin, one "CLIENT SERVER"
//! a line (empty lines and '#' comments skipped). For each connection a
//! tickle ACK goes to the server from the client's address; the server's
//! answering ACK, seen on a capture of every interface, shows its sequence
//! numbers, and a RST with them (again from the client's address) resets
//! it. Tickles are repeated every 100 ms, up to 50 times, 300 connections
//! at a time, until every connection was answered. Exit 0 when done (also
//! when some never answered), 1 with the usage, 255 on bad input or when
//! the capture cannot be opened. Messages go to stderr at CTDB_DEBUGLEVEL
//! (ERROR by default), as Samba's.

use ctdbd::system_socket::{self, CaptureSocket, SystemSocketError, TcpSegment};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::HashSet;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

const MAX_ATTEMPTS: u32 = 50;
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
const BATCH_SIZE: usize = 300;

const ERR: u32 = 0;
const INFO: u32 = 5;
const DEBUG: u32 = 10;

/// A connection to reset: the remote client and this host's server end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Connection {
    client: SocketAddr,
    server: SocketAddr,
}

impl std::fmt::Display for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.client, self.server)
    }
}

/// Why the input was refused.
#[derive(Debug)]
enum InputError {
    /// A command-line address did not parse.
    BadEndpoint(String),
    /// A stdin line did not hold two addresses of one family.
    BadLine,
}

/// Messages at or below this level are printed.
struct Log {
    level: u32,
}

impl Log {
    fn from_env() -> Log {
        let level = std::env::var("CTDB_DEBUGLEVEL")
            .ok()
            .map_or(ERR, |s| parse_level(&s).unwrap_or(ERR));
        Log { level }
    }

    fn at(&self, level: u32, msg: std::fmt::Arguments<'_>) {
        if level <= self.level {
            eprintln!("{msg}");
        }
    }
}

/// CTDB_DEBUGLEVEL: a number 0-10 or a (prefix of a) level name.
use ctdb_logging::parse_debug_level as parse_level;

/// An address as Samba's tools take it: IPv4, IPv6 (bracketed or not);
/// an IPv4-mapped IPv6 address is its IPv4 address.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if !s.contains(':') {
        return s.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let s = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s);
    let v6: Ipv6Addr = s.parse().ok()?;
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// "ADDRESS:PORT" (the port after the last ':'; digits only, taken modulo
/// 65536 as Samba stores it).
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse::<u64>().ok()? as u16;
    Some(SocketAddr::new(parse_ip(ip)?, port))
}

/// One stdin line: `None` for a line to skip.
fn parse_line(line: &str) -> Result<Option<Connection>, InputError> {
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let (Some(a), Some(b)) = (words.next(), words.next()) else {
        return Err(InputError::BadLine);
    };
    let client = parse_endpoint(a).ok_or(InputError::BadLine)?;
    let server = parse_endpoint(b).ok_or(InputError::BadLine)?;
    if client.is_ipv4() != server.is_ipv4() {
        return Err(InputError::BadLine);
    }
    Ok(Some(Connection { client, server }))
}

/// The connections of the command line or of stdin, in their order, each
/// once.
fn read_connections(args: &[String]) -> Result<Vec<Connection>, InputError> {
    let mut list = Vec::new();
    if args.len() == 4 {
        let end = |s: &String| parse_endpoint(s).ok_or_else(|| InputError::BadEndpoint(s.clone()));
        list.push(Connection {
            client: end(&args[2])?,
            server: end(&args[3])?,
        });
        return Ok(list);
    }
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|_| InputError::BadLine)?;
        if let Some(c) = parse_line(&line)? {
            if !list.contains(&c) {
                list.push(c);
            }
        }
    }
    Ok(list)
}

/// The connections still to reset and the capture that sees their
/// answers.
struct Reset {
    pending: Vec<Connection>,
    index: HashSet<Connection>,
    capture: CaptureSocket,
    log: Log,
}

impl Reset {
    /// Tickles up to BATCH_SIZE of the pending connections.
    fn tickle_batch(&self) {
        for c in self.pending.iter().take(BATCH_SIZE) {
            self.log.at(
                DEBUG,
                format_args!(
                    "reset_connections_tickle_connection: Sending tickle ACK for connection '{c}'"
                ),
            );
            if let Err(e) = system_socket::send_tcp(c.server, c.client, 0, 0, false) {
                self.log.at(ERR, format_args!("{e}"));
                self.log.at(
                    ERR,
                    format_args!("reset_connections_tickle_connection: Error sending tickle ACK"),
                );
            }
        }
    }

    /// A captured segment from a server to a client: if it answers a
    /// pending connection, that connection gets its RST and is done.
    fn answer(&mut self, s: TcpSegment) {
        let conn = Connection {
            client: s.dst,
            server: s.src,
        };
        if s.is_own() {
            self.log.at(
                DEBUG,
                format_args!(
                    "reset_connections_capture_tcp_handler: Ignoring sent packet: {} {}, seq={}, ack_seq={}, rst={}, window={}",
                    conn.server, conn.client, s.seq, s.ack, u8::from(s.rst) * 4, s.window
                ),
            );
            return;
        }
        if !self.index.remove(&conn) {
            self.log.at(
                DEBUG,
                format_args!(
                    "reset_connections_capture_tcp_handler: Ignoring packet for unknown connection: {conn}"
                ),
            );
            return;
        }
        self.pending.retain(|c| *c != conn);
        self.log.at(
            INFO,
            format_args!("Sending a TCP RST to for connection {conn}"),
        );
        if let Err(e) = system_socket::send_tcp(conn.server, conn.client, s.ack, s.seq, true) {
            self.log.at(ERR, format_args!("{e}"));
            self.log.at(
                ERR,
                format_args!(
                    "reset_connections_capture_tcp_handler: Error sending TCP RST for connection"
                ),
            );
        }
    }

    /// Reads captured segments until `until`.
    fn capture_until(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let ms = (until - now).as_millis().min(1000) as u16;
            let mut fds = [PollFd::new(self.capture.fd().as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
                continue;
            }
            loop {
                match self.capture.read_segment() {
                    Ok(Some(Some(s))) => self.answer(s),
                    Ok(Some(None)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    /// Tickle, listen, repeat: until nothing is pending or the attempts
    /// are used up.
    fn run(&mut self) {
        let mut attempts = 0;
        loop {
            self.tickle_batch();
            attempts += 1;
            if self.pending.is_empty() || attempts >= MAX_ATTEMPTS {
                return;
            }
            self.capture_until(Instant::now() + RETRY_INTERVAL);
        }
    }
}

fn main() {
    let log = Log::from_env();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 && args.len() != 4 {
        println!(
            "usage: {} <interface> [ <srcip:port> <dstip:port> ]",
            args.first().map_or("ctdb_killtcp", String::as_str)
        );
        std::process::exit(1);
    }
    let pending = match read_connections(&args) {
        Ok(list) => list,
        Err(InputError::BadEndpoint(s)) => {
            log.at(ERR, format_args!("Bad IP:port '{s}'"));
            std::process::exit(255);
        }
        Err(InputError::BadLine) => {
            log.at(
                ERR,
                format_args!("Unable to parse connections (Invalid argument)"),
            );
            std::process::exit(255);
        }
    };
    if pending.is_empty() {
        return;
    }
    log.at(
        DEBUG,
        format_args!(
            "reset_connections_send: Adding {} connections to hash",
            pending.len()
        ),
    );
    let capture = match CaptureSocket::open() {
        Ok(c) => c,
        Err(e) => {
            let why = match e {
                SystemSocketError::Open(errno) => errno.desc(),
                _ => "Input/output error",
            };
            log.at(
                ERR,
                format_args!("ctdb_sys_open_capture_socket: Failed to open raw socket"),
            );
            log.at(
                ERR,
                format_args!(
                    "Failed to open capture socket on iface '{}' ({why})",
                    args[1]
                ),
            );
            log.at(
                ERR,
                format_args!("Failed to kill connections (Input/output error)"),
            );
            std::process::exit(255);
        }
    };
    log.at(
        DEBUG,
        format_args!(
            "ctdb_sys_open_capture_socket: Opened raw socket for TCP tickle capture (fd={})",
            capture.fd().as_raw_fd()
        ),
    );
    let index = pending.iter().copied().collect();
    let mut reset = Reset {
        pending,
        index,
        capture,
        log,
    };
    reset.run();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_samba_takes_them() {
        let v4 = parse_endpoint("192.0.2.1:445").unwrap();
        assert_eq!(v4, "192.0.2.1:445".parse().unwrap());
        let v6 = parse_endpoint("[2001:db8::1]:445").unwrap();
        assert_eq!(v6, "[2001:db8::1]:445".parse().unwrap());
        // Unbracketed IPv6: the port is after the last ':'.
        assert_eq!(parse_endpoint("2001:db8::1:445"), Some(v6));
        // IPv4-mapped is IPv4.
        assert_eq!(parse_endpoint("[::ffff:192.0.2.1]:445"), Some(v4));
        assert_eq!(parse_endpoint("192.0.2.1"), None);
        assert_eq!(parse_endpoint("192.0.2.1:"), None);
        assert_eq!(parse_endpoint("192.0.2.1:44x"), None);
        assert_eq!(parse_endpoint("foo:1"), None);
    }

    #[test]
    fn lines_skip_comments_and_refuse_mixed_families() {
        assert!(parse_line("").unwrap().is_none());
        assert!(parse_line("# x").unwrap().is_none());
        let c = parse_line("198.51.100.9:40001\t192.0.2.1:445 extra")
            .unwrap()
            .unwrap();
        assert_eq!(c.client, "198.51.100.9:40001".parse().unwrap());
        assert_eq!(c.server, "192.0.2.1:445".parse().unwrap());
        assert_eq!(c.to_string(), "198.51.100.9:40001 192.0.2.1:445");
        assert!(parse_line("198.51.100.9:1").is_err());
        assert!(parse_line("  ").is_err());
        assert!(parse_line("198.51.100.9:1 [2001:db8::1]:2").is_err());
    }
}
