//! Public address controls: GET_PUBLIC_IPS, GET_PUBLIC_IP_INFO, GET_IFACES,
//! SET_IFACE_LINK_STATE, TAKEOVER_IP, RELEASE_IP, ADD_PUBLIC_IP,
//! DEL_PUBLIC_IP, RELOAD_PUBLIC_IPS, IPREALLOCATED and TCP_CLIENT.  The
//! bookkeeping is in `public_addresses`; here the controls are decoded,
//! the address events are run through the event scripts and local clients
//! are told (TAKE_IP / RELEASE_IP messages) as Samba's daemon does.

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, ReplyTo};
use crate::eventscript::{Event, EventStatus};
use crate::public_addresses::{self as pa, ConfiguredAddress, EventArgs, Step};
use crate::{log_err, log_info, log_notice, log_warn};
use ctdb_protocol::packet::ReqControl;
use ctdb_protocol::packet::CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE;
use ctdb_protocol::types::TickleList;
use ctdb_protocol::types::{
    AddrInfo, Connection, Iface, IfaceList, PublicIp, PublicIpInfo, PublicIpList, RunState,
    NODE_FLAGS_BANNED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_PERMANENTLY_DISABLED,
    NODE_FLAGS_STOPPED, NODE_FLAGS_UNHEALTHY,
};
use ctdb_protocol::wire::SockAddr;
use ctdb_protocol::{ControlOpcode, Layout, Pnn, Srvid};
use std::net::{IpAddr, Ipv4Addr};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::GetIfaces, ifaces);
    r.add(ControlOpcode::SetIfaceLinkState, set_iface_link);
    r.add(ControlOpcode::TcpClient, tcp_client);
    r.add(ControlOpcode::GetPublicIps, public_ips);
    r.add(ControlOpcode::GetPublicIpInfo, public_ip_info);
    r.add(ControlOpcode::TakeoverIp, takeover_ip);
    r.add(ControlOpcode::ReleaseIp, release_ip);
    r.add(ControlOpcode::AddPublicIp, add_public_ip);
    r.add(ControlOpcode::DelPublicIp, del_public_ip);
    r.add(ControlOpcode::ReloadPublicIps, reload_public_ips);
    r.add(ControlOpcode::IpReallocated, ipreallocated);
    r.add(ControlOpcode::TcpAdd, |d, req| tcp_add(d, req, false));
    r.add(ControlOpcode::TcpAddDelayedUpdate, |d, req| {
        tcp_add(d, req, true)
    });
    r.add(ControlOpcode::TcpRemove, tcp_remove);
    r.add(ControlOpcode::GetTcpTickleList, get_tickle_list);
    r.add(ControlOpcode::SetTcpTickleList, set_tickle_list);
}

fn event_args(a: &EventArgs) -> String {
    format!("{} {} {}", a.iface, a.addr, a.mask_bits)
}

fn wire_iface(f: &pa::Interface) -> Iface {
    Iface {
        name: f.name.clone(),
        link_state: u16::from(f.link_up),
        references: f.references,
    }
}

fn ifaces(d: &mut Daemon, _: &Request) -> Outcome {
    let list = d.state.public.ifaces.iter().map(wire_iface).collect();
    Outcome::value(&IfaceList(list))
}

fn set_iface_link(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(info) = req.decode::<Iface>() else {
        return Outcome::bad_size("SET_IFACE_LINK_STATE", req.data().len());
    };
    let up = match info.link_state {
        0 => false,
        1 => true,
        n => {
            log_err!("link_state[{}] invalid", n);
            return Outcome::status(-1);
        }
    };
    if info.references != 0 {
        log_err!("references[{}] should be 0", info.references);
        return Outcome::status(-1);
    }
    match d.state.public.set_link(&info.name, up) {
        None => Outcome::status(-1),
        Some(changed) => {
            if changed {
                let (from, to) = if up { ("down", "up") } else { ("up", "down") };
                log_err!(
                    "iface[{}] has changed it's link status {} => {}",
                    info.name,
                    from,
                    to
                );
            }
            Outcome::status(0)
        }
    }
}

