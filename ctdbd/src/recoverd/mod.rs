//! The recovery daemon: a thread inside ctdbd that is an ordinary client of
//! the local daemon's unix socket, as Samba's ctdb_recoverd is. It drives
//! the pure state machine [`cluster::Recoverd`]: packets from the socket
//! and its own timers become events; the machine's actions become controls
//! and messages on the socket (the local daemon forwards those for other
//! nodes), registrations, timers and the cluster lock helper.

mod lock;

use crate::cluster::{self, Action, ControlAnswer, Event, Level, Recoverd, Tag, Time, Timer};
use crate::{log_debug, log_err, log_info, log_notice, log_warn};
use ctdb_protocol::header::Header;
use ctdb_protocol::packet::{Framer, ReqControl, ReqMessage};
use ctdb_protocol::{ControlRequest, Operation, Packet, Pnn, Srvid};
use lock::{ClusterLock, LockNews};
use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Request ids of the thread's own registrations (the machine's tags stay
/// below this).
const OWN_REQID_BASE: u32 = 0x8000_0000;
/// Longest wait on the socket between looks at the timers and the lock.
const POLL_SLICE: Duration = Duration::from_millis(50);
/// The send buffer asked for on the daemon's socket (the system caps it
/// at net.core.wmem_max).
const SOCKET_BUFFER: usize = 4 << 20;

/// What the thread needs from the daemon's configuration.
pub struct RecoverdConfig {
    /// The daemon's unix socket.
    pub socket: PathBuf,
    /// The `[cluster] cluster lock` setting.
    pub cluster_lock: Option<String>,
    /// The machine's settings.
    pub settings: cluster::Settings,
}

/// The running recovery daemon thread.
pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Stops the thread (it releases the cluster lock) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the recovery daemon thread.
pub fn spawn(cfg: RecoverdConfig) -> std::io::Result<Handle> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("recoverd".into())
        .spawn(move || {
            log_notice!("monitor_cluster starting");
            match Driver::connect(cfg) {
                Ok(mut d) => d.run(&flag),
                Err(e) => log_err!("Recovery daemon: cannot connect to the daemon: {e}"),
            }
        })?;
    Ok(Handle {
        stop,
        thread: Some(thread),
    })
}

/// Why the driver stopped.
#[derive(Debug)]
enum DriverError {
    /// The socket failed or closed.
    Socket(std::io::Error),
    /// The daemon sent a packet that does not decode.
    Packet(ctdb_protocol::DecodeError),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Socket(e) => write!(f, "socket: {e}"),
            DriverError::Packet(e) => write!(f, "bad packet from the daemon: {e}"),
        }
    }
}

struct Driver {
    pnn: Pnn,
    sock: UnixStream,
    framer: Framer,
    machine: Recoverd,
    lock: Option<ClusterLock>,
    start: Instant,
    timers: BTreeMap<(Time, u64), Timer>,
    timer_seq: u64,
    events: VecDeque<Event>,
    own_reqid: u32,
}

