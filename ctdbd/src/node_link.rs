//! The node transport, as Samba's ctdb_tcp: every node listens on
//! `<node address>:4379`, and keeps one *outgoing* connection to every other
//! node (from a socket bound to its own node address) over which it sends,
//! and accepts one *incoming* connection from every other node, over which
//! it receives.  A connection from an address not in the nodes file is
//! refused.  A node is connected once both directions are up; any error,
//! EOF, bytes on the outgoing connection or a packet with a bad length,
//! magic or version make it dead: both connections are torn down and the
//! outgoing one is retried.  A connect that has not finished after one
//! second is abandoned and started again (Samba's connect timeout), and a
//! failed one is retried after one second.
//!
//! This module moves bytes and whole packets only; the daemon glue
//! (`Daemon::node_dead`, `node_connected`, link events) is at the end.

use crate::daemon::Daemon;
use crate::keepalive::Liveness;
use crate::timers::TimerEvent;
use crate::{log_debug, log_err, log_info, log_notice};
use ctdb_protocol::header::HEADER_LEN;
use ctdb_protocol::packet::Framer;
use ctdb_protocol::{Operation, Pnn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Poll token of the node-transport TCP listener.
pub const NODE_LISTENER: Token = Token(3);
/// Node connections get poll tokens from this one up (above every client
/// token); a token is never reused.
pub const FIRST_LINK_TOKEN: usize = 1 << (usize::BITS - 2);
/// How long a connect may take, and how long after a failed one the next
/// starts (Samba's one second).
pub const CONNECT_RETRY: Duration = Duration::from_secs(1);
/// Most bytes queued for one node; a packet that would exceed it is
/// dropped (and logged).
pub const MAX_QUEUED: usize = 256 << 20;

/// Which of the two connections of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Accepted from the node: packets are read from it.
    Incoming,
    /// Opened to the node: packets are written to it.
    Outgoing,
}

/// A timer of the node transport; `attempt` says which connect it was
/// armed for, so a stale one is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkTimer {
    /// Start the outgoing connection to `pnn`.
    Connect { pnn: Pnn, attempt: u64 },
    /// Abandon a connect to `pnn` that has not finished, and start again.
    ConnectTimeout { pnn: Pnn, attempt: u64 },
}

/// What the transport tells the daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// A whole packet read from `from`'s incoming connection.
    Packet { from: Pnn, bytes: Vec<u8> },
    /// Both connections to `pnn` are up (Samba's node_connected upcall).
    BothUp(Pnn),
    /// The connection to `pnn` failed (Samba's node_dead upcall).
    Dead { pnn: Pnn, why: String },
    /// Arm a transport timer.
    Timer { at: Instant, timer: LinkTimer },
}

/// Why a packet was not queued for a node.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// There is no established outgoing connection to the node.
    NotConnected,
    /// The node's queue is full (it does not read).
    QueueFull,
    /// Writing failed: the connection is broken.
    Broken(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotConnected => write!(f, "no outgoing connection"),
            SendError::QueueFull => write!(f, "more than {MAX_QUEUED} bytes queued"),
            SendError::Broken(why) => write!(f, "write failed: {why}"),
        }
    }
}

/// One TCP connection to or from a node.
struct Link {
    stream: TcpStream,
    token: Token,
    framer: Framer,
    wbuf: VecDeque<u8>,
    want_write: bool,
}

/// One node of the nodes file, as the transport sees it.
pub struct Peer {
    /// Its address (port 4379).
    pub addr: SocketAddr,
    /// A `#` line in the nodes file: never connected.
    pub deleted: bool,
    incoming: Option<Link>,
    outgoing: Option<Link>,
    /// The outgoing connect has finished.
    out_up: bool,
    /// Bumped whenever an outgoing connect starts or is torn down.
    attempt: u64,
    /// Not NODE_FLAGS_DISCONNECTED (this node is always connected to itself).
    pub connected: bool,
    /// Packets received since the last keepalive check, and missed checks.
    pub liveness: Liveness,
}

impl Peer {
    /// A node of the nodes file with no connection yet; `attempt` numbers
    /// its outgoing connects.
    fn new(node: &crate::nodes::Node, connected: bool, attempt: u64) -> Peer {
        Peer {
            addr: node.addr,
            deleted: node.deleted,
            incoming: None,
            outgoing: None,
            out_up: false,
            attempt,
            connected,
            liveness: Liveness::default(),
        }
    }
}

