//! The TCP connections each local client (smbd) registered with
//! TCP_CLIENT, as Samba keeps them per client: when the client goes away,
//! the connections to addresses this node still holds leave their tickle
//! lists (marked changed, so the next tickle update tells the other
//! nodes); those to addresses released meanwhile stay, for the node that
//! took the address over to tickle.  Also the tickle list updates
//! themselves: the periodic one and the one forced when another node
//! starts (STARTUP).

use crate::daemon::Daemon;
use crate::transport::ClientId;
use crate::{log_err, log_info};
use ctdb_protocol::packet::ReqControl;
use ctdb_protocol::types::{Connection, TickleList};
use ctdb_protocol::wire::SockAddr;
use ctdb_protocol::{ControlOpcode, Layout, Pnn, Srvid};
use std::collections::HashMap;

/// The connections registered by each live client.
#[derive(Debug, Default)]
pub struct ClientConnections {
    by_client: HashMap<ClientId, Vec<Connection>>,
}

impl ClientConnections {
    /// Records that `client` registered `conn`.
    pub fn add(&mut self, client: ClientId, conn: Connection) {
        self.by_client.entry(client).or_default().push(conn);
    }

    /// The connections `client` registered (newest first, as Samba walks
    /// them), forgotten here.
    pub fn take(&mut self, client: ClientId) -> Vec<Connection> {
        let mut list = self.by_client.remove(&client).unwrap_or_default();
        list.reverse();
        list
    }
}

impl Daemon {
    /// The hook in TCP_CLIENT: a connection from a local client to an
    /// address held here was accepted.
    pub(crate) fn remember_client_connection(
        &mut self,
        req: &crate::control::Request,
        c: Connection,
    ) {
        if let Some(client) = req.origin.client() {
            self.client_connections.add(client, c);
        }
    }

    /// The hook when a client is gone: its connections to addresses held
    /// here leave their tickle lists.
    pub(crate) fn client_connections_gone(&mut self, client: ClientId) {
        let me = Pnn(self.state.pnn);
        for c in self.client_connections.take(client) {
            let Some(dst) = c.dst.to_socket_addr().map(|s| s.ip()) else {
                continue;
            };
            match self.state.public.find(dst).map(|a| a.holder) {
                None => log_err!("unable to find public address {}", dst),
                Some(holder) if holder == me => {
                    self.state.public.remove_tickle(dst, &c);
                }
                Some(_) => {}
            }
        }
    }