/// smbd registers each SMB connection (the SMB client's address as src, its
/// own as dst) so that an IP takeover can send tickle ACKs.  A connection
/// to a public address another node holds fails, which tells smbd to drop
/// it; one to an address held here goes to every connected node's tickle
/// list (TCP_ADD, no reply), this one's included, as in Samba.
fn tcp_client(d: &mut Daemon, req: &Request) -> Outcome {
    let conn = req.decode::<Connection>().ok();
    let addrs = conn.and_then(|c| Some((c.src.to_socket_addr()?, c.dst.to_socket_addr()?)));
    let Some((client, server)) = addrs else {
        return Outcome::bad_size("TCP_CLIENT", req.data().len());
    };
    let public = &d.state.public;
    if public.addrs.is_empty() {
        return Outcome::status(0);
    }
    match public.find(server.ip()) {
        Some(a) if a.holder != Pnn(d.state.pnn) => {
            log_err!(
                "Attempt to register tcp client for IP {} we don't hold - failing",
                server.ip()
            );
            Outcome::status(-1)
        }
        Some(_) => {
            let conn = conn.expect("decoded above");
            d.remember_client_connection(req, conn);
            let body = ReqControl {
                opcode: ControlOpcode::TcpAdd,
                srvid: Srvid(0),
                client_id: 0,
                flags: 0,
                data: conn.to_bytes(),
            };
            d.send_control_noreply(Pnn::BROADCAST_CONNECTED, body);
            Outcome::status(0)
        }
        None => {
            if server.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
                log_err!(
                    "Could not register TCP connection from {} to {} (not a public address) (port {})",
                    client.ip(),
                    server.ip(),
                    server.port()
                );
            }
            Outcome::status(0)
        }
    }
}

/// This node may host addresses: RUNNING, neither inactive nor disabled.
fn node_can_host(d: &Daemon) -> bool {
    let unusable = NODE_FLAGS_DISCONNECTED
        | NODE_FLAGS_BANNED
        | NODE_FLAGS_STOPPED
        | NODE_FLAGS_UNHEALTHY
        | NODE_FLAGS_PERMANENTLY_DISABLED;
    d.state.runstate == RunState::Running && d.state.own_flags() & unusable == 0
}

/// Every address with the node believed to hold it; with
/// PUBLIC_IP_FLAGS_ONLY_AVAILABLE (0x10000) only those this node could
/// host now.
fn public_ips(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("GET_PUBLIC_IPS", req.data().len());
    }
    let only_available = req.control.flags & CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE != 0;
    let node_ok = node_can_host(d);
    let public = &d.state.public;
    let ips = public
        .addrs
        .iter()
        .filter(|a| !only_available || public.available(a, node_ok))
        .map(|a| PublicIp {
            pnn: a.holder,
            addr: SockAddr::from(a.addr),
        })
        .collect();
    Outcome::value(&PublicIpList(ips))
}

/// The address, its holder, the index of its active interface (u32::MAX
/// for none) and its interfaces with link state and references.
fn public_ip_info(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(addr) = req.decode::<SockAddr>() else {
        return Outcome::bad_size("GET_PUBLIC_IP_INFO", req.data().len());
    };
    let ip = addr.to_socket_addr().map(|a| a.ip());
    let public = &d.state.public;
    let Some(a) = ip.and_then(|ip| public.find(ip)) else {
        log_err!(
            "Could not get public ip info, '{}'not a public address",
            ip.map_or("?".to_string(), |a| a.to_string())
        );
        return Outcome::status(-1);
    };
    let active = a.active.as_ref();
    let active_idx = a
        .ifaces
        .iter()
        .position(|n| Some(n) == active)
        .map_or(u32::MAX, |i| i as u32);
    let ifaces = a
        .ifaces
        .iter()
        .filter_map(|n| public.iface(n))
        .map(wire_iface)
        .collect();
    Outcome::value(&PublicIpInfo {
        ip: PublicIp {
            pnn: a.holder,
            addr: SockAddr::from(a.addr),
        },
        active_idx,
        ifaces: IfaceList(ifaces),
    })
}

/// Samba checks the host's addresses outside test mode (and not with
/// failover disabled): then an address counts as held when it is on an
/// interface.
fn checks_host_addresses(d: &Daemon) -> bool {
    !d.state.paths.test_mode && !d.state.config.failover_disabled
}