/// The listener and the connections to and from every node.
pub struct NodeLinks {
    registry: Registry,
    listener: Option<TcpListener>,
    own: Pnn,
    peers: Vec<Peer>,
    tokens: HashMap<Token, (Pnn, Direction)>,
    next_token: usize,
}

/// "addr:port", as Samba names nodes in its log.
fn name(addr: SocketAddr) -> String {
    format!("{}:{}", addr.ip(), addr.port())
}

impl NodeLinks {
    /// The transport for `nodes` (by pnn) seen from `own`, with the listener
    /// registered (tests pass none).
    pub fn new(
        registry: Registry,
        listener: Option<std::net::TcpListener>,
        nodes: &[crate::nodes::Node],
        own: Pnn,
    ) -> std::io::Result<NodeLinks> {
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                let mut l = TcpListener::from_std(l);
                registry.register(&mut l, NODE_LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let peers = nodes
            .iter()
            .map(|n| Peer::new(n, n.pnn == own.0, 0))
            .collect();
        Ok(NodeLinks {
            registry,
            listener,
            own,
            peers,
            tokens: HashMap::new(),
            next_token: FIRST_LINK_TOKEN,
        })
    }

    /// The node `pnn`, if the nodes file has it.
    pub fn peer(&self, pnn: Pnn) -> Option<&Peer> {
        self.peers.get(pnn.0 as usize)
    }

    /// The node `pnn`, mutable.
    pub fn peer_mut(&mut self, pnn: Pnn) -> Option<&mut Peer> {
        self.peers.get_mut(pnn.0 as usize)
    }

    /// Every other node that is not deleted.
    pub fn others(&self) -> Vec<Pnn> {
        (0..self.peers.len() as u32)
            .map(Pnn)
            .filter(|p| *p != self.own && !self.peers[p.0 as usize].deleted)
            .collect()
    }

    /// True when `pnn` is a node that is not marked disconnected.
    pub fn is_connected(&self, pnn: Pnn) -> bool {
        self.peer(pnn).is_some_and(|p| p.connected && !p.deleted)
    }

    /// Other nodes that are connected (Samba's num_connected, which does
    /// not count this node).
    pub fn num_connected(&self) -> usize {
        self.others()
            .into_iter()
            .filter(|p| self.is_connected(*p))
            .count()
    }

    /// True when a poll token belongs to a node connection.
    pub fn owns(token: Token) -> bool {
        token.0 >= FIRST_LINK_TOKEN
    }

    fn register(&mut self, stream: &mut TcpStream, pnn: Pnn, dir: Direction) -> Option<Token> {
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = match dir {
            Direction::Incoming => Interest::READABLE,
            Direction::Outgoing => Interest::READABLE | Interest::WRITABLE,
        };
        if let Err(e) = self.registry.register(stream, token, interest) {
            log_err!("Failed to register node connection: {}", e);
            return None;
        }
        self.tokens.insert(token, (pnn, dir));
        Some(token)
    }

    fn drop_link(&mut self, link: Option<Link>) {
        if let Some(mut l) = link {
            self.tokens.remove(&l.token);
            let _ = self.registry.deregister(&mut l.stream);
        }
    }

    /// Closes the outgoing connection (established or pending) to `pnn`.
    pub fn stop_outgoing(&mut self, pnn: Pnn) {
        let Some(p) = self.peer_mut(pnn) else { return };
        let link = p.outgoing.take();
        p.out_up = false;
        p.attempt += 1;
        self.drop_link(link);
    }

    /// Closes the incoming connection from `pnn`.
    pub fn stop_incoming(&mut self, pnn: Pnn) {
        let Some(p) = self.peer_mut(pnn) else { return };
        let link = p.incoming.take();
        self.drop_link(link);
    }

    /// Tears down both connections of a dead node and starts the outgoing
    /// one again at `at` (Samba's restart method, which reconnects at once).
    pub fn restart(&mut self, pnn: Pnn, at: Instant) -> Vec<LinkEvent> {
        log_notice!("Tearing down connection to dead node :{}", pnn.0);
        self.stop_incoming(pnn);
        self.stop_outgoing(pnn);
        self.connect_later(pnn, at)
    }

    /// A Connect timer for the current attempt of `pnn`, due at `at`.
    fn connect_later(&self, pnn: Pnn, at: Instant) -> Vec<LinkEvent> {
        match self.peer(pnn) {
            Some(p) if pnn != self.own && !p.deleted => vec![LinkEvent::Timer {
                at,
                timer: LinkTimer::Connect {
                    pnn,
                    attempt: p.attempt,
                },
            }],
            _ => Vec::new(),
        }
    }

    /// Makes slot `node.pnn` the node of a reloaded nodes file: a new slot
    /// is added; a node whose address or deletion changed loses its
    /// connections and starts afresh.  Returns the connect timer of a node
    /// to connect to (none for an unchanged or deleted node).
    pub fn reload_peer(&mut self, node: &crate::nodes::Node, now: Instant) -> Vec<LinkEvent> {
        let pnn = Pnn(node.pnn);
        let attempt = match self.peer(pnn) {
            Some(p) if p.addr == node.addr && p.deleted == node.deleted => return Vec::new(),
            Some(p) => p.attempt + 1,
            None => 0,
        };
        self.stop_incoming(pnn);
        self.stop_outgoing(pnn);
        let fresh = Peer::new(node, false, attempt);
        match self.peers.get_mut(pnn.0 as usize) {
            Some(p) => *p = fresh,
            None => self.peers.push(fresh),
        }
        self.connect_later(pnn, now)
    }

    /// The first Connect timers: one per other node, due now.
    pub fn start(&self, now: Instant) -> Vec<LinkEvent> {
        self.others()
            .into_iter()
            .flat_map(|p| self.connect_later(p, now))
            .collect()
    }

    /// Handles a transport timer; a timer of an earlier attempt is ignored.
    pub fn timer(&mut self, t: LinkTimer, now: Instant) -> Vec<LinkEvent> {
        match t {
            LinkTimer::Connect { pnn, attempt } => match self.peer(pnn) {
                Some(p) if p.attempt == attempt && p.outgoing.is_none() => {
                    self.start_outgoing(pnn, now)
                }
                _ => Vec::new(),
            },
            LinkTimer::ConnectTimeout { pnn, attempt } => match self.peer(pnn) {
                Some(p) if p.attempt == attempt && p.outgoing.is_some() && !p.out_up => {
                    self.stop_outgoing(pnn);
                    self.start_outgoing(pnn, now)
                }
                _ => Vec::new(),
            },
        }
    }

    /// A non-blocking TCP socket bound to this node's address, connecting to
    /// `to`.
    fn open(&self, to: SocketAddr) -> Result<TcpStream, String> {
        let own = self
            .peer(self.own)
            .map(|p| p.addr.ip())
            .ok_or("own node address unknown")?;
        let family = match own {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = sock::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| format!("Failed to create socket: {e}"))?;
        let local = SockaddrStorage::from(SocketAddr::new(own, 0));
        sock::bind(fd.as_raw_fd(), &local).map_err(|e| format!("Failed to bind socket ({e})"))?;
        match sock::connect(fd.as_raw_fd(), &SockaddrStorage::from(to)) {
            Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
            Err(e) => return Err(format!("connect to {} failed: {e}", name(to))),
        }
        Ok(TcpStream::from_std(std::net::TcpStream::from(fd)))
    }

    /// Starts a non-blocking connect to `pnn`; its end shows as a writable
    /// event.  A failure retries in a second.
    fn start_outgoing(&mut self, pnn: Pnn, now: Instant) -> Vec<LinkEvent> {
        let Some(addr) = self.peer(pnn).map(|p| p.addr) else {
            return Vec::new();
        };
        let mut stream = match self.open(addr) {
            Ok(s) => s,
            Err(why) => {
                log_debug!("{}", why);
                self.stop_outgoing(pnn);
                return self.connect_later(pnn, now + CONNECT_RETRY);
            }
        };
        let Some(token) = self.register(&mut stream, pnn, Direction::Outgoing) else {
            self.stop_outgoing(pnn);
            return self.connect_later(pnn, now + CONNECT_RETRY);
        };
        let p = &mut self.peers[pnn.0 as usize];
        p.attempt += 1;
        p.out_up = false;
        p.outgoing = Some(Link {
            stream,
            token,
            framer: Framer::new(),
            wbuf: VecDeque::new(),
            want_write: true,
        });
        vec![LinkEvent::Timer {
            at: now + CONNECT_RETRY,
            timer: LinkTimer::ConnectTimeout {
                pnn,
                attempt: p.attempt,
            },
        }]
    }

    /// Accepts every waiting connection: one from a node's address becomes
    /// that node's incoming connection, others are refused.
    pub fn accept(&mut self) -> Vec<LinkEvent> {
        let mut events = Vec::new();
        while let Some(l) = &self.listener {
            match l.accept() {
                Ok((stream, addr)) => events.extend(self.adopt(stream, addr)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_err!("accept on node socket failed: {}", e);
                    break;
                }
            }
        }
        events
    }

    fn adopt(&mut self, mut stream: TcpStream, from: SocketAddr) -> Vec<LinkEvent> {
        let found = self
            .peers
            .iter()
            .position(|p| !p.deleted && p.addr.ip() == from.ip());
        let Some(i) = found else {
            log_err!("Refused connection from unknown node {}", from.ip());
            return Vec::new();
        };
        let pnn = Pnn(i as u32);
        if self.peers[i].incoming.is_some() {
            log_err!(
                "Incoming queue active, rejecting connection from {}",
                from.ip()
            );
            return Vec::new();
        }
        let _ = sock::setsockopt(&stream, sockopt::KeepAlive, &true);
        let Some(token) = self.register(&mut stream, pnn, Direction::Incoming) else {
            return Vec::new();
        };
        log_debug!("Created SOCKET to incoming ctdb connection from {}", from);
        let p = &mut self.peers[i];
        p.incoming = Some(Link {
            stream,
            token,
            framer: Framer::new(),
            wbuf: VecDeque::new(),
            want_write: false,
        });
        if p.out_up {
            vec![LinkEvent::BothUp(pnn)]
        } else {
            Vec::new()
        }
    }

    /// Handles a poll event on a node connection.
    pub fn ready(&mut self, token: Token, readable: bool, writable: bool) -> Vec<LinkEvent> {
        let Some(&(pnn, dir)) = self.tokens.get(&token) else {
            return Vec::new();
        };
        match dir {
            Direction::Incoming if readable => self.read_incoming(pnn),
            Direction::Incoming => Vec::new(),
            Direction::Outgoing => self.outgoing_ready(pnn, readable, writable),
        }
    }

    fn outgoing_ready(&mut self, pnn: Pnn, readable: bool, writable: bool) -> Vec<LinkEvent> {
        let p = &mut self.peers[pnn.0 as usize];
        let Some(link) = p.outgoing.as_mut() else {
            return Vec::new();
        };
        if !p.out_up {
            return self.connect_finished(pnn, Instant::now());
        }
        if readable {
            // Nothing is ever sent on this direction: data or EOF means the
            // peer went away.
            let mut buf = [0u8; 512];
            match link.stream.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(0) => return self.dead(pnn, "connection closed"),
                Ok(_) => return self.dead(pnn, "unexpected data on outgoing connection"),
                Err(e) => return self.dead(pnn, &e.to_string()),
            }
        }
        if writable {
            if let Err(why) = self.flush(pnn) {
                return self.dead(pnn, &why);
            }
        }
        Vec::new()
    }

