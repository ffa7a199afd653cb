//! DB_PULL: a recovery reads a frozen database.  Every record in the file
//! (ltdb header included, empty records and other nodes' copies too) goes
//! to the srvid named in the request, on the node that sent it, as
//! REQ_MESSAGEs each carrying one marshall buffer of about
//! RecBufferSizeLimit bytes; the control's reply, after the last of them,
//! carries the number of records sent.
//!
//! The database's worker walks the file and cuts the records straight into
//! marshall buffers, streamed to the event loop as a traverse's batches
//! are (at most a few at a time), so a pull holds a few buffers, whatever
//! the database's size, and the loop only sends them.  A
//! pull waits while its receiver has more than `PULL_BACKLOG` bytes not
//! taken yet: a local client's unread output, or the bytes queued on the
//! connection to the node.

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, ReplyTo};
use crate::db::traverse::{stream_pair, Item, Stream};
use crate::db::Op;
use crate::requests::Tag;
use crate::transport::Origin;
use crate::{log_err, log_info, log_warn};
use ctdb_protocol::packet::ReqMessage;
use ctdb_protocol::types::PullDbExt;
use ctdb_protocol::{ControlOpcode, DbId, Header, Operation, Packet, Pnn, Srvid};

/// Unsent bytes a pull's local receiver may have before the pull waits.
pub const PULL_BACKLOG: usize = 4 << 20;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::DbPull, db_pull);
}

/// A DB_PULL in flight.
pub struct ActivePull {
    /// The database pulled.
    db_id: DbId,
    /// The node the records go to (the request's source node).
    to: Pnn,
    /// The srvid they go to there.
    srvid: Srvid,
    /// Where the control's reply goes, unless NOREPLY.
    reply_to: Option<ReplyTo>,
    /// The worker's marshall buffers.
    stream: Stream,
    /// Records sent so far.
    sent: u32,
}

fn db_pull(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(pull) = req.decode::<PullDbExt>() else {
        return Outcome::bad_size("DB_PULL", req.data().len());
    };
    let id = pull.db_id.0;
    let Some(db) = d.find_db(id) else {
        log_err!("Unknown db 0x{:08x}", id);
        return Outcome::status(-1);
    };
    if !db.frozen {
        log_err!("rejecting ctdb_control_pull_db when not frozen");
        return Outcome::status(-1);
    }
    if let Some(why) = &db.unhealthy {
        log_warn!("db({}) unhealty in ctdb_control_db_pull: {}", db.name, why);
    }
    if db.invalid_records {
        return Outcome::value(&0u32);
    }
    let (sink, stream) = stream_pair();
    let tag = d.requests.new_tag();
    let limit = (d.state.tunables.rec_buffer_size_limit as usize).max(1);
    let op = Op::Pull {
        sink,
        db_id: pull.db_id,
        limit,
    };
    d.submit_tagged(tag, id, op);
    let reply_to = (!req.noreply()).then(|| req.reply_to());
    d.pulls.insert(
        tag,
        ActivePull {
            db_id: pull.db_id,
            to: req.header.srcnode,
            srvid: pull.srvid,
            reply_to,
            stream,
            sent: 0,
        },
    );
    Outcome::Later
}

impl Daemon {
    /// Moves what the pulls' workers streamed into record buffers and sends
    /// them; a pull whose last buffer went out is answered and forgotten.
    pub(crate) fn pump_pulls(&mut self) {
        let tags: Vec<Tag> = self.pulls.keys().copied().collect();
        for tag in tags {
            self.pump_pull(tag);
        }
    }

    fn pump_pull(&mut self, tag: Tag) {
        loop {
            let Some(p) = self.pulls.get(&tag) else {
                return;
            };
            let backlog = if p.to.0 == self.state.pnn {
                self.local_backlog(p.srvid)
            } else {
                self.links.queued(p.to)
            };
            if backlog > PULL_BACKLOG {
                return;
            }
            match p.stream.try_next() {
                None => return,
                Some(Item::Buffer(bytes, count)) => self.pull_send(tag, bytes, count),
                // A pull's walk makes marshall buffers only.
                Some(Item::Batch(_)) => {}
                Some(Item::End(result)) => {
                    let Some(p) = self.pulls.remove(&tag) else {
                        return;
                    };
                    let (status, data) = match result {
                        Ok(_) => (0, p.sent.to_le_bytes().to_vec()),
                        Err(why) => {
                            log_err!("Failed to get traverse db 0x{:08x}: {}", p.db_id.0, why);
                            (-1, Vec::new())
                        }
                    };
                    if let Some(to) = p.reply_to {
                        self.answer_request(to, status, &data, None);
                    }
                    return;
                }
            }
        }
    }

    /// Sends one marshall buffer of a pull to its receiver.
    fn pull_send(&mut self, tag: Tag, bytes: Vec<u8>, count: u32) {
        let Some(p) = self.pulls.get_mut(&tag) else {
            return;
        };
        p.sent += count;
        let (to, srvid, db_id) = (p.to, p.srvid, p.db_id);
        log_info!("DB_PULL: {} records of db {} to node {}", count, db_id, to);
        self.send_message_to(to, srvid, bytes);
    }

    /// Sends a srvid message to node `to`: delivered here when it is this
    /// node, otherwise queued for the node transport.
    pub(crate) fn send_message_to(&mut self, to: Pnn, srvid: Srvid, data: Vec<u8>) {
        let me = Pnn(self.state.pnn);
        if to == me {
            if let Some(data) = self.push_message(srvid.0, data) {
                self.deliver_message(srvid.0, &data);
            }
            return;
        }
        let h = Header {
            generation: self.state.generation,
            ..Header::new(Operation::ReqMessage, to, me, 0)
        };
        let msg = ReqMessage { srvid, data };
        self.send(Origin::Node(to), Packet::ReqMessage(msg).encode(h));
    }

    /// The most bytes any local client that gets `srvid` messages has not
    /// read yet.
    fn local_backlog(&self, srvid: Srvid) -> usize {
        self.transport
            .live()
            .filter(|(c, _)| self.registrations.copies(*c, srvid.0) > 0)
            .map(|(c, _)| self.transport.unsent(c))
            .max()
            .unwrap_or(0)
    }
}
