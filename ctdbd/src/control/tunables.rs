//! Tunable controls: LIST_TUNABLES, GET_TUNABLE, SET_TUNABLE and
//! GET_ALL_TUNABLES over the typed `Tunables`.

use super::name_in;
use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::log_warn;
use crate::tunables::{SetResult, Tunables};
use ctdb_protocol::tunables::VarList;
use ctdb_protocol::wire::Reader;
use ctdb_protocol::ControlOpcode;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::ListTunables, list);
    r.add(ControlOpcode::GetTunable, get);
    r.add(ControlOpcode::SetTunable, set);
    r.add(ControlOpcode::GetAllTunables, |d, _| {
        Outcome::value(&d.state.tunables.to_list())
    });
}

/// The names of the tunables that are not obsolete, each after a ':' as
/// Samba's daemon sends them (so the list starts with ':').
fn list(_: &mut Daemon, _: &Request) -> Outcome {
    let names = std::iter::once(String::new())
        .chain(Tunables::names().into_iter().map(str::to_string))
        .collect();
    Outcome::value(&VarList(names))
}

/// A length-prefixed name (its NUL may be missing).
fn name(r: &mut Reader) -> Option<String> {
    let len = r.u32("tunable name length").ok()?;
    name_in(r.take(len as usize, "tunable name").ok()?)
}

fn get(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(name) = name(&mut Reader::new(req.data())) else {
        return Outcome::fail("bad tunable request");
    };
    match d.state.tunables.get(&name) {
        Some(v) => Outcome::value(&v),
        None => Outcome::status(-libc::EINVAL),
    }
}

fn set(d: &mut Daemon, req: &Request) -> Outcome {
    let mut r = Reader::new(req.data());
    let value = r.u32("tunable value").ok();
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
