//! Tunable controls: LIST_TUNABLES, GET_TUNABLE, SET_TUNABLE and
//! GET_ALL_TUNABLES over the typed `Tunables`.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::log_warn;
use crate::protocol::{self as p, ctrl, Writer};
use crate::tunables::{SetResult, Tunables};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ctrl::LIST_TUNABLES, list);
    r.add(ctrl::GET_TUNABLE, get);
    r.add(ctrl::SET_TUNABLE, set);
    r.add(ctrl::GET_ALL_TUNABLES, |d, _| {
        let mut w = Writer::new();
        d.state.tunables.encode_all(&mut w);
        Outcome::ok(w.buf)
    });
}

/// var_list: the payload length, then the names joined by ':' with a NUL.
fn list(_: &mut Daemon, _: &Request) -> Outcome {
    let list = Tunables::names().join(":");
    let mut w = Writer::new();
    w.u32(list.len() as u32 + 1).cstring(&list);
    Outcome::ok(w.buf)
}

/// A length-prefixed NUL-terminated name.
fn name(r: &mut p::Reader) -> Option<String> {
    r.u32()
        .and_then(|l| r.bytes(l as usize))
        .and_then(p::parse_cstring)
}

fn get(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(name) = name(&mut p::Reader::new(req.data())) else {
        return Outcome::fail("bad tunable request");
    };
    match d.state.tunables.get(&name) {
        Some(v) => Outcome::u32(v),
        None => Outcome::status(-libc::EINVAL),
    }
}

fn set(d: &mut Daemon, req: &Request) -> Outcome {
    let mut r = p::Reader::new(req.data());
    let value = r.u32();
    let (Some(value), Some(name)) = (value, name(&mut r)) else {
        return Outcome::fail("bad tunable request");
    };
    match d.state.tunables.set(&name, value) {
        SetResult::Ok => Outcome::status(0),
        SetResult::Obsolete => {
            log_warn!("Setting obsolete tunable \"{}\"", name);
            Outcome::status(1)
        }
        SetResult::Unknown => Outcome::status(-1),
    }
}
