//! Public address controls: GET_IFACES, TCP_CLIENT, GET_PUBLIC_IPS and
//! GET_PUBLIC_IP_INFO.  There is no IP takeover yet: addresses are listed
//! but never hosted.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::log_err;
use crate::protocol::{self as p, ctrl, RunState, Writer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ctrl::GET_IFACES, ifaces);
    r.add(ctrl::TCP_CLIENT, tcp_client);
    r.add(ctrl::GET_PUBLIC_IPS, public_ips);
    r.add(ctrl::GET_PUBLIC_IP_INFO, public_ip_info);
}

fn ifaces(d: &mut Daemon, _: &Request) -> Outcome {
    let names = &d.state.public_ifaces;
    let mut w = Writer::new();
    w.u32(names.len() as u32);
    // Samba prepends each new interface to its list.
    for name in names.iter().rev() {
        p::iface(&mut w, name, 1, 0);
    }
    Outcome::ok(w.buf)
}

/// smbd registers each SMB connection (the SMB client's address as src, its
/// own as dst) so that an IP takeover can send tickle ACKs.  Without public
/// addresses that is pointless and accepted, as in Samba; a connection to a
/// listed public address fails because this node holds none of them (no IP
/// takeover yet), which tells smbd to drop the connection.
fn tcp_client(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((client, server)) = p::parse_connection(req.data()) else {
        return Outcome::bad_size("TCP_CLIENT", req.data().len());
    };
    let ips = &d.state.public_ips;
    if ips.is_empty() {
        return Outcome::status(0);
    }
    if ips.iter().any(|p| p.ip == server.ip()) {
        log_err!(
            "Attempt to register tcp client for IP {} we don't hold - failing",
            server.ip()
        );
        return Outcome::status(-1);
    }
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

/// PUBLIC_IP_FLAGS_ONLY_AVAILABLE (0x10000) leaves out the addresses this
/// node could not host: all of them unless it is RUNNING and neither
/// inactive nor disabled (interfaces are never monitored, so their links
/// stay up, as they start in Samba).  No address is ever assigned (pnn -1):
/// there is no IP takeover, as in Samba with failover disabled.
fn public_ips(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("GET_PUBLIC_IPS", req.data().len());
    }
    let st = &d.state;
    let unusable = p::NODE_FLAGS_DISCONNECTED
        | p::NODE_FLAGS_BANNED
        | p::NODE_FLAGS_STOPPED
        | p::NODE_FLAGS_UNHEALTHY
        | p::NODE_FLAGS_PERMANENTLY_DISABLED;
    let available = st.runstate == RunState::Running && st.flags & unusable == 0;
    let only_available = req.control.flags & p::PUBLIC_IP_FLAGS_ONLY_AVAILABLE != 0;
    let ips: Vec<(u32, IpAddr)> = if only_available && !available {
        Vec::new()
    } else {
        // Samba prepends each address of the file to its list.
        st.public_ips
            .iter()
            .rev()
            .map(|p| (p::UNKNOWN_PNN, p.ip))
            .collect()
    };
    let mut w = Writer::new();
    p::public_ip_list(&mut w, &ips);
    Outcome::ok(w.buf)
}

/// ctdb_public_ip_info: the address (unassigned), no active interface, then
/// its interfaces, links up, no references.
fn public_ip_info(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != p::SOCK_ADDR_LEN {
        return Outcome::bad_size("GET_PUBLIC_IP_INFO", req.data().len());
    }
    let addr = p::parse_sock_addr(req.data());
    let found = addr.and_then(|a| d.state.public_ips.iter().find(|p| p.ip == a.ip()));
    let Some(pubip) = found else {
        log_err!(
            "Could not get public ip info, '{}' not a public address",
            addr.map_or("?".to_string(), |a| a.ip().to_string())
        );
        return Outcome::status(-1);
    };
    let mut w = Writer::new();
    w.u32(p::UNKNOWN_PNN);
    p::sock_addr(&mut w, &SocketAddr::new(pubip.ip, 0));
    w.u32(u32::MAX).u32(pubip.ifaces.len() as u32);
    for name in &pubip.ifaces {
        p::iface(&mut w, name, 1, 0);
    }
    Outcome::ok(w.buf)
}
