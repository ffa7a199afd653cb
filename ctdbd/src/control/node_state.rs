//! Node state controls: who this node is, its run state, recovery mode,
//! capabilities, debug level, uptime, node and vnn maps, and SHUTDOWN.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use ctdb_protocol::types::{
    NodeAndFlags, NodeMap, Uptime, VnnMap, CAP_LMASTER, CAP_RECMASTER, NODE_FLAGS_DISCONNECTED,
};
use ctdb_protocol::wire::{Reader, SockAddr, Timeval};
use ctdb_protocol::{ControlOpcode, Pnn};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::ProcessExists, process_exists);
    r.add(ControlOpcode::Ping, ping);
    r.add(ControlOpcode::GetPid, |_, _| {
        Outcome::status(std::process::id() as i32)
    });
    r.add(ControlOpcode::GetPnn, |d, _| {
        Outcome::status(d.state.pnn as i32)
    });
    r.add(ControlOpcode::GetRecmode, |d, _| {
        Outcome::status(d.state.recmode as i32)
    });
    r.add(ControlOpcode::GetRunState, |d, _| {
        Outcome::value(&d.state.runstate)
    });
    r.add(ControlOpcode::GetCapabilities, |d, _| {
        Outcome::value(&d.state.capabilities)
    });
    r.add(ControlOpcode::SetLmasterRole, |d, req| {
        set_role(d, req, CAP_LMASTER)
    });
    r.add(ControlOpcode::SetRecmasterRole, |d, req| {
        set_role(d, req, CAP_RECMASTER)
    });
    r.add(ControlOpcode::GetDebug, |_, _| {
        Outcome::value(&crate::logging::level())
    });
    r.add(ControlOpcode::SetDebug, set_debug);
    r.add(ControlOpcode::Uptime, uptime);
    r.add(ControlOpcode::GetVnnMap, vnn_map);
    r.add(ControlOpcode::GetNodeMap, node_map);
    r.add(ControlOpcode::Shutdown, |_, _| Outcome::Exit);
}

fn process_exists(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(pid) = Reader::new(req.data()).i32("pid") else {
        return Outcome::fail("missing pid");
    };
    if d.transport.live().any(|(_, p)| p == pid) {
        Outcome::status(0)
    } else {
        Outcome::status(-1)
    }
}

/// PING answers with the number of connected clients.
fn ping(d: &mut Daemon, _: &Request) -> Outcome {
    Outcome::status(d.transport.live().count() as i32)
}

/// SET_LMASTERROLE / SET_RECMASTERROLE: turns capability `cap` of this node
/// off (0) or on (anything else); the recovery daemon acts on it at its next
/// main loop (the vnn map, the election).
fn set_role(d: &mut Daemon, req: &Request, cap: u32) -> Outcome {
    let Ok(on) = Reader::new(req.data()).u32("role") else {
        return Outcome::fail("missing role");
    };
    if on == 0 {
        d.state.capabilities &= !cap;
    } else {
        d.state.capabilities |= cap;
    }
    Outcome::status(0)
}

fn set_debug(_: &mut Daemon, req: &Request) -> Outcome {
    match Reader::new(req.data()).u32("debug level") {
        Ok(l) => {
            crate::logging::set_level(l);
            Outcome::status(0)
        }
        Err(_) => Outcome::fail("missing debug level"),
    }
}

fn uptime(d: &mut Daemon, _: &Request) -> Outcome {
    let st = &d.state;
    Outcome::value(&Uptime {
        current_time: Timeval::now(),
        ctdbd_start_time: st.start_time,
        last_recovery_started: st.last_recovery_started,
        last_recovery_finished: st.last_recovery_finished,
    })
}

/// GETVNNMAP: the generation and map as the last recovery (or the
/// start-up) set them.
fn vnn_map(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("GETVNNMAP", req.data().len());
    }
    Outcome::value(&VnnMap {
        generation: d.state.generation,
        map: d.state.vnn_map.clone(),
    })
}

fn node_map(d: &mut Daemon, _: &Request) -> Outcome {
    let st = &d.state;
    let mut map = NodeMap::default();
    for n in &st.nodes {
        map.0.push(NodeAndFlags {
            pnn: Pnn(n.pnn),
            flags: st.flags_of(Pnn(n.pnn)).unwrap_or(NODE_FLAGS_DISCONNECTED),
            addr: SockAddr::from(n.addr),
        });
    }
    Outcome::value(&map)
}
