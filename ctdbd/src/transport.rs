//! Transport: the unix-socket client connections (accept, framing, queued
//! writes, close).  It moves bytes and whole packets only; what a packet
//! means is decided by `dispatch`.  The node connections are in
//! `node_link`.

use crate::{log_debug, log_err, log_info};
use ctdb_protocol::packet::Framer;
/// A node's pnn (the protocol crate's type).
pub use ctdb_protocol::Pnn;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

/// The send buffer asked for on each client socket.
const CLIENT_SEND_BUFFER: usize = 4 << 20;
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Write};

/// Poll token of the unix listener.
pub const LISTENER: Token = Token(0);
/// Client connections get poll tokens from this one up.
const FIRST_CLIENT: usize = 16;
/// Spare space a drained write queue (a client's or a node's) keeps; more,
/// left by a burst, is given back so one catdb does not pin it for the
/// connection's life.
pub const KEPT_WRITE_CAPACITY: usize = 256 << 10;

/// A local client connection; its value is the connection's poll token and is
/// never reused while the daemon runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub usize);

impl ClientId {
    /// The client whose connection is registered under this poll token, if
    /// the token is a client token at all.
    pub fn from_token(t: Token) -> Option<ClientId> {
        (t.0 >= FIRST_CLIENT && t.0 < crate::node_link::FIRST_LINK_TOKEN).then_some(ClientId(t.0))
    }
}

/// Where a packet came from, and so where its reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A process connected to the unix socket.
    Client(ClientId),
    /// A ctdbd over the node transport, or this node itself (a packet it
    /// sends to its own pnn goes through its own dispatch).
    Node(Pnn),
}

impl Origin {
    /// The local client, when the packet came from one.
    pub fn client(self) -> Option<ClientId> {
        match self {
            Origin::Client(c) => Some(c),
            Origin::Node(_) => None,
        }
    }
}

/// One client connection: its socket and its input and output buffers.
struct Connection {
    stream: UnixStream,
    /// Cuts whole packets out of what was read.
    framer: Framer,
    wbuf: VecDeque<u8>,
    want_write: bool,
    pid: i32,
    closing: bool,
}

/// What a read of a client socket produced.
pub struct Received {
    /// Whole packets, in the order they arrived.
    pub packets: Vec<Vec<u8>>,
}

/// The unix listener and every client connection.
pub struct Transport {
    registry: Registry,
    listener: UnixListener,
    clients: HashMap<ClientId, Connection>,
    next_id: usize,
}

/// The pid of the process at the other end of a unix socket, or -1 when the
/// kernel does not say.
fn peer_pid(stream: &UnixStream) -> i32 {
    getsockopt(stream, PeerCredentials).map_or(-1, |cred| cred.pid())
}