    fn dead(&self, pnn: Pnn, why: &str) -> Vec<LinkEvent> {
        vec![LinkEvent::Dead {
            pnn,
            why: why.to_string(),
        }]
    }

    /// The connect to `pnn` ended: set the connection up, or retry.
    fn connect_finished(&mut self, pnn: Pnn, now: Instant) -> Vec<LinkEvent> {
        let p = &mut self.peers[pnn.0 as usize];
        let Some(link) = p.outgoing.as_mut() else {
            return Vec::new();
        };
        let failed = match link.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e.to_string()),
            Ok(None) => match link.stream.peer_addr() {
                Ok(_) => None,
                // Not finished yet (a spurious event).
                Err(e) if e.kind() == ErrorKind::NotConnected => return Vec::new(),
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(why) = failed {
            log_debug!("Connect to node {} failed: {}", pnn.0, why);
            self.stop_outgoing(pnn);
            return self.connect_later(pnn, now + CONNECT_RETRY);
        }
        let _ = link.stream.set_nodelay(true);
        let _ = sock::setsockopt(&link.stream, sockopt::KeepAlive, &true);
        p.out_up = true;
        log_info!("Outgoing connection to node {} established", pnn.0);
        let both = p.incoming.is_some();
        if let Err(why) = self.flush(pnn) {
            return self.dead(pnn, &why);
        }
        if both {
            vec![LinkEvent::BothUp(pnn)]
        } else {
            Vec::new()
        }
    }