impl Driver {
    fn connect(cfg: RecoverdConfig) -> std::io::Result<Driver> {
        let sock = UnixStream::connect(&cfg.socket)?;
        // Record buffers of 1 MB go through in fewer turns of each side.
        let _ =
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBuf, &SOCKET_BUFFER);
        sock.set_read_timeout(Some(POLL_SLICE))?;
        sock.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Driver {
            pnn: cfg.settings.pnn,
            sock,
            framer: Framer::new(),
            machine: Recoverd::new(cfg.settings),
            lock: cfg.cluster_lock.as_deref().map(ClusterLock::new),
            start: Instant::now(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            events: VecDeque::from([Event::Start]),
            own_reqid: OWN_REQID_BASE,
        })
    }

    fn now(&self) -> Time {
        Time(self.start.elapsed().as_millis() as u64)
    }

    fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.turn() {
                log_err!("Recovery daemon stopping: {e}");
                break;
            }
        }
        if let Some(l) = self.lock.as_mut() {
            l.release();
        }
    }

    /// One round: queued events, due timers, lock news, then the socket.
    fn turn(&mut self) -> Result<(), DriverError> {
        while let Some(ev) = self.events.pop_front() {
            self.step(ev)?;
        }
        let now = self.now();
        while let Some((&(at, seq), _)) = self.timers.first_key_value() {
            if at > now {
                break;
            }
            let timer = self.timers.remove(&(at, seq)).expect("just seen");
            self.step(Event::Timer(timer))?;
        }
        if let Some(news) = self.lock.as_mut().and_then(ClusterLock::poll) {
            let ev = match news {
                LockNews::Answered(o) => Event::Lock(o),
                LockNews::Lost => Event::LockLost,
            };
            self.step(ev)?;
        }
        if self.events.is_empty() {
            self.read_packets()?;
        }
        Ok(())
    }

    fn step(&mut self, ev: Event) -> Result<(), DriverError> {
        let now = self.now();
        let actions = self.machine.handle(now, ev);
        for a in actions {
            self.execute(a)?;
        }
        Ok(())
    }

    fn read_packets(&mut self) -> Result<(), DriverError> {
        match self.framer.read_from(&mut self.sock) {
            Ok(0) => {
                return Err(DriverError::Socket(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the daemon closed the socket",
                )))
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(DriverError::Socket(e)),
        }
        while let Some(p) = self.framer.next_packet().map_err(DriverError::Packet)? {
            let (header, body) = Packet::decode(&p).map_err(DriverError::Packet)?;
            match body {
                Packet::ReplyControl(r) if header.reqid < OWN_REQID_BASE => {
                    let answer = ControlAnswer {
                        status: r.status,
                        data: r.data,
                        errmsg: r.errmsg,
                    };
                    self.events.push_back(Event::Reply {
                        tag: Tag(header.reqid),
                        answer,
                    });
                }
                Packet::ReplyControl(r) if r.status != 0 => {
                    log_warn!("Recovery daemon: srvid registration failed: {}", r.status)
                }
                Packet::ReqMessage(m) => self.events.push_back(Event::Message {
                    srvid: m.srvid,
                    data: m.data,
                }),
                _ => {}
            }
        }
        Ok(())
    }

    fn write(&mut self, header: Header, body: Packet) -> Result<(), DriverError> {
        let bytes = body.encode(header);
        self.sock.write_all(&bytes).map_err(DriverError::Socket)
    }

    fn dest(&self, to: Pnn) -> Pnn {
        if to == self.pnn {
            Pnn::CURRENT_NODE
        } else {
            to
        }
    }

    fn control(
        &mut self,
        reqid: u32,
        to: Pnn,
        request: &ControlRequest,
        srvid: Srvid,
        flags: u32,
    ) -> Result<(), DriverError> {
        let body = Packet::ReqControl(ReqControl {
            opcode: request.opcode(),
            srvid,
            client_id: 0,
            flags,
            data: request.to_bytes(),
        });
        let header = Header::new(Operation::ReqControl, self.dest(to), self.pnn, reqid);
        self.write(header, body)
    }

    fn own_control(&mut self, request: ControlRequest, srvid: Srvid) -> Result<(), DriverError> {
        self.own_reqid = self.own_reqid.wrapping_add(1).max(OWN_REQID_BASE);
        self.control(self.own_reqid, self.pnn, &request, srvid, 0)
    }

    fn execute(&mut self, a: Action) -> Result<(), DriverError> {
        match a {
            Action::Control {
                tag,
                to,
                request,
                srvid,
                flags,
            } => self.control(tag.0, to, &request, srvid, flags)?,
            Action::Message { to, srvid, data } => {
                let header = Header::new(Operation::ReqMessage, self.dest(to), self.pnn, 0);
                self.write(header, Packet::ReqMessage(ReqMessage { srvid, data }))?;
            }
            Action::Register(s) => self.own_control(ControlRequest::RegisterSrvid, s)?,
            Action::Deregister(s) => self.own_control(ControlRequest::DeregisterSrvid, s)?,
            Action::Timer { at, timer } => {
                self.timer_seq += 1;
                self.timers.insert((at, self.timer_seq), timer);
            }
            Action::TakeLock => match self.lock.as_mut() {
                Some(l) => {
                    if let Some(LockNews::Answered(o)) = l.take() {
                        self.events.push_back(Event::Lock(o));
                    }
                }
                None => self
                    .events
                    .push_back(Event::Lock(cluster::LockOutcome::Held)),
            },
            Action::ReleaseLock => {
                if let Some(l) = self.lock.as_mut() {
                    l.release();
                }
            }
            Action::Continue => self.events.push_back(Event::Continue),
            Action::Log(level, text) => match level {
                Level::Error => log_err!("{text}"),
                Level::Warning => log_warn!("{text}"),
                Level::Notice => log_notice!("{text}"),
                Level::Info => log_info!("{text}"),
                Level::Debug => log_debug!("{text}"),
            },
        }
        Ok(())
    }
}

