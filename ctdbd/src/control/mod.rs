//! Controls: a registry from opcode to handler, filled by the concern
//! modules below.  A handler gets the daemon and the decoded request and
//! returns an `Outcome`; it queues anything else it does (messages, timers,
//! database work) as actions or tracked requests.
//!
//! A new control goes into the module of its concern: write the handler,
//! add it in that module's `register`, and nothing else changes.

use crate::daemon::{Daemon, ReplyTo};
use crate::log_err;
use crate::protocol::{self as p, Header, ReqControl};
use crate::transport::{ClientId, Origin};
use std::collections::HashMap;

pub mod databases;
pub mod node_state;
pub mod public_ips;
pub mod recovery;
pub mod srvids;
pub mod statistics;
pub mod tunables;
pub mod vacuuming;

/// A REQ_CONTROL, decoded, with where it came from.
pub struct Request {
    pub origin: Origin,
    pub header: Header,
    pub control: ReqControl,
}

impl Request {
    /// The control's payload.
    pub fn data(&self) -> &[u8] {
        &self.control.data
    }

    /// Where the reply goes.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            origin: self.origin,
            reqid: self.header.reqid,
        }
    }

    /// The sender asked for no reply (CTRL_FLAG_NOREPLY).
    pub fn noreply(&self) -> bool {
        self.control.flags & p::CTRL_FLAG_NOREPLY != 0
    }

    /// The local client that sent it, if a local client did.
    pub fn client(&self) -> Option<ClientId> {
        self.origin.client()
    }
}

/// What a control handler decided.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Reply now with (status, data, error message).
    Reply(i32, Vec<u8>, Option<String>),
    /// The reply is sent later (when tracked work finishes).
    Later,
    /// The daemon is going down; no reply.
    Exit,
}

impl Outcome {
    /// Status 0 with `data`.
    pub fn ok(data: Vec<u8>) -> Outcome {
        Outcome::Reply(0, data, None)
    }

    /// A bare status, no data.
    pub fn status(s: i32) -> Outcome {
        Outcome::Reply(s, Vec::new(), None)
    }

    /// Status -1 with an error message.
    pub fn fail(msg: &str) -> Outcome {
        Outcome::Reply(-1, Vec::new(), Some(msg.to_string()))
    }

    /// A control whose data has the wrong size (Samba's
    /// CHECK_CONTROL_DATA_SIZE): logged, status -1.
    pub fn bad_size(name: &str, got: usize) -> Outcome {
        log_err!("Invalid data in {} control ({} bytes)", name, got);
        Outcome::status(-1)
    }

    /// Status 0 with one u32.
    pub fn u32(v: u32) -> Outcome {
        Outcome::ok(v.to_le_bytes().to_vec())
    }
}

/// A control handler.
pub type Handler = fn(&mut Daemon, &Request) -> Outcome;

/// Opcode → handler.
pub struct Registry {
    handlers: HashMap<u32, Handler>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            handlers: HashMap::new(),
        }
    }

    /// The registry with every concern's controls.
    pub fn with_every_concern() -> Registry {
        let mut r = Registry::new();
        node_state::register(&mut r);
        srvids::register(&mut r);
        tunables::register(&mut r);
        statistics::register(&mut r);
        public_ips::register(&mut r);
        databases::register(&mut r);
        recovery::register(&mut r);
        vacuuming::register(&mut r);
        r
    }

    /// Registers the handler of `opcode`; an opcode has exactly one handler.
    pub fn add(&mut self, opcode: u32, h: Handler) {
        let old = self.handlers.insert(opcode, h);
        assert!(old.is_none(), "control {opcode} registered twice");
    }

    /// The handler of `opcode`, if one is registered.
    pub fn get(&self, opcode: u32) -> Option<Handler> {
        self.handlers.get(&opcode).copied()
    }

    /// The registered opcodes, sorted.
    #[cfg(test)]
    pub fn opcodes(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.handlers.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl Daemon {
    /// Runs the handler registered for the request's opcode; an unknown
    /// control fails, as in Samba.
    pub(crate) fn control(&mut self, req: &Request) -> Outcome {
        match self.controls.get(req.control.opcode) {
            Some(h) => h(self, req),
            None => {
                let pid = req.client().map_or(-1, |c| self.transport.pid(c));
                log_err!(
                    "Unknown control {} from client pid:{}",
                    req.control.opcode,
                    pid
                );
                Outcome::fail("unknown control")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ctrl;

    #[test]
    fn every_known_control_has_one_handler() {
        let r = Registry::with_every_concern();
        let want = [
            ctrl::PROCESS_EXISTS,
            ctrl::STATISTICS,
            ctrl::PING,
            ctrl::GETDBPATH,
            ctrl::GETVNNMAP,
            ctrl::GET_DEBUG,
            ctrl::SET_DEBUG,
            ctrl::GET_DBMAP,
            ctrl::GET_RECMODE,
            ctrl::STATISTICS_RESET,
            ctrl::DB_ATTACH,
            ctrl::TRAVERSE_START,
            ctrl::REGISTER_SRVID,
            ctrl::DEREGISTER_SRVID,
            ctrl::GET_DBNAME,
            ctrl::ENABLE_SEQNUM,
            ctrl::UPDATE_SEQNUM,
            ctrl::GET_PID,
            ctrl::GET_PNN,
            ctrl::SHUTDOWN,
            ctrl::TCP_CLIENT,
            ctrl::SET_TUNABLE,
            ctrl::GET_TUNABLE,
            ctrl::LIST_TUNABLES,
            ctrl::GET_ALL_TUNABLES,
            ctrl::DB_ATTACH_PERSISTENT,
            ctrl::WIPE_DATABASE,
            ctrl::UPTIME,
            ctrl::GET_CAPABILITIES,
            ctrl::GET_PUBLIC_IPS,
            ctrl::GET_NODEMAP,
            ctrl::REGISTER_NOTIFY,
            ctrl::DEREGISTER_NOTIFY,
            ctrl::TRANS3_COMMIT,
            ctrl::GET_DB_SEQNUM,
            ctrl::DB_SET_HEALTHY,
            ctrl::DB_GET_HEALTH,
            ctrl::GET_PUBLIC_IP_INFO,
            ctrl::GET_IFACES,
            ctrl::SCHEDULE_FOR_DELETION,
            ctrl::SET_DB_READONLY,
            ctrl::TRAVERSE_START_EXT,
            ctrl::GET_DB_STATISTICS,
            ctrl::SET_DB_STICKY,
            ctrl::GET_RUNSTATE,
            ctrl::DB_DETACH,
            ctrl::GET_NODES_FILE,
            ctrl::DB_FREEZE,
            ctrl::DB_THAW,
            ctrl::DB_TRANSACTION_START,
            ctrl::DB_TRANSACTION_COMMIT,
            ctrl::DB_TRANSACTION_CANCEL,
            ctrl::DB_PUSH_START,
            ctrl::DB_PUSH_CONFIRM,
            ctrl::DB_OPEN_FLAGS,
            ctrl::DB_ATTACH_REPLICATED,
            ctrl::CHECK_PID_SRVID,
            ctrl::DB_VACUUM,
        ];
        let mut want = want.to_vec();
        want.sort_unstable();
        assert_eq!(r.opcodes(), want);
        assert!(r.get(ctrl::ECHO_DATA).is_none());
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_second_handler_for_an_opcode_is_refused() {
        let mut r = Registry::new();
        node_state::register(&mut r);
        node_state::register(&mut r);
    }
}