/// The address is on an interface of this host: it can be bound.
fn host_has(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// Tells this node's clients (smbd) about an address that came or went.
fn tell_clients(d: &mut Daemon, srvid: Srvid, addr: IpAddr) {
    let mut data = addr.to_string().into_bytes();
    data.push(0);
    d.send_message_to(Pnn(d.state.pnn), srvid, data);
}

fn takeover_ip(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((pnn, addr)) = decode_public_ip(req) else {
        return Outcome::bad_size("TAKEOVER_IP", req.data().len());
    };
    if let Some(a) = d.state.public.find(addr).filter(|a| a.in_flight) {
        log_notice!(
            "Takeover of IP {}/{} rejected update for this IP already in flight",
            addr,
            a.mask_bits
        );
        return Outcome::status(-1);
    }
    let have_ip = checks_host_addresses(d) && host_has(addr);
    let step = match d.state.public.takeover(addr, pnn, have_ip) {
        Ok(s) => s,
        Err(e) => {
            log_err!("{}", e);
            return Outcome::status(-1);
        }
    };
    let (event, args, old) = match step {
        Step::TakeIp(a) => {
            log_notice!(
                "Takeover of IP {}/{} on interface {}",
                addr,
                a.mask_bits,
                a.iface
            );
            (Event::TakeIp, event_args(&a), None)
        }
        Step::UpdateIp { old, args } => {
            log_notice!(
                "Update of IP {}/{} from interface {} to {}",
                addr,
                args.mask_bits,
                old,
                args.iface
            );
            (
                Event::UpdateIp,
                format!("{} {}", old, event_args(&args)),
                Some(old),
            )
        }
        _ => return Outcome::status(0),
    };
    d.state.public.set_in_flight(addr, true);
    let to = req.reply_to();
    let done = Box::new(move |d: &mut Daemon, status: EventStatus| {
        takeover_done(d, to, addr, old, status)
    });
    if let Err(e) = d.run_event(event, &args, done) {
        d.state.public.set_in_flight(addr, false);
        log_err!("{}", e);
        log_err!("Failed to takeover IP {}", addr);
        return Outcome::status(-1);
    }
    Outcome::Later
}

/// The takeip (`old` None) or updateip event of `addr` ended: on success
/// local clients hear of a new address; a failed update puts the address
/// back on its old interface for the next run to fix.
fn takeover_done(
    d: &mut Daemon,
    to: ReplyTo,
    addr: IpAddr,
    old: Option<String>,
    status: EventStatus,
) {
    d.state.public.set_in_flight(addr, false);
    let iface = d
        .state
        .public
        .find(addr)
        .map(pa::PublicAddress::active_iface);
    let iface = iface.unwrap_or_else(|| "__none__".into());
    if !status.ok() {
        match old {
            None => log_err!("Failed to takeover IP {} on interface {}", addr, iface),
            Some(old) => {
                log_err!(
                    "Failed update of IP {} from interface {} to {}",
                    addr,
                    old,
                    iface
                );
                d.state.public.move_back(addr, &old);
            }
        }
        d.answer_request(to, status.0, &[], None);
        return;
    }
    if old.is_none() {
        d.announce_takeover(addr);
        tell_clients(d, Srvid::TAKE_IP, addr);
    }
    d.answer_request(to, 0, &[], None);
}

fn decode_public_ip(req: &Request) -> Option<(Pnn, IpAddr)> {
    let pip = req.decode::<PublicIp>().ok()?;
    Some((pip.pnn, pip.addr.to_socket_addr()?.ip()))
}

fn release_ip(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((to, addr)) = decode_public_ip(req) else {
        return Outcome::bad_size("RELEASE_IP", req.data().len());
    };
    d.stop_announcing(addr);
    let checked = checks_host_addresses(d);
    let have_ip = checked && host_has(addr);
    let Step::ReleaseIp(args) = d.state.public.release(addr, to, checked, have_ip) else {
        return Outcome::status(0);
    };
    if d.state.public.find(addr).is_some_and(|a| a.in_flight) {
        log_notice!(
            "Release of IP {}/{} rejected update for this IP already in flight",
            addr,
            args.mask_bits
        );
        return Outcome::status(-1);
    }
    log_notice!(
        "Release of IP {}/{} on interface {}  node:{}",
        addr,
        args.mask_bits,
        args.iface,
        to.0 as i32
    );
    d.state.public.set_in_flight(addr, true);
    let reply_to = req.reply_to();
    let done = Box::new(move |d: &mut Daemon, _: EventStatus| {
        release_done(d, reply_to, addr, to, checked)
    });
    if let Err(e) = d.run_event(Event::ReleaseIp, &event_args(&args), done) {
        d.state.public.set_in_flight(addr, false);
        log_err!("{}", e);
        log_err!("Failed to release IP {} on interface {}", addr, args.iface);
        return Outcome::status(-1);
    }
    Outcome::Later
}

/// The releaseip event of `addr` ended (whatever its status, as in
/// Samba): unless the address is still on an interface, it is recorded
/// on `to` and local clients hear it has gone.
fn release_done(d: &mut Daemon, reply_to: ReplyTo, addr: IpAddr, to: Pnn, checked: bool) {
    d.state.public.set_in_flight(addr, false);
    if checked && host_has(addr) {
        log_err!(
            "IP {} still hosted during release IP callback, failing",
            addr
        );
        d.answer_request(reply_to, -1, &[], None);
        return;
    }
    tell_clients(d, Srvid::RELEASE_IP, addr);
    d.state.public.released(addr, to);
    d.answer_request(reply_to, 0, &[], None);
}

fn decode_addr_info(req: &Request) -> Option<(IpAddr, u32, String)> {
    let info = req.decode::<AddrInfo>().ok()?;
    let ip = info.addr.to_socket_addr()?.ip();
    Some((ip, info.mask, info.iface.unwrap_or_default()))
}

fn add_public_ip(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((addr, mask, ifaces)) = decode_addr_info(req) else {
        log_err!("Too small indata to hold a ctdb_addr_info structure");
        return Outcome::status(-1);
    };
    log_notice!("Add IP {}", addr);
    let c = ConfiguredAddress {
        addr,
        mask_bits: mask as u8,
        ifaces: ifaces
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    match d.state.public.add(&c, &pa::iface_exists) {
        Ok(()) => Outcome::status(0),
        Err(e) => {
            log_err!("{}", e);
            log_err!("Failed to add public address");
            Outcome::status(-1)
        }
    }
}

fn del_public_ip(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((addr, _, _)) = decode_addr_info(req) else {
        log_err!("Too small indata to hold a ctdb_addr_info structure");
        return Outcome::status(-1);
    };
    log_notice!("Delete IP {}", addr);
    match d.state.public.delete(addr) {
        Some(_) => Outcome::status(0),
        None => {
            log_err!("Delete IP of unknown public IP address {}", addr);
            Outcome::status(-1)
        }
    }
}

/// Reads public_addresses again: addresses no longer listed are deleted
/// (those held here at their next release), new ones added, and the first
/// addition asks every node's recovery daemon to rebalance addresses onto
/// this node (REBALANCE_NODE), as Samba's reload child does.
fn reload_public_ips(d: &mut Daemon, _: &Request) -> Outcome {
    let path = d.state.paths.etcdir.join("public_addresses");
    let lines = match std::fs::read_to_string(&path) {
        Ok(text) => pa::parse_file(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("Failed to load public address list: {e}")),
    };
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            log_err!("{}", e);
            log_err!("Failed to re-read public addresses file");
            return Outcome::status(-1);
        }
    };
    let old: Vec<IpAddr> = d.state.public.addrs.iter().map(|a| a.addr).collect();
    for addr in old.iter().filter(|a| !lines.iter().any(|c| c.addr == **a)) {
        log_notice!("IP {} no longer configured, deleting it", addr);
        d.state.public.delete(*addr);
    }
    let mut first_add = true;
    let mut failed = false;
    // Samba walks the re-read list, which is newest (last line) first.
    for c in lines.iter().rev().filter(|c| !old.contains(&c.addr)) {
        log_notice!("New IP {} configured, adding it", c.addr);
        if first_add {
            first_add = false;
            let me = d.state.pnn;
            for to in d.connected_nodes() {
                d.send_message_to(to, Srvid::REBALANCE_NODE, me.to_le_bytes().to_vec());
            }
        }
        if let Err(e) = d.state.public.add(c, &pa::iface_exists) {
            log_err!("{}", e);
            failed = true;
        }
    }
    Outcome::status(if failed { -1 } else { 0 })
}

