//! Srvid and notification controls: REGISTER_SRVID, DEREGISTER_SRVID,
//! CHECK_PID_SRVID, REGISTER_NOTIFY and DEREGISTER_NOTIFY.  Delivery is in
//! `messages`.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::messages::NotifyError;
use crate::protocol::{self as p, ctrl};
use crate::{log_err, log_info};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ctrl::REGISTER_SRVID, register_srvid);
    r.add(ctrl::DEREGISTER_SRVID, deregister_srvid);
    r.add(ctrl::CHECK_PID_SRVID, check_pid_srvid);
    r.add(ctrl::REGISTER_NOTIFY, register_notify);
    r.add(ctrl::DEREGISTER_NOTIFY, deregister_notify);
}

fn register_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let srvid = req.control.srvid;
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    d.registrations.register(c, srvid);
    log_info!("Registered message handler for srvid={}", srvid);
    if srvid == p::SRVID_LEADER {
        // Tell a new listener at once who leads, rather than making it wait
        // for the next periodic announcement.
        d.leader_to(c);
    }
    Outcome::status(0)
}

/// One registration goes; ENOENT when this client has none.
fn deregister_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    if d.registrations.deregister(c, req.control.srvid) {
        Outcome::status(0)
    } else {
        Outcome::status(libc::ENOENT)
    }
}

/// ctdb_pid_srvid is packed: pid i32 then srvid u64 (12 bytes), as the tool
/// and smbd's ctdbd_conn.c send it.
fn check_pid_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let mut r = p::Reader::new(req.data());
    let (Some(pid), Some(srvid)) = (r.i32(), r.u64()) else {
        return Outcome::fail("bad request");
    };
    let found = d
        .transport
        .live()
        .any(|(c, p)| p == pid && d.registrations.has(c, srvid));
    Outcome::status(if found { 0 } else { -1 })
}

fn register_notify(d: &mut Daemon, req: &Request) -> Outcome {
    let Some((srvid, data)) = p::parse_notify_data(req.data()) else {
        log_err!(
            "Wrong amount of data in REGISTER_NOTIFY control ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    };
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    log_info!(
        "Register srvid {} for client pid:{}",
        srvid,
        d.transport.pid(c)
    );
    match d.registrations.add_notify(c, srvid, data) {
        Ok(()) => Outcome::status(0),
        Err(_) => {
            log_err!(
                "Notification for srvid:{} already exists for this client",
                srvid
            );
            Outcome::status(-1)
        }
    }
}

fn deregister_notify(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 8 {
        return Outcome::bad_size("DEREGISTER_NOTIFY", req.data().len());
    }
    let Some(srvid) = p::Reader::new(req.data()).u64() else {
        return Outcome::status(-1);
    };
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    match d.registrations.remove_notify(c, srvid) {
        Ok(()) => Outcome::status(0),
        Err(NotifyError::Missing | NotifyError::Exists) => {
            log_err!("No notification for srvid:{} found for this client", srvid);
            Outcome::status(-1)
        }
    }
}