impl Transport {
    /// Registers the listener with `registry` (a clone of the loop's).
    pub fn new(
        registry: Registry,
        listener: std::os::unix::net::UnixListener,
    ) -> std::io::Result<Transport> {
        listener.set_nonblocking(true)?;
        let mut listener = UnixListener::from_std(listener);
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Transport {
            registry,
            listener,
            clients: HashMap::new(),
            next_id: FIRST_CLIENT,
        })
    }

    /// Accepts every waiting client connection.
    pub fn accept_clients(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let id = ClientId(self.next_id);
                    self.next_id += 1;
                    if let Err(e) =
                        self.registry
                            .register(&mut stream, Token(id.0), Interest::READABLE)
                    {
                        log_err!("Failed to register client: {}", e);
                        continue;
                    }
                    let pid = peer_pid(&stream);
                    // A client taking record buffers (a recovery's pulls)
                    // gets them in fewer turns; the system caps the size at
                    // net.core.wmem_max, and only queued bytes use memory.
                    let _ = nix::sys::socket::setsockopt(
                        &stream,
                        nix::sys::socket::sockopt::SndBuf,
                        &CLIENT_SEND_BUFFER,
                    );
                    log_info!("Connected client with pid:{}", pid);
                    let conn = Connection {
                        stream,
                        framer: Framer::new(),
                        wbuf: VecDeque::new(),
                        want_write: false,
                        pid,
                        closing: false,
                    };
                    self.clients.insert(id, conn);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_err!("accept on client socket failed: {}", e);
                    break;
                }
            }
        }
    }

    /// Drains a readable client socket and returns its whole packets.  EOF,
    /// a read error or a bad length word marks the client closing.
    pub fn read(&mut self, id: ClientId) -> Received {
        let mut received = Received {
            packets: Vec::new(),
        };
        let Some(c) = self.clients.get_mut(&id) else {
            return received;
        };
        if c.closing {
            return received;
        }
        let mut eof = false;
        // Packets are taken out after every read, so that a large one that
        // a read completed is handed over whole before the next read.
        while !eof && !c.closing {
            match c.framer.read_from(&mut c.stream) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => eof = true,
            }
            loop {
                match c.framer.next_packet() {
                    Ok(Some(pkt)) => received.packets.push(pkt),
                    Ok(None) => break,
                    Err(why) => {
                        log_err!(
                            "Malformed packet from client pid:{}: {}, closing it",
                            c.pid,
                            why
                        );
                        c.closing = true;
                        break;
                    }
                }
            }
        }
        if eof {
            c.closing = true;
        }
        received
    }

    /// Queues a packet for a live client and writes what the socket takes.
    /// Returns false when the client is gone or closing.
    pub fn send(&mut self, id: ClientId, bytes: &[u8]) -> bool {
        match self.clients.get_mut(&id) {
            Some(c) if !c.closing => c.wbuf.extend(bytes),
            _ => return false,
        }
        self.flush(id);
        true
    }

    /// Writes queued output; watches for WRITABLE while some is left.  A
    /// failed write marks the client closing.
    pub fn flush(&mut self, id: ClientId) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let mut failed = false;
        while !c.wbuf.is_empty() {
            let (front, _) = c.wbuf.as_slices();
            match c.stream.write(front) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    c.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if c.wbuf.is_empty() && c.wbuf.capacity() > KEPT_WRITE_CAPACITY {
            c.wbuf = VecDeque::new();
        }
        if failed {
            c.closing = true;
            return;
        }
        let want = !c.wbuf.is_empty();
        if want != c.want_write {
            c.want_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .registry
                .reregister(&mut c.stream, Token(id.0), interest);
        }
    }

    /// Marks a client closing; it is dropped at the next `reap`.
    pub fn close(&mut self, id: ClientId, why: &str) {
        if let Some(c) = self.clients.get_mut(&id) {
            if !c.closing {
                log_debug!("Closing client pid:{} ({})", c.pid, why);
                c.closing = true;
            }
        }
    }

    /// Drops the closing clients and returns their ids.
    pub fn reap(&mut self) -> Vec<ClientId> {
        let dead: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.closing)
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            if let Some(mut c) = self.clients.remove(id) {
                let _ = self.registry.deregister(&mut c.stream);
            }
        }
        dead
    }

    /// True while the client is connected and not closing.
    pub fn is_live(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|c| !c.closing)
    }

    /// The peer pid of a client (-1 when unknown or gone).
    pub fn pid(&self, id: ClientId) -> i32 {
        self.clients.get(&id).map_or(-1, |c| c.pid)
    }

    /// Bytes queued for a client and not yet written.
    pub fn unsent(&self, id: ClientId) -> usize {
        self.clients.get(&id).map_or(0, |c| c.wbuf.len())
    }

    /// The live clients with their pids.
    pub fn live(&self) -> impl Iterator<Item = (ClientId, i32)> + '_ {
        self.clients
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(id, c)| (*id, c.pid))
    }

    /// Bytes held in client buffers (allocated input and output space).
    pub fn buffered_bytes(&self) -> usize {
        self.clients
            .values()
            .map(|c| c.framer.buffered() + c.wbuf.capacity())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A client that does not read gets its output queued; once it has
    /// read everything, the queue's space is given back (a catdb to a slow
    /// client would otherwise pin its size for the connection's life).
    #[test]
    fn a_drained_write_queue_gives_back_a_bursts_space() {
        let dir = std::env::temp_dir().join(format!("ctdbd-wq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut t = Transport::new(poll.registry().try_clone().unwrap(), listener).unwrap();
        let mut peer = std::os::unix::net::UnixStream::connect(&path).unwrap();
        t.accept_clients();
        let (id, _) = t.live().next().unwrap();
        let chunk = vec![7u8; 64 << 10];
        let total = 8 << 20;
        for _ in 0..total / chunk.len() {
            assert!(t.send(id, &chunk));
        }
        assert!(t.unsent(id) > 0, "the socket took everything");
        assert!(t.buffered_bytes() >= t.unsent(id));
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 20];
        while got < total {
            got += peer.read(&mut buf).unwrap();
            t.flush(id);
        }
        assert_eq!(t.unsent(id), 0);
        assert!(
            t.buffered_bytes() <= KEPT_WRITE_CAPACITY,
            "{} bytes kept",
            t.buffered_bytes()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn peer_pid_names_the_process_at_the_other_end() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_pid(&a), std::process::id() as i32);
        assert_eq!(peer_pid(&b), std::process::id() as i32);
    }
}
