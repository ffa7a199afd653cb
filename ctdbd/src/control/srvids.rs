//! Srvid and notification controls: REGISTER_SRVID, DEREGISTER_SRVID,
//! CHECK_PID_SRVID, REGISTER_NOTIFY and DEREGISTER_NOTIFY.  Delivery is in
//! `messages`.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::messages::NotifyError;
use crate::{log_err, log_info};
use ctdb_protocol::types::NotifyData;
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, Srvid};

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::RegisterSrvid, register_srvid);
    r.add(ControlOpcode::DeregisterSrvid, deregister_srvid);
    r.add(ControlOpcode::CheckPidSrvid, check_pid_srvid);
    r.add(ControlOpcode::RegisterNotify, register_notify);
    r.add(ControlOpcode::DeregisterNotify, deregister_notify);
}

fn register_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let srvid = req.control.srvid.0;
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    d.registrations.register(c, srvid);
    log_info!("Registered message handler for srvid={}", srvid);
    Outcome::status(0)
}

/// One registration goes; ENOENT when this client has none.
fn deregister_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let Some(c) = req.client() else {
        return Outcome::status(-1);
    };
    if d.registrations.deregister(c, req.control.srvid.0) {
        Outcome::status(0)
    } else {
        Outcome::status(libc::ENOENT)
    }
}

/// ctdb_pid_srvid is packed: pid i32 then srvid u64 (12 bytes), as the tool
/// and smbd's ctdbd_conn.c send it.
fn check_pid_srvid(d: &mut Daemon, req: &Request) -> Outcome {
    let mut r = Reader::new(req.data());
    let (Ok(pid), Ok(srvid)) = (r.i32("pid"), r.u64("srvid")) else {
        return Outcome::fail("bad request");
    };
    let found = d
        .transport
        .live()
        .any(|(c, p)| p == pid && d.registrations.has(c, srvid));
    Outcome::status(if found { 0 } else { -1 })
}

fn register_notify(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(NotifyData { srvid, data }) = req.decode::<NotifyData>() else {
        log_err!(
            "Wrong amount of data in REGISTER_NOTIFY control ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    };
    let srvid = srvid.0;
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
    let Ok(Srvid(srvid)) = req.decode::<Srvid>() else {
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
