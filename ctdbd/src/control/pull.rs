//! DB_PULL: a recovery reads a frozen database.  Every record in the file
//! (ltdb header included, empty records and other nodes' copies too) goes
//! to the srvid named in the request, on the node that sent it, as
//! REQ_MESSAGEs each carrying one marshall buffer of about
//! RecBufferSizeLimit bytes; the control's reply, after the last of them,
//! carries the number of records sent.
//!
//! The records stream from the database's worker in bounded batches (as a
//! traverse's do) and are cut into buffers as they arrive, so a pull holds
//! at most a few batches and one buffer, whatever the database's size.  A
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
use ctdb_protocol::ltdb::{RecBuffer, RecData, REC_DATA_FIXED_LEN};
use ctdb_protocol::packet::ReqMessage;
use ctdb_protocol::types::PullDbExt;
use ctdb_protocol::{ControlOpcode, DbId, Header, Layout, Operation, Packet, Pnn, Srvid};

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
    /// The worker's batches.
    stream: Stream,
    /// Records not sent yet (one marshall buffer at most).
    buffer: Vec<RecData>,
    /// The encoded size of `buffer` as a marshall buffer.
    buffer_bytes: usize,
    /// Records sent so far.
    sent: u32,
}

/// Size of a marshall buffer's fixed part (db_id, count).
const REC_BUFFER_FIXED_LEN: usize = 8;

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
    d.submit_tagged(tag, id, Op::Pull { sink });
    let reply_to = (!req.noreply()).then(|| req.reply_to());
    d.pulls.insert(
        tag,
        ActivePull {
            db_id: pull.db_id,
            to: req.header.srcnode,
            srvid: pull.srvid,
            reply_to,
            stream,
            buffer: Vec::new(),
            buffer_bytes: REC_BUFFER_FIXED_LEN,
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
        let limit = (self.state.tunables.rec_buffer_size_limit as usize).max(1);
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
                Some(Item::Batch(recs)) => {
                    for (key, data) in recs {
                        self.pull_add(tag, key, data, limit);
                    }
                }
                Some(Item::End(result)) => {
                    self.pull_flush(tag);
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

    /// Adds one record to a pull's buffer; a buffer that reached `limit`
    /// bytes is sent.
    fn pull_add(&mut self, tag: Tag, key: Vec<u8>, data: Vec<u8>, limit: usize) {
        let Some(p) = self.pulls.get_mut(&tag) else {
            return;
        };
        p.buffer_bytes += REC_DATA_FIXED_LEN + key.len() + data.len();
        p.buffer.push(RecData {
            reqid: 0,
            key,
            data,
        });
        if p.buffer_bytes >= limit {
            self.pull_flush(tag);
        }
    }

    /// Sends a pull's buffered records, if any, as one marshall buffer.
    fn pull_flush(&mut self, tag: Tag) {
        let Some(p) = self.pulls.get_mut(&tag) else {
            return;
        };
        if p.buffer.is_empty() {
            return;
        }
        let records = std::mem::take(&mut p.buffer);
        p.buffer_bytes = REC_BUFFER_FIXED_LEN;
        p.sent += records.len() as u32;
        let (to, srvid) = (p.to, p.srvid);
        let buf = RecBuffer {
            db_id: p.db_id,
            records,
        };
        log_info!(
            "DB_PULL: {} records of db {} to node {}",
            buf.records.len(),
            buf.db_id,
            to
        );
        self.send_message_to(to, srvid, buf.to_bytes());
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