    fn read_incoming(&mut self, pnn: Pnn) -> Vec<LinkEvent> {
        let Some(link) = self.peers[pnn.0 as usize].incoming.as_mut() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let mut end: Option<String> = None;
        // Packets are taken out after every read, so that a large one that
        // a read completed is handed over whole before the next read.
        while end.is_none() {
            match link.framer.read_from(&mut link.stream) {
                Ok(0) => end = Some("connection closed".into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => end = Some(e.to_string()),
            }
            loop {
                match link.framer.next_packet() {
                    Ok(Some(bytes)) => events.push(LinkEvent::Packet { from: pnn, bytes }),
                    Ok(None) => break,
                    Err(why) => {
                        log_err!("Bad packet from node {}: {} rejected", pnn.0, why);
                        end = Some(format!("bad packet: {why}"));
                        break;
                    }
                }
            }
        }
        if let Some(why) = end {
            events.extend(self.dead(pnn, &why));
        }
        events
    }

    /// Bytes queued on the outgoing connection to `pnn` and not written yet
    /// (0 without a connection).
    pub fn queued(&self, pnn: Pnn) -> usize {
        self.peers
            .get(pnn.0 as usize)
            .and_then(|p| p.outgoing.as_ref())
            .map_or(0, |l| l.wbuf.len())
    }

    /// Queues a whole packet on the outgoing connection to `pnn` and writes
    /// what the socket takes.
    pub fn send(&mut self, pnn: Pnn, bytes: &[u8]) -> Result<(), SendError> {
        let Some(p) = self.peers.get_mut(pnn.0 as usize) else {
            return Err(SendError::NotConnected);
        };
        let link = match p.outgoing.as_mut() {
            Some(l) if p.out_up => l,
            _ => return Err(SendError::NotConnected),
        };
        if link.wbuf.len() + bytes.len() > MAX_QUEUED {
            return Err(SendError::QueueFull);
        }
        link.wbuf.extend(bytes);
        self.flush(pnn).map_err(SendError::Broken)
    }

    /// Writes queued output to `pnn`; watches for WRITABLE while some is left.
    fn flush(&mut self, pnn: Pnn) -> Result<(), String> {
        let Some(link) = self.peers[pnn.0 as usize].outgoing.as_mut() else {
            return Ok(());
        };
        while !link.wbuf.is_empty() {
            let (front, _) = link.wbuf.as_slices();
            match link.stream.write(front) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => {
                    link.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        if link.wbuf.is_empty() && link.wbuf.capacity() > crate::transport::KEPT_WRITE_CAPACITY {
            link.wbuf = VecDeque::new();
        }
        let want = !link.wbuf.is_empty();
        if want != link.want_write {
            link.want_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .registry
                .reregister(&mut link.stream, link.token, interest);
        }
        Ok(())
    }
}

/// The source node a received packet counts for in the keepalive check:
/// its srcnode, except that a redirected call (hop count above 0) does not
/// count, as in Samba.
pub fn counted_source(bytes: &[u8]) -> Option<Pnn> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let op = Operation::from_u32(word(16)?);
    if op == Operation::ReqCall && word(HEADER_LEN + 12).is_some_and(|hops| hops != 0) {
        return None;
    }
    word(24).map(Pnn)
}

impl Daemon {
    /// Starts the node transport: a connect to every other node now, and
    /// the keepalive checks.
    pub(crate) fn start_links(&mut self, now: Instant) {
        let events = self.links.start(now);
        self.link_events(events);
        self.start_keepalive(now);
        self.start_tickle_updates(now);
    }

    /// Accepts node connections.
    pub(crate) fn links_accept(&mut self) {
        let events = self.links.accept();
        self.link_events(events);
    }

    /// A poll event on a node connection.
    pub(crate) fn link_ready(&mut self, token: Token, readable: bool, writable: bool) {
        let events = self.links.ready(token, readable, writable);
        self.link_events(events);
    }

    /// A transport timer fired.
    pub(crate) fn link_timer(&mut self, t: LinkTimer, now: Instant) {
        let events = self.links.timer(t, now);
        self.link_events(events);
    }

    /// Acts on what the transport reported, in order; the actions they
    /// queue are executed by the loop.
    pub(crate) fn link_events(&mut self, events: Vec<LinkEvent>) {
        for ev in events {
            match ev {
                LinkEvent::Packet { from, bytes } => self.node_packet(from, &bytes),
                LinkEvent::BothUp(pnn) => self.node_connected(pnn),
                LinkEvent::Dead { pnn, why } => {
                    log_info!("Connection to node {} failed: {}", pnn.0, why);
                    self.node_dead(pnn);
                }
                LinkEvent::Timer { at, timer } => self.arm_timer(at, TimerEvent::Link(timer)),
            }
        }
    }

    /// A whole packet from a node's incoming connection: counted for the
    /// keepalive check and dispatched as coming from that node.  A packet
    /// whose body does not decode is logged and dropped.
    pub(crate) fn node_packet(&mut self, from: Pnn, bytes: &[u8]) {
        self.stats.node_packets_recv += 1;
        if let Some(what) = control_opcode(bytes) {
            log_debug!("Control {} from node {}", what, from.0);
        }
        if let Some(src) = counted_source(bytes) {
            if let Some(p) = self.links.peer_mut(src) {
                p.liveness.received();
            }
        }
        if self.attach_gate.holds(from, bytes) {
            return;
        }
        self.node_packet_now(from, bytes);
    }

    /// Dispatches a node's packet (one the attach gate let through).
    pub(crate) fn node_packet_now(&mut self, from: Pnn, bytes: &[u8]) {
        if let Err(why) = self.packet(crate::transport::Origin::Node(from), bytes) {
            log_err!("Malformed packet from node {}: {}, dropped", from.0, why);
        }
    }

    /// Writes a packet to a node; a broken connection makes the node dead.
    pub(crate) fn send_to_node(&mut self, pnn: Pnn, bytes: &[u8]) {
        self.stats.node_packets_sent += 1;
        if let Some(what) = control_opcode(bytes) {
            log_debug!("Control {} to node {}", what, pnn.0);
        }
        if let Some(p) = self.links.peer_mut(pnn) {
            p.liveness.sent();
        }
        match self.links.send(pnn, bytes) {
            Ok(()) => {}
            Err(SendError::NotConnected) => {
                log_debug!("No outgoing connection to node {}, dropping packet", pnn.0)
            }
            Err(SendError::QueueFull) => {
                log_err!("Queue to node {} is full, dropping packet", pnn.0)
            }
            Err(SendError::Broken(why)) => {
                log_info!("Connection to node {} failed: {}", pnn.0, why);
                self.node_dead(pnn);
            }
        }
    }

    /// The node is dead (Samba's ctdb_node_dead): its connections are torn
    /// down and retried, and, unless it already was, it is marked
    /// disconnected and every control waiting for its reply fails with
    /// "node is disconnected".  Other parts of the daemon that keep state
    /// per node hook in here.
    pub(crate) fn node_dead(&mut self, pnn: Pnn) {
        if pnn.0 == self.state.pnn {
            return;
        }
        // A node that just died is reconnected at once; one that was
        // already disconnected (a connection refused by a peer that has
        // not noticed yet) after the connect retry delay, so that the two
        // never spin.
        let was_connected = self.links.is_connected(pnn);
        let now = Instant::now();
        let at = if was_connected {
            now
        } else {
            now + CONNECT_RETRY
        };
        let events = self.links.restart(pnn, at);
        self.link_events(events);
        let own = self.own_name();
        let Some(p) = self.links.peer_mut(pnn) else {
            return;
        };
        let peer_name = name(p.addr);
        if !p.connected {
            log_info!(
                "{}: node {} is already marked disconnected: {} connected",
                own,
                peer_name,
                self.links.num_connected()
            );
            return;
        }
        p.connected = false;
        p.liveness = Liveness::default();
        self.state.mark_disconnected(pnn);
        log_err!(
            "{}: node {} is dead: {} connected",
            own,
            peer_name,
            self.links.num_connected()
        );
        self.cancel_controls_to(pnn);
    }

    /// The node is connected (Samba's ctdb_node_connected): both connections
    /// are up, or packets came from it while it was marked disconnected.
    pub(crate) fn node_connected(&mut self, pnn: Pnn) {
        let own = self.own_name();
        let Some(p) = self.links.peer_mut(pnn) else {
            return;
        };
        if p.connected {
            return;
        }
        p.connected = true;
        p.liveness.dead_count = 0;
        self.state.mark_connected(pnn);
        let peer_name = name(p.addr);
        log_err!(
            "{}: connected to {} - {} connected",
            own,
            peer_name,
            self.links.num_connected()
        );
    }

    /// This node's name in the log ("addr:port").
    fn own_name(&self) -> String {
        self.links
            .peer(Pnn(self.state.pnn))
            .map_or_else(|| "?".to_string(), |p| name(p.addr))
    }

    /// The flags of `pnn` as the node map keeps them: DELETED (and
    /// DISCONNECTED) for a deleted or unknown node, DISCONNECTED while the
    /// transport has no link, and the flags the recovery daemon set.
    pub(crate) fn link_flags(&self, pnn: u32) -> u32 {
        use ctdb_protocol::types::NODE_FLAGS_DELETED;
        self.state.flags_of(Pnn(pnn)).unwrap_or(NODE_FLAGS_DELETED)
    }
}

/// The opcode of a REQ_CONTROL packet, when the debug level logs it (which
/// controls pass between the nodes, e.g. of a mixed cluster).
fn control_opcode(bytes: &[u8]) -> Option<ctdb_protocol::ControlOpcode> {
    if crate::logging::level() < crate::config::DEBUG_DEBUG {
        return None;
    }
    match ctdb_protocol::Packet::decode(bytes) {
        Ok((_, ctdb_protocol::Packet::ReqControl(c))) => Some(c.opcode),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::Node;
    use ctdb_protocol::packet::{ReqCall, ReqKeepalive};
    use ctdb_protocol::{DbId, Header, Packet};
    use mio::{Events, Poll};

    /// One side of a socket test: its poll, its transport and the timers
    /// and events it produced.
    struct Side {
        poll: Poll,
        links: NodeLinks,
        timers: Vec<(Instant, LinkTimer)>,
        seen: Vec<LinkEvent>,
    }

    impl Side {
        fn new(nodes: &[Node], own: u32, listener: std::net::TcpListener) -> Side {
            let poll = Poll::new().unwrap();
            let reg = poll.registry().try_clone().unwrap();
            let links = NodeLinks::new(reg, Some(listener), nodes, Pnn(own)).unwrap();
            Side {
                poll,
                links,
                timers: Vec::new(),
                seen: Vec::new(),
            }
        }

        fn take(&mut self, events: Vec<LinkEvent>) {
            for e in events {
                match e {
                    LinkEvent::Timer { at, timer } => self.timers.push((at, timer)),
                    other => self.seen.push(other),
                }
            }
        }

        /// One round: due timers, then whatever the poll has within 20 ms.
        fn turn(&mut self) {
            let now = Instant::now();
            let (due, later): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|t| t.0 <= now);
            self.timers = later;
            for (_, t) in due {
                let ev = self.links.timer(t, now);
                self.take(ev);
            }
            let mut events = Events::with_capacity(16);
            self.poll
                .poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            for ev in events.iter() {
                let got = if ev.token() == NODE_LISTENER {
                    self.links.accept()
                } else {
                    let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    self.links.ready(ev.token(), readable, ev.is_writable())
                };
                self.take(got);
            }
        }
    }

    /// Turns both sides until `done` holds (at most 3 s).
    fn run_until(a: &mut Side, b: &mut Side, done: impl Fn(&Side, &Side) -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            a.turn();
            b.turn();
            if done(a, b) {
                return true;
            }
        }
        false
    }

    /// Two transports over real loopback sockets (127.0.11.4 and .5,
    /// ephemeral ports): both connections come up, a packet crosses, a
    /// stranger is refused, and a side that goes away is reported dead.
    #[test]
    fn two_nodes_connect_exchange_packets_and_notice_a_death() {
        let l0 = std::net::TcpListener::bind("127.0.11.4:0").unwrap();
        let l1 = std::net::TcpListener::bind("127.0.11.5:0").unwrap();
        let nodes = [
            Node {
                pnn: 0,
                addr: l0.local_addr().unwrap(),
                deleted: false,
            },
            Node {
                pnn: 1,
                addr: l1.local_addr().unwrap(),
                deleted: false,
            },
        ];
        let mut a = Side::new(&nodes, 0, l0);
        let mut b = Side::new(&nodes, 1, l1);
        let now = Instant::now();
        let ev = a.links.start(now);
        a.take(ev);
        let ev = b.links.start(now);
        b.take(ev);
        let both_up = |s: &Side, p: u32| s.seen.contains(&LinkEvent::BothUp(Pnn(p)));
        assert!(run_until(&mut a, &mut b, |a, b| both_up(a, 1) && both_up(b, 0)));

        let k = ReqKeepalive {
            version: 1,
            uptime: 2,
        };
        let pkt =
            Packet::ReqKeepalive(k).encode(Header::new(Operation::ReqKeepalive, Pnn(1), Pnn(0), 0));
        a.links.send(Pnn(1), &pkt).unwrap();
        let want = LinkEvent::Packet {
            from: Pnn(0),
            bytes: pkt.clone(),
        };
        assert!(run_until(&mut a, &mut b, |_, b| b.seen.contains(&want)));
        // Node 0 sends only on its outgoing connection: nothing to itself.
        assert_eq!(a.links.send(Pnn(0), &pkt), Err(SendError::NotConnected));

        // An address that is not in the nodes file (the kernel picks
        // 127.0.0.1 as the source) is refused: the stranger reads EOF.
        let mut s = std::net::TcpStream::connect(nodes[0].addr).unwrap();
        s.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(3);
        let mut closed = false;
        while !closed && Instant::now() < end {
            a.turn();
            let mut byte = [0u8; 1];
            closed = match s.read(&mut byte) {
                Ok(0) => true,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
                Ok(_) => panic!("the stranger was sent data"),
            };
        }
        assert!(closed, "the stranger's connection was not closed");
        assert!(a
            .seen
            .iter()
            .all(|e| !matches!(e, LinkEvent::Packet { .. })));

        // Node 1 goes away: node 0 sees EOF and reports it dead.
        drop(b);
        let dead = |s: &Side| {
            s.seen
                .iter()
                .any(|e| matches!(e, LinkEvent::Dead { pnn, .. } if *pnn == Pnn(1)))
        };
        let end = Instant::now() + Duration::from_secs(3);
        while !dead(&a) && Instant::now() < end {
            a.turn();
        }
        assert!(dead(&a));
        let ev = a.links.restart(Pnn(1), Instant::now());
        assert!(matches!(
            ev[..],
            [LinkEvent::Timer {
                timer: LinkTimer::Connect { .. },
                ..
            }]
        ));
        assert_eq!(a.links.send(Pnn(1), &pkt), Err(SendError::NotConnected));
    }

    /// A burst of small packets (a walk streaming TRAVERSE_DATA) read from
    /// a node: each packet handed on owns only its own bytes.  Before, each
    /// kept the read buffer's capacity and a 3000-record catdb grew the
    /// collecting daemon by ~390 MiB.
    #[test]
    fn packets_read_in_a_burst_are_sized_to_their_content() {
        let l0 = std::net::TcpListener::bind("127.0.17.4:0").unwrap();
        let l1 = std::net::TcpListener::bind("127.0.17.5:0").unwrap();
        let nodes: Vec<Node> = [&l0, &l1]
            .iter()
            .enumerate()
            .map(|(pnn, l)| Node {
                pnn: pnn as u32,
                addr: l.local_addr().unwrap(),
                deleted: false,
            })
            .collect();
        let mut a = Side::new(&nodes, 0, l0);
        let mut b = Side::new(&nodes, 1, l1);
        let now = Instant::now();
        let ev = a.links.start(now);
        a.take(ev);
        let ev = b.links.start(now);
        b.take(ev);
        let both_up = |s: &Side, p: u32| s.seen.contains(&LinkEvent::BothUp(Pnn(p)));
        assert!(run_until(&mut a, &mut b, |a, b| both_up(a, 1) && both_up(b, 0)));
        const BURST: u32 = 2000;
        for i in 0..BURST {
            let k = ReqKeepalive {
                version: 1,
                uptime: i,
            };
            let h = Header::new(Operation::ReqKeepalive, Pnn(1), Pnn(0), i);
            a.links
                .send(Pnn(1), &Packet::ReqKeepalive(k).encode(h))
                .unwrap();
        }
        let count = |s: &Side| {
            s.seen
                .iter()
                .filter(|e| matches!(e, LinkEvent::Packet { .. }))
                .count()
        };
        assert!(run_until(&mut a, &mut b, |_, b| count(b) == BURST as usize));
        let mut held = 0;
        for e in &b.seen {
            if let LinkEvent::Packet { bytes, .. } = e {
                assert_eq!(
                    bytes.capacity(),
                    bytes.len(),
                    "a packet owns only its bytes"
                );
                held += bytes.capacity();
            }
        }
        assert!(held < (BURST as usize) * 64, "{held} bytes held");
    }

    #[test]
    fn redirected_calls_do_not_count_as_signs_of_life() {
        let call = |hops| {
            let c = ReqCall {
                db_id: DbId(1),
                hopcount: hops,
                ..Default::default()
            };
            Packet::ReqCall(c).encode(Header::new(Operation::ReqCall, Pnn(0), Pnn(2), 1))
        };
        assert_eq!(counted_source(&call(0)), Some(Pnn(2)));
        assert_eq!(counted_source(&call(1)), None);
        assert_eq!(counted_source(&[0u8; 8]), None);
    }
}