    /// Sends the tickle list of every address held here to every node
    /// (SET_TCP_TICKLE_LIST, no reply): all of them when `force`, else
    /// those that changed since last sent.
    pub(crate) fn send_tickle_lists(&mut self, force: bool) {
        let me = Pnn(self.state.pnn);
        let mut lists = Vec::new();
        for a in &mut self.state.public.addrs {
            if a.holder == me && (force || a.tickles_changed) {
                a.tickles_changed = false;
                lists.push(TickleList {
                    addr: SockAddr::from(a.addr),
                    connections: a.tickles.clone(),
                });
            }
        }
        for list in lists {
            log_info!(
                "Sent tickle update for ip {}",
                list.addr
                    .to_socket_addr()
                    .map_or("?".to_string(), |s| s.ip().to_string())
            );
            let body = ReqControl {
                opcode: ControlOpcode::SetTcpTickleList,
                srvid: Srvid(0),
                client_id: 0,
                flags: 0,
                data: list.to_bytes(),
            };
            self.send_control_noreply(Pnn::BROADCAST_ALL, body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::tests::{control, daemon, replies};
    use crate::public_addresses::ConfiguredAddress;
    use crate::transport::Origin;
    use std::net::IpAddr;

    /// A daemon (node 0) with 192.0.2.1 held here and 192.0.2.2 on node 1.
    fn daemon_with_addresses(tag: &str) -> (Daemon, std::path::PathBuf) {
        let (mut d, dir) = daemon(tag);
        for a in ["192.0.2.1", "192.0.2.2"] {
            let c = ConfiguredAddress {
                addr: a.parse().unwrap(),
                mask_bits: 24,
                ifaces: vec!["eth1".into()],
            };
            d.state.public.add(&c, &|_| true).unwrap();
        }
        let held: IpAddr = "192.0.2.1".parse().unwrap();
        d.state.public.takeover(held, Pnn(0), false).unwrap();
        d.state
            .public
            .release("192.0.2.2".parse().unwrap(), Pnn(1), false, false);
        (d, dir)
    }

    fn conn(src: &str, dst: &str) -> Connection {
        let sa = |s: &str| SockAddr::from(s.parse::<std::net::SocketAddr>().unwrap());
        Connection {
            src: sa(src),
            dst: sa(dst),
        }
    }

    #[test]
    fn a_clients_connections_are_taken_once_newest_first() {
        let mut t = ClientConnections::default();
        let a = conn("198.51.100.9:1", "192.0.2.1:445");
        let b = conn("198.51.100.9:2", "192.0.2.2:445");
        t.add(ClientId(20), a);
        t.add(ClientId(20), b);
        t.add(ClientId(21), a);
        assert_eq!(t.take(ClientId(20)), [b, a]);
        assert!(t.take(ClientId(20)).is_empty());
        assert_eq!(t.take(ClientId(21)), [a]);
    }

    #[test]
    fn a_gone_clients_connections_leave_the_lists_of_addresses_held_here() {
        let (mut d, dir) = daemon_with_addresses("cltcp");
        let client = ClientId(40);
        let here = conn("198.51.100.9:40001", "192.0.2.1:445");
        let elsewhere = conn("198.51.100.9:40002", "192.0.2.2:445");
        let pkt = control(ControlOpcode::TcpClient, 0, 3, here.to_bytes());
        d.packet(Origin::Client(client), &pkt).unwrap();
        let pkt = control(ControlOpcode::TcpClient, 0, 4, elsewhere.to_bytes());
        d.packet(Origin::Client(client), &pkt).unwrap();
        let status: Vec<i32> = replies(&mut d).iter().map(|r| r.2.status).collect();
        assert_eq!(status, [0, -1], "only the address held here registers");
        // The lists as TCP_ADD (to every node) leaves them; the other
        // address's list also has the client's connection, as when the
        // address moved away after the registration.
        let (a1, a2) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        d.state.public.add_tickle(a1, here, false);
        d.state.public.add_tickle(a2, elsewhere, false);
        d.client_connections.add(client, elsewhere);
        d.client_connections_gone(client);
        assert_eq!(d.state.public.tickles(a1, 0), Some(vec![]));
        assert!(d.state.public.find(a1).unwrap().tickles_changed);
        assert_eq!(d.state.public.tickles(a2, 0), Some(vec![elsewhere]));
        assert!(d.client_connections.take(client).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_takeover_outside_test_mode_moves_the_list_to_an_announcement() {
        let (mut d, dir) = daemon_with_addresses("announce");
        let a1: IpAddr = "192.0.2.1".parse().unwrap();
        let c = conn("198.51.100.9:40001", "192.0.2.1:445");
        d.state.public.add_tickle(a1, c, false);
        // Test mode: nothing happens, the list stays.
        d.announce_takeover(a1);
        assert_eq!(d.state.public.tickles(a1, 0), Some(vec![c]));
        assert!(d.outbox.take().is_empty());
        d.state.paths.test_mode = false;
        d.announce_takeover(a1);
        assert_eq!(d.state.public.tickles(a1, 0), Some(vec![]));
        assert!(d.state.public.find(a1).unwrap().tickles_changed);
        let armed: Vec<_> = d
            .outbox
            .take()
            .into_iter()
            .filter_map(|a| match a {
                crate::actions::Action::ArmTimer {
                    event: crate::timers::TimerEvent::Announce(id),
                    ..
                } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(armed.len(), 1, "the first round is armed");
        assert_eq!(d.announcements.addr(armed[0]), Some(a1));
        // A release stops it: its timer then finds nothing to send.
        d.stop_announcing(a1);
        assert_eq!(d.announcements.addr(armed[0]), None);
        d.announce_timer(armed[0], std::time::Instant::now());
        assert!(d.outbox.take().is_empty(), "no next round");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