/// Eight bytes from the kernel's random source (the generations a leader
/// picks come from it), or the clock and pid when it cannot be read.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    match read {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => {
            let t = ctdb_protocol::wire::Timeval::now();
            (t.sec as u64) << 32 ^ t.usec as u64 ^ u64::from(std::process::id()) << 12
        }
    }
}

/// The machine's settings from the daemon's configuration and tunables.
pub fn settings(
    pnn: Pnn,
    capabilities: u32,
    cfg: &crate::config::Config,
    tun: &crate::tunables::Tunables,
) -> cluster::Settings {
    let secs = |s: u32| u64::from(s.max(1)) * 1000;
    log_debug!("recovery daemon settings for node {pnn}");
    cluster::Settings {
        pnn,
        cluster_lock: cfg.cluster_lock.is_some(),
        capabilities,
        start_wall: ctdb_protocol::wire::Timeval::now(),
        recover_interval_ms: secs(tun.recover_interval),
        election_timeout_ms: secs(tun.election_timeout),
        leader_timeout_ms: secs(cfg.leader_timeout),
        leader_broadcast_ms: 1000,
        recover_timeout_ms: secs(tun.recover_timeout),
        rerecovery_timeout_ms: u64::from(tun.rerecovery_timeout) * 1000,
        buffer_limit: tun.rec_buffer_size_limit as usize,
        buffers_per_step: 4,
        ban_period_s: tun.recovery_ban_period,
        grace_period_ms: u64::from(tun.recovery_grace_period) * 1000,
        seed: random_seed(),
        failover_disabled: cfg.failover_disabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LockOutcome;
    use ctdb_protocol::packet::ReplyControl;
    use ctdb_protocol::types::RECOVERY_ACTIVE;
    use ctdb_protocol::Layout;

    fn driver() -> (Driver, UnixStream) {
        let (ours, daemon) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(POLL_SLICE)).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let settings = cluster::Settings {
            pnn: Pnn(2),
            cluster_lock: false,
            capabilities: ctdb_protocol::types::CAP_RECMASTER,
            start_wall: ctdb_protocol::wire::Timeval::default(),
            recover_interval_ms: 1000,
            election_timeout_ms: 3000,
            leader_timeout_ms: 5000,
            leader_broadcast_ms: 1000,
            recover_timeout_ms: 3000,
            rerecovery_timeout_ms: 10000,
            buffer_limit: 1000,
            buffers_per_step: 1,
            ban_period_s: 300,
            grace_period_ms: 120_000,
            seed: 1,
            failover_disabled: false,
        };
        let d = Driver {
            pnn: Pnn(2),
            sock: ours,
            framer: Framer::new(),
            machine: Recoverd::new(settings),
            lock: None,
            start: Instant::now(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            events: VecDeque::new(),
            own_reqid: OWN_REQID_BASE,
        };
        (d, daemon)
    }

    fn read_packets(sock: &mut UnixStream, n: usize) -> Vec<(Header, Packet)> {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < n {
            let got = sock.read(&mut buf).unwrap();
            assert!(got > 0, "socket closed");
            framer.push(&buf[..got]);
            while let Some(p) = framer.next_packet().unwrap() {
                out.push(Packet::decode(&p).unwrap());
            }
        }
        out
    }

    #[test]
    fn actions_become_packets_for_the_local_daemon() {
        let (mut d, mut daemon) = driver();
        d.execute(Action::Control {
            tag: Tag(7),
            to: Pnn(2),
            request: ControlRequest::SetRecmode(RECOVERY_ACTIVE),
            srvid: Srvid(0),
            flags: 0,
        })
        .unwrap();
        d.execute(Action::Control {
            tag: Tag(8),
            to: Pnn(1),
            request: ControlRequest::GetNodeMap,
            srvid: Srvid(0),
            flags: 0,
        })
        .unwrap();
        d.execute(Action::Message {
            to: Pnn::BROADCAST_CONNECTED,
            srvid: Srvid::LEADER,
            data: Pnn(2).to_bytes(),
        })
        .unwrap();
        d.execute(Action::Register(Srvid::ELECTION)).unwrap();
        let p = read_packets(&mut daemon, 4);
        let (h, Packet::ReqControl(c)) = &p[0] else {
            panic!("{:?}", p[0])
        };
        assert_eq!(
            (h.destnode, h.srcnode, h.reqid),
            (Pnn::CURRENT_NODE, Pnn(2), 7)
        );
        assert_eq!(
            c.request().unwrap(),
            ControlRequest::SetRecmode(RECOVERY_ACTIVE)
        );
        let (h, Packet::ReqControl(c)) = &p[1] else {
            panic!("{:?}", p[1])
        };
        assert_eq!((h.destnode, h.reqid), (Pnn(1), 8));
        assert_eq!(c.request().unwrap(), ControlRequest::GetNodeMap);
        let (h, Packet::ReqMessage(m)) = &p[2] else {
            panic!("{:?}", p[2])
        };
        assert_eq!(
            (h.destnode, m.srvid, m.data.clone()),
            (Pnn::BROADCAST_CONNECTED, Srvid::LEADER, vec![2, 0, 0, 0])
        );
        let (h, Packet::ReqControl(c)) = &p[3] else {
            panic!("{:?}", p[3])
        };
        assert!(h.reqid >= OWN_REQID_BASE);
        assert_eq!(
            (c.request().unwrap(), c.srvid),
            (ControlRequest::RegisterSrvid, Srvid::ELECTION)
        );
    }

    #[test]
    fn packets_from_the_daemon_become_events() {
        let (mut d, mut daemon) = driver();
        let reply = Packet::ReplyControl(ReplyControl::status(1)).encode(Header::new(
            Operation::ReplyControl,
            Pnn(2),
            Pnn(2),
            7,
        ));
        let own = Packet::ReplyControl(ReplyControl::status(0)).encode(Header::new(
            Operation::ReplyControl,
            Pnn(2),
            Pnn(2),
            OWN_REQID_BASE + 1,
        ));
        let msg = Packet::ReqMessage(ReqMessage {
            srvid: Srvid::LEADER,
            data: Pnn(0).to_bytes(),
        })
        .encode(Header::new(Operation::ReqMessage, Pnn(2), Pnn(0), 0));
        for p in [reply, own, msg] {
            daemon.write_all(&p).unwrap();
        }
        while d.events.len() < 2 {
            d.read_packets().unwrap();
        }
        assert_eq!(
            d.events[0],
            Event::Reply {
                tag: Tag(7),
                answer: ControlAnswer {
                    status: 1,
                    data: vec![],
                    errmsg: None
                }
            }
        );
        assert_eq!(
            d.events[1],
            Event::Message {
                srvid: Srvid::LEADER,
                data: vec![0, 0, 0, 0]
            }
        );
        // Without a cluster lock configured, taking it succeeds at once.
        d.events.clear();
        d.execute(Action::TakeLock).unwrap();
        assert_eq!(d.events[0], Event::Lock(LockOutcome::Held));
        drop(daemon);
        assert!(
            d.read_packets().is_err(),
            "a closed socket stops the driver"
        );
    }
}
