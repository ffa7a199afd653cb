//! Node state controls: who this node is, its run state, recovery mode,
//! capabilities, debug level, uptime, node and vnn maps, and SHUTDOWN.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::protocol::{self as p, ctrl, Timeval, Writer};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ctrl::PROCESS_EXISTS, process_exists);
    r.add(ctrl::PING, ping);
    r.add(ctrl::GET_PID, |_, _| {
        Outcome::status(std::process::id() as i32)
    });
    r.add(ctrl::GET_PNN, |d, _| Outcome::status(d.state.pnn as i32));
    r.add(ctrl::GET_RECMODE, |d, _| {
        Outcome::status(d.state.recmode as i32)
    });
    r.add(ctrl::GET_RUNSTATE, |d, _| {
        Outcome::u32(d.state.runstate as u32)
    });
    r.add(ctrl::GET_CAPABILITIES, |d, _| {
        Outcome::u32(d.state.capabilities)
    });
    r.add(
        ctrl::GET_DEBUG,
        |_, _| Outcome::u32(crate::logging::level()),
    );
    r.add(ctrl::SET_DEBUG, set_debug);
    r.add(ctrl::UPTIME, uptime);
    r.add(ctrl::GETVNNMAP, vnn_map);
    r.add(ctrl::GET_NODEMAP, node_map);
    r.add(ctrl::GET_NODES_FILE, node_map);
    r.add(ctrl::SHUTDOWN, |_, _| Outcome::Exit);
}

fn process_exists(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(pid) = p::Reader::new(req.data()).i32() else {
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

fn set_debug(_: &mut Daemon, req: &Request) -> Outcome {
    match p::Reader::new(req.data()).u32() {
        Some(l) => {
            crate::logging::set_level(l);
            Outcome::status(0)
        }
        None => Outcome::fail("missing debug level"),
    }
}

fn uptime(d: &mut Daemon, _: &Request) -> Outcome {
    let st = &d.state;
    let mut w = Writer::new();
    w.timeval(Timeval::now())
        .timeval(st.start_time)
        .timeval(st.last_recovery_started)
        .timeval(st.last_recovery_finished);
    Outcome::ok(w.buf)
}

/// The vnn map: this node alone, when it has the lmaster capability.
fn vnn_map(d: &mut Daemon, _: &Request) -> Outcome {
    let st = &d.state;
    let active: Vec<u32> = if st.capabilities & p::CAP_LMASTER != 0 {
        vec![st.pnn]
    } else {
        vec![]
    };
    let mut w = Writer::new();
    w.u32(st.generation).u32(active.len() as u32);
    for n in active {
        w.u32(n);
    }
    Outcome::ok(w.buf)
}

fn node_map(d: &mut Daemon, req: &Request) -> Outcome {
    let st = &d.state;
    let mut w = Writer::new();
    w.u32(st.nodes.len() as u32);
    for n in &st.nodes {
        // GET_NODES_FILE reports the file as read (only deleted nodes
        // flagged); GET_NODEMAP the live view, in which every other node is
        // disconnected until the node transport exists.
        let flags = if n.deleted {
            p::NODE_FLAGS_DELETED
        } else if req.control.opcode == ctrl::GET_NODES_FILE {
            0
        } else if n.pnn == st.pnn {
            st.flags
        } else {
            p::NODE_FLAGS_DISCONNECTED
        };
        w.u32(n.pnn).u32(flags);
        p::sock_addr(&mut w, &n.addr);
    }
    Outcome::ok(w.buf)
}
