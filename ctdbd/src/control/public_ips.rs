//! Public address controls: GET_IFACES, TCP_CLIENT, GET_PUBLIC_IPS and
//! GET_PUBLIC_IP_INFO.  There is no IP takeover yet: addresses are listed
//! but never hosted.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::log_err;
use ctdb_protocol::packet::CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE;
use ctdb_protocol::types::{
    Connection, Iface, IfaceList, PublicIp, PublicIpInfo, PublicIpList, RunState,
    NODE_FLAGS_BANNED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_PERMANENTLY_DISABLED,
    NODE_FLAGS_STOPPED, NODE_FLAGS_UNHEALTHY,
};
use ctdb_protocol::wire::SockAddr;
use ctdb_protocol::{ControlOpcode, Pnn};
use std::net::{IpAddr, Ipv4Addr};

/// An interface as this node reports it: link up, no references (links are
/// never monitored, so they stay as they start in Samba).
fn iface(name: &str) -> Iface {
    Iface {
        name: name.to_string(),
        link_state: 1,
        references: 0,
    }
}

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::GetIfaces, ifaces);
    r.add(ControlOpcode::TcpClient, tcp_client);
    r.add(ControlOpcode::GetPublicIps, public_ips);
    r.add(ControlOpcode::GetPublicIpInfo, public_ip_info);
}

fn ifaces(d: &mut Daemon, _: &Request) -> Outcome {
    // Samba prepends each new interface to its list.
    let list = d.state.public_ifaces.iter().rev().map(|n| iface(n));
    Outcome::value(&IfaceList(list.collect()))
}

/// smbd registers each SMB connection (the SMB client's address as src, its
/// own as dst) so that an IP takeover can send tickle ACKs.  Without public
/// addresses that is pointless and accepted, as in Samba; a connection to a
/// listed public address fails because this node holds none of them (no IP
/// takeover yet), which tells smbd to drop the connection.
fn tcp_client(d: &mut Daemon, req: &Request) -> Outcome {
    let conn = req.decode::<Connection>().ok();
    let addrs = conn.and_then(|c| Some((c.src.to_socket_addr()?, c.dst.to_socket_addr()?)));
    let Some((client, server)) = addrs else {
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
    let unusable = NODE_FLAGS_DISCONNECTED
        | NODE_FLAGS_BANNED
        | NODE_FLAGS_STOPPED
        | NODE_FLAGS_UNHEALTHY
        | NODE_FLAGS_PERMANENTLY_DISABLED;
    let available = st.runstate == RunState::Running && st.own_flags() & unusable == 0;
    let only_available = req.control.flags & CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE != 0;
    let ips = if only_available && !available {
        Vec::new()
    } else {
        // Samba prepends each address of the file to its list.
        st.public_ips
            .iter()
            .rev()
            .map(|p| PublicIp {
                pnn: Pnn::UNKNOWN,
                addr: SockAddr::from(p.ip),
            })
            .collect()
    };
    Outcome::value(&PublicIpList(ips))
}

/// ctdb_public_ip_info: the address (unassigned), no active interface, then
/// its interfaces, links up, no references.
fn public_ip_info(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(addr) = req.decode::<SockAddr>() else {
        return Outcome::bad_size("GET_PUBLIC_IP_INFO", req.data().len());
    };
    let addr = addr.to_socket_addr();
    let found = addr.and_then(|a| d.state.public_ips.iter().find(|p| p.ip == a.ip()));
    let Some(pubip) = found else {
        log_err!(
            "Could not get public ip info, '{}' not a public address",
            addr.map_or("?".to_string(), |a| a.ip().to_string())
        );
        return Outcome::status(-1);
    };
    Outcome::value(&PublicIpInfo {
        ip: PublicIp {
            pnn: Pnn::UNKNOWN,
            addr: SockAddr::from(pubip.ip),
        },
        active_idx: u32::MAX,
        ifaces: IfaceList(pubip.ifaces.iter().map(|n| iface(n)).collect()),
    })
}