impl Daemon {
    /// Releases every address this node holds (it was banned or stopped):
    /// a releaseip event each, one at a time per address as in Samba; the
    /// other nodes are not told, the next takeover run places them.
    pub(crate) fn release_all_ips(&mut self) {
        if self.state.config.failover_disabled {
            return;
        }
        let checked = checks_host_addresses(self);
        let held: Vec<(Pnn, bool, EventArgs)> = self
            .state
            .public
            .addrs
            .iter()
            .filter(|a| {
                if checked {
                    host_has(a.addr)
                } else {
                    a.active.is_some()
                }
            })
            .map(|a| (a.holder, a.in_flight, a.event_args()))
            .collect();
        for (holder, in_flight, args) in held {
            let addr = args.addr;
            if in_flight {
                log_warn!(
                    "Not releasing IP {}/{} on interface {}, an update is already in progress",
                    addr,
                    args.mask_bits,
                    args.iface
                );
                continue;
            }
            let args = event_args(&args);
            self.state.public.set_in_flight(addr, true);
            let done = Box::new(move |d: &mut Daemon, _: EventStatus| {
                d.state.public.set_in_flight(addr, false);
                if checked && host_has(addr) {
                    log_err!("IP address {} not released", addr);
                    return;
                }
                tell_clients(d, Srvid::RELEASE_IP, addr);
                d.state.public.released(addr, holder);
            });
            if let Err(e) = self.run_event(Event::ReleaseIp, &args, done) {
                self.state.public.set_in_flight(addr, false);
                log_err!("{}", e);
            }
        }
    }
}

