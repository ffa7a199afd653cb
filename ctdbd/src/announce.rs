//! What a node does for a public address it has just taken over (the
//! takeip event succeeded), as Samba's ctdb_takeover.c: it announces the
//! address on its interface (gratuitous ARPs, IPv6 neighbour
//! advertisements) and sends a tickle ACK to every client connection on
//! the address's tickle list, so that clients of the node that lost the
//! address reset their connections and reconnect at once instead of
//! waiting for a TCP timeout.  Both go out [`ARP_REPEAT`] times,
//! [`ARP_INTERVAL`] apart, the first at once; a release of the address
//! stops them.  Samba does none of this in test mode (CTDB_TEST_MODE),
//! where addresses are never on an interface, and neither do we.
//!
//! SEND_GRATUITOUS_ARP (`ctdb gratarp`) announces any address on a given
//! interface the same way (ARPs only, 1 s apart), in any mode.

use crate::control::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::timers::TimerEvent;
use crate::{log_err, log_info};
use ctdb_protocol::types::{AddrInfo, Connection};
use ctdb_protocol::ControlOpcode;
use ctdbd::system_socket;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many times an address is announced (Samba's CTDB_ARP_REPEAT).
pub const ARP_REPEAT: u32 = 3;
/// The time between announcements (Samba's CTDB_ARP_INTERVAL of 1 s plus
/// the 100 ms it adds).
pub const ARP_INTERVAL: Duration = Duration::from_millis(1100);
/// The time between the ARPs of SEND_GRATUITOUS_ARP (CTDB_ARP_INTERVAL).
pub const GRATARP_INTERVAL: Duration = Duration::from_secs(1);

/// One address being announced.
#[derive(Debug)]
struct Announcement {
    id: u64,
    addr: IpAddr,
    sent: u32,
    tickles: Vec<Connection>,
    /// SEND_GRATUITOUS_ARP's interface; `None` for a takeover, whose
    /// interface is the address's own at each round.
    iface: Option<String>,
}

/// The announcements in progress, each known by the id its timer carries
/// (a timer of a stopped announcement finds nothing).
#[derive(Debug, Default)]
pub struct Announcements {
    next_id: u64,
    active: Vec<Announcement>,
}

impl Announcements {
    /// Starts announcing `addr` with `tickles` to send; its id is returned.
    pub fn start(&mut self, addr: IpAddr, tickles: Vec<Connection>) -> u64 {
        self.push(addr, tickles, None)
    }

    /// Starts announcing `addr` on `iface` (SEND_GRATUITOUS_ARP); its id
    /// is returned.
    pub fn start_on(&mut self, addr: IpAddr, iface: String) -> u64 {
        self.push(addr, Vec::new(), Some(iface))
    }

    fn push(&mut self, addr: IpAddr, tickles: Vec<Connection>, iface: Option<String>) -> u64 {
        self.next_id += 1;
        self.active.push(Announcement {
            id: self.next_id,
            addr,
            sent: 0,
            tickles,
            iface,
        });
        self.next_id
    }

    /// Stops every takeover announcement of `addr` (SEND_GRATUITOUS_ARP's
    /// go on, as in Samba).
    pub fn stop(&mut self, addr: IpAddr) {
        self.active.retain(|a| a.addr != addr || a.iface.is_some());
    }

    /// The address of announcement `id`, if it is still in progress.
    pub fn addr(&self, id: u64) -> Option<IpAddr> {
        self.active.iter().find(|a| a.id == id).map(|a| a.addr)
    }

    /// The fixed interface of announcement `id` (SEND_GRATUITOUS_ARP's).
    pub fn fixed_iface(&self, id: u64) -> Option<String> {
        self.active
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.iface.clone())
    }

    /// Records one more round of `id` sent: its tickles, and whether
    /// another round is due (false: the announcement is over and gone).
    pub fn sent(&mut self, id: u64) -> (Vec<Connection>, bool) {
        let Some(i) = self.active.iter().position(|a| a.id == id) else {
            return (Vec::new(), false);
        };
        self.active[i].sent += 1;
        let tickles = self.active[i].tickles.clone();
        if self.active[i].sent >= ARP_REPEAT {
            self.active.remove(i);
            return (tickles, false);
        }
        (tickles, true)
    }
}

/// "SRC -> DST" of a tickle list entry, as Samba logs it.
fn connection_text(c: &Connection) -> String {
    match (c.src.to_socket_addr(), c.dst.to_socket_addr()) {
        (Some(s), Some(d)) => format!("{s} -> {d}"),
        _ => "UNKNOWN".to_string(),
    }
}

/// Sends the tickle ACK of one connection: from its server end (`dst`, the
/// public address) to its client (`src`), sequence and ack numbers 0.
fn send_tickle(c: &Connection) {
    let (Some(client), Some(server)) = (c.src.to_socket_addr(), c.dst.to_socket_addr()) else {
        return;
    };
    let text = connection_text(c);
    log_info!("Send TCP tickle ACK: {}", text);
    if let Err(e) = system_socket::send_tcp(client, server, 0, 0, false) {
        log_err!("Failed to send TCP tickle ACK: {} ({})", text, e);
    }
}