/// The end of a takeover run (also after a recovery): the
/// "ipreallocated" event runs and IPREALLOCATED is answered with its
/// status.
fn ipreallocated(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("IPREALLOCATED", req.data().len());
    }
    let to = req.reply_to();
    let done = Box::new(move |d: &mut Daemon, status: EventStatus| {
        if !status.ok() {
            log_err!(
                " \"ipreallocated\" event script failed (status {})",
                status.0
            );
        }
        d.answer_request(to, status.0, &[], None);
    });
    if let Err(e) = d.run_event(Event::IpReallocated, "", done) {
        log_err!("{}", e);
        log_err!("Failed to run \"ipreallocated\" event ");
        return Outcome::status(-1);
    }
    Outcome::Later
}

/// The connection of a TCP_ADD / TCP_REMOVE and its server address.
fn decode_connection(req: &Request) -> Option<(Connection, IpAddr)> {
    let conn = req.decode::<Connection>().ok()?;
    let dst = conn.dst.to_socket_addr()?.ip();
    Some((conn, dst))
}

/// TCP_ADD (and TCP_ADD_DELAYED_UPDATE, `ctdb addtickle`): the connection
/// goes on its public address's tickle list; -1 for no public address, 0
/// without any.
fn tcp_add(d: &mut Daemon, req: &Request, changed: bool) -> Outcome {
    let Some((conn, dst)) = decode_connection(req) else {
        return Outcome::bad_size("TCP_ADD", req.data().len());
    };
    if d.state.public.addrs.is_empty() {
        return Outcome::status(0);
    }
    if d.state.public.add_tickle(dst, conn, changed) {
        Outcome::status(0)
    } else {
        log_info!(
            "got TCP_ADD control for an address which is not a public address '{}'",
            dst
        );
        Outcome::status(-1)
    }
}

/// TCP_REMOVE (`ctdb deltickle`): 0 whether or not it was known.
fn tcp_remove(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((conn, dst)) = decode_connection(req) else {
        return Outcome::bad_size("TCP_REMOVE", req.data().len());
    };
    if !d.state.public.addrs.is_empty() && !d.state.public.remove_tickle(dst, &conn) {
        log_err!("unable to find public address {}", dst);
    }
    Outcome::status(0)
}

/// GET_TCP_TICKLE_LIST (`ctdb gettickles`): the connections to the address
/// (to its port, unless 0); status 1 for no public address.
fn get_tickle_list(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(addr) = req.decode::<SockAddr>() else {
        return Outcome::bad_size("GET_TCP_TICKLE_LIST", req.data().len());
    };
    let Some(sa) = addr.to_socket_addr() else {
        return Outcome::status(1);
    };
    match d.state.public.tickles(sa.ip(), sa.port()) {
        Some(connections) => Outcome::value(&TickleList { addr, connections }),
        None => {
            log_err!(
                "Could not get tcp tickle list, '{}' is not a public address",
                sa.ip()
            );
            Outcome::status(1)
        }
    }
}

/// SET_TCP_TICKLE_LIST: the holder's list for an address held elsewhere.
fn set_tickle_list(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(list) = req.decode::<TickleList>() else {
        log_err!("Bad indata in ctdb_tickle_list");
        return Outcome::status(-1);
    };
    let Some(addr) = list.addr.to_socket_addr().map(|s| s.ip()) else {
        return Outcome::status(1);
    };
    match d.state.public.set_tickles(addr, list.connections) {
        pa::TickleUpdate::NotPublic => Outcome::status(1),
        _ => Outcome::status(0),
    }
}

impl Daemon {
    fn tickle_update_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.state.tunables.tickle_update_interval.max(1).into())
    }

    /// Arms the first tickle list update, TickleUpdateInterval from now.
    pub(crate) fn start_tickle_updates(&mut self, now: std::time::Instant) {
        let at = now + self.tickle_update_interval();
        self.arm_timer(at, crate::timers::TimerEvent::TickleUpdate);
    }

    /// Every TickleUpdateInterval: the tickle list of each address held
    /// here that changed goes to every node (SET_TCP_TICKLE_LIST, no
    /// reply), as Samba's ctdb_update_tcp_tickles.
    pub(crate) fn tickle_update_timer(&mut self, now: std::time::Instant) {
        self.send_tickle_lists(false);
        self.start_tickle_updates(now);
    }
}