impl Daemon {
    /// The hook after the takeip event of `addr` succeeded: outside test
    /// mode the address's tickle list moves to a new announcement (the
    /// list is left empty, and the other nodes are told so at the next
    /// tickle update) and the first round goes out now.
    pub(crate) fn announce_takeover(&mut self, addr: IpAddr) {
        if self.state.paths.test_mode {
            return;
        }
        let tickles = self.state.public.take_tickles(addr);
        let id = self.announcements.start(addr, tickles);
        self.arm_timer(Instant::now(), TimerEvent::Announce(id));
    }

    /// The hook at RELEASE_IP: announcements of `addr` still going stop.
    pub(crate) fn stop_announcing(&mut self, addr: IpAddr) {
        self.announcements.stop(addr);
    }

    /// A round of announcement `id`: ARPs on the address's interface now
    /// (none if it was released meanwhile: the announcement ends) and its
    /// tickle ACKs; the next round is armed unless this was the last.
    pub(crate) fn announce_timer(&mut self, id: u64, now: Instant) {
        let Some(addr) = self.announcements.addr(id) else {
            return;
        };
        if let Some(iface) = self.announcements.fixed_iface(id) {
            if let Err(e) = system_socket::send_arp(addr, &iface) {
                log_err!("Failed to send gratuitous ARP on iface {}: {}", iface, e);
            }
            if self.announcements.sent(id).1 {
                self.arm_timer(now + GRATARP_INTERVAL, TimerEvent::Announce(id));
            }
            return;
        }
        let iface = self.state.public.find(addr).and_then(|a| a.active.clone());
        let Some(iface) = iface else {
            log_info!("Cancelling ARP send for released IP {}", addr);
            self.announcements.stop(addr);
            return;
        };
        if let Err(e) = system_socket::send_arp(addr, &iface) {
            log_err!("Failed to send ARP on interface {}: {}", iface, e);
        }
        let (tickles, again) = self.announcements.sent(id);
        tickles.iter().for_each(send_tickle);
        if again {
            self.arm_timer(now + ARP_INTERVAL, TimerEvent::Announce(id));
        }
    }
}

/// Registers SEND_GRATUITOUS_ARP.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::SendGratuitousArp, send_gratuitous_arp);
}

/// SEND_GRATUITOUS_ARP (`ctdb gratarp ADDR IFACE`): the address is
/// announced on the interface, [`ARP_REPEAT`] times, the first now.
fn send_gratuitous_arp(d: &mut Daemon, req: &Request) -> Outcome {
    let info = req.decode::<AddrInfo>().ok();
    let Some((addr, iface)) = info.and_then(|i| Some((i.addr.to_socket_addr()?.ip(), i.iface)))
    else {
        log_err!(
            "Wrong size of indata for a gratuitous ARP ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    };
    let id = d.announcements.start_on(addr, iface.unwrap_or_default());
    d.arm_timer(Instant::now(), TimerEvent::Announce(id));
    Outcome::status(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(src: &str, dst: &str) -> Connection {
        let sa = |s: &str| {
            ctdb_protocol::wire::SockAddr::from(s.parse::<std::net::SocketAddr>().unwrap())
        };
        Connection {
            src: sa(src),
            dst: sa(dst),
        }
    }

    #[test]
    fn an_announcement_runs_three_rounds_with_its_tickles() {
        let mut a = Announcements::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let c = conn("198.51.100.9:40001", "192.0.2.1:445");
        let id = a.start(ip, vec![c]);
        assert_eq!(a.addr(id), Some(ip));
        assert_eq!(a.sent(id), (vec![c], true));
        assert_eq!(a.sent(id), (vec![c], true));
        assert_eq!(a.sent(id), (vec![c], false));
        assert_eq!(a.addr(id), None, "gone after the last round");
        assert_eq!(a.sent(id), (vec![], false));
    }

    #[test]
    fn a_release_stops_the_address_and_a_new_takeover_has_a_new_id() {
        let mut a = Announcements::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let first = a.start(ip, vec![]);
        let kept = a.start(other, vec![]);
        a.stop(ip);
        assert_eq!(a.addr(first), None);
        assert_eq!(a.addr(kept), Some(other));
        let second = a.start(ip, vec![]);
        assert_ne!(first, second, "the old timer finds nothing");
        assert_eq!(a.addr(first), None);
        assert_eq!(a.addr(second), Some(ip));
        // A gratarp of the address is not a takeover's: a release leaves it.
        let grat = a.start_on(ip, "eth0".into());
        a.stop(ip);
        assert_eq!(a.addr(second), None);
        assert_eq!(a.fixed_iface(grat).as_deref(), Some("eth0"));
        assert_eq!(a.fixed_iface(second), None);
    }

    #[test]
    fn tickle_log_text_is_src_then_dst() {
        let c = conn("198.51.100.9:40001", "192.0.2.1:445");
        assert_eq!(connection_text(&c), "198.51.100.9:40001 -> 192.0.2.1:445");
    }
}
