//! Traverses streamed to the event loop in bounded batches.
//!
//! The worker walks the database a batch at a time and sends the batches
//! through a channel that holds at most [`STREAM_BATCHES`] of them; when the
//! event loop does not take them (its client is slow to read), the walk
//! pauses until there is room, and the worker serves the database's other
//! operations meanwhile. So a traverse never holds more than a few batches
//! in memory, whatever the size of the database. The last item says how the
//! walk ended.

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::Wake;
use crate::ltdb::{self, Header, Kind, NodeView};
use ctdb_protocol::ltdb::RecBufferWriter;
use ctdb_protocol::DbId;
use tdb_engine::Tdb;

/// Batches a traverse may have queued for the event loop before it waits.
pub const STREAM_BATCHES: usize = 2;
/// A batch ends at the first chain boundary after it holds this many
/// records...
pub const BATCH_RECORDS: usize = 256;
/// ...or this many bytes of keys and values.
pub const BATCH_BYTES: usize = 256 * 1024;

/// One (key, value-with-header) record of a traverse.
pub type Record = (Vec<u8>, Vec<u8>);

/// What a traverse sends to the event loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// The next records, in traverse order.
    Batch(Vec<Record>),
    /// A DB_PULL's next records as one marshall buffer (`ctdb_rec_buffer`
    /// bytes) and how many records it holds.
    Buffer(Vec<u8>, u32),
    /// The walk is over: the number of records sent, or why it failed.
    End(Result<u32, String>),
}

/// The worker's end of a traverse stream.
#[derive(Clone, Debug)]
pub struct Sink(Sender<Item>);

/// The event loop's end of a traverse stream.
#[derive(Debug)]
pub struct Stream(pub(super) Receiver<Item>);

/// A new bounded stream for one traverse.
pub fn stream_pair() -> (Sink, Stream) {
    let (tx, rx) = crossbeam_channel::bounded(STREAM_BATCHES);
    (Sink(tx), Stream(rx))
}

impl Stream {
    /// The next item if one is there. A stream whose worker went away
    /// without an end (its database closed, or the work panicked) ends with
    /// an error.
    pub fn try_next(&self) -> Option<Item> {
        match self.0.try_recv() {
            Ok(item) => Some(item),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Item::End(Err("traverse ended without its end".into())))
            }
        }
    }
}

impl Sink {
    /// Ends the stream without walking (the database is not open).
    pub(super) fn fail(self, why: String, wake: &Wake) {
        let _ = self.0.send(Item::End(Err(why)));
        wake();
    }
}

/// Does a traverse report this record?  Volatile databases report only
/// records with a value (unless `with_empty`) of which this node is the
/// dmaster (the authoritative copy).
fn wanted(kind: Kind, node: NodeView, with_empty: bool, value: &[u8]) -> bool {
    if kind != Kind::Volatile {
        return true;
    }
    match Header::decode(value) {
        Some(h) => h.dmaster == node.pnn && (with_empty || value.len() > ltdb::HEADER_LEN),
        None => false,
    }
}

/// What offering a walk's next item to its stream did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offer {
    /// Sent.
    Sent,
    /// There was nothing to send (the walk waits for a busy chain).
    Idle,
    /// The stream is full: the event loop has not taken the earlier batches.
    Full,
    /// The event loop dropped the stream: the traverse is no longer wanted.
    Gone,
}

/// A traverse in progress on a worker. It is walked one hash chain at a time
/// (`traverse_chain`, in the order a full traverse visits them), one batch
/// per step, so the worker runs other operations of the database between
/// steps and holds no lock between them.
pub(super) struct Walk {
    sink: Sink,
    with_empty: bool,
    /// A DB_PULL: every record is reported, whatever `wanted` says, in
    /// marshall buffers of this database cut after about this many bytes.
    pull: Option<(DbId, usize)>,
    /// The first chain not walked yet.
    next_chain: u32,
    /// Records sent or ready to send.
    count: u32,
    /// The item the stream had no room for yet.
    ready: Option<Item>,
    /// The end was sent, or the stream is gone.
    finished: bool,
    /// The chain the walk stopped at because someone else holds it.
    busy: Option<u32>,
    /// The next step waits for busy chains on the worker (no chain-wait
    /// thread could wait for it).
    block: bool,
}

impl Walk {
    /// A walk from the first chain, sending to `sink`.
    pub fn new(sink: Sink, with_empty: bool) -> Walk {
        Walk {
            sink,
            with_empty,
            pull: None,
            next_chain: 0,
            count: 0,
            ready: None,
            finished: false,
            busy: None,
            block: false,
        }
    }

    /// A walk from the first chain that reports every record in the file,
    /// header included, whoever its dmaster and whether empty or not, in
    /// marshall buffers for `db_id` of about `limit` bytes (DB_PULL).
    pub fn every_record(sink: Sink, db_id: DbId, limit: usize) -> Walk {
        Walk {
            pull: Some((db_id, limit.max(1))),
            ..Walk::new(sink, true)
        }
    }

    /// The chain this walk waits for (someone else holds it), if any.
    pub fn busy_chain(&self) -> Option<u32> {
        self.busy
    }

    /// The chain it waited for is free, or (`failed`) cannot be waited for
    /// on another thread, when the next step waits for it on the worker.
    pub fn chain_freed(&mut self, chain: u32, failed: bool) {
        if self.busy == Some(chain) {
            self.busy = None;
            self.block = failed;
        }
    }

    /// Whether the end was sent or the stream is gone.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The stream's sender, while an item waits for room in it.
    pub fn blocked_on(&self) -> Option<&Sender<Item>> {
        self.ready.as_ref().map(|_| &self.sink.0)
    }

    /// Walks chains from where the last step stopped until a batch is full or
    /// the database ends; the batch, or the end, becomes the next item. Does
    /// nothing while an item waits. A chain someone else holds stops the
    /// walk there (`busy_chain`), unless chain_freed said to wait for it.
    pub fn step(&mut self, t: &mut Tdb, kind: Kind, node: NodeView) {
        if self.ready.is_some() || self.finished || self.busy.is_some() {
            return;
        }
        let item = match self.pull {
            Some((db_id, limit)) => {
                let mut w = RecBufferWriter::new(db_id);
                let end = self.walk_chains(
                    t,
                    |w: &mut RecBufferWriter, k, v| {
                        w.push(0, k, &[v]);
                        w.len() >= limit
                    },
                    &mut w,
                );
                end.map(|()| (w.count(), Item::Buffer(w.finish(), 0)))
            }
            None => {
                let (with_empty, mut bytes) = (self.with_empty, 0);
                let mut batch: Vec<Record> = Vec::new();
                let end = self.walk_chains(
                    t,
                    |b: &mut Vec<Record>, k, v| {
                        if wanted(kind, node, with_empty, v) {
                            bytes += k.len() + v.len();
                            b.push((k.to_vec(), v.to_vec()));
                        }
                        b.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES
                    },
                    &mut batch,
                );
                end.map(|()| (batch.len() as u32, Item::Batch(batch)))
            }
        };
        match item {
            Err(why) => self.ready = Some(Item::End(Err(why))),
            Ok((0, _)) if self.busy.is_some() => {}
            Ok((0, _)) => self.ready = Some(Item::End(Ok(self.count))),
            Ok((n, Item::Buffer(bytes, _))) => {
                self.count += n;
                self.ready = Some(Item::Buffer(bytes, n));
            }
            Ok((n, item)) => {
                self.count += n;
                self.ready = Some(item);
            }
        }
    }

    /// Walks whole chains from where the last step stopped, giving each
    /// record to `take` (with `into`) until it says the batch is full or
    /// the database ends. A chain someone else holds stops the walk there
    /// (`busy_chain`), unless chain_freed said to wait for it.
    fn walk_chains<B>(
        &mut self,
        t: &mut Tdb,
        mut take: impl FnMut(&mut B, &[u8], &[u8]) -> bool,
        into: &mut B,
    ) -> Result<(), String> {
        let block = std::mem::take(&mut self.block);
        let hash_size = t.hash_size();
        let mut full = false;
        while self.next_chain < hash_size && !full {
            let chain = t.first_used_chain(self.next_chain);
            if chain >= hash_size {
                self.next_chain = hash_size;
                break;
            }
            if !block {
                match t.lock_list_nonblock(chain as i32, libc::F_RDLCK) {
                    Ok(()) => {}
                    Err(tdb_engine::TdbError::Lock) => {
                        self.next_chain = chain;
                        self.busy = Some(chain);
                        break;
                    }
                    Err(e) => return Err(format!("traverse: {}", e.message())),
                }
            }
            let mut cb = |_: &mut Tdb, k: &[u8], v: &[u8]| {
                full |= take(into, k, v);
                false
            };
            let walked = t.traverse_chain(chain, &mut cb);
            if !block {
                let _ = t.unlock_list(chain as i32, libc::F_RDLCK);
            }
            walked.map_err(|e| format!("traverse: {}", e.message()))?;
            self.next_chain = chain + 1;
        }
        Ok(())
    }

    /// Hands the waiting item to the stream if it has room.
    pub fn offer(&mut self, wake: &Wake) -> Offer {
        let Some(item) = self.ready.take() else {
            return Offer::Idle;
        };
        let end = matches!(item, Item::End(_));
        match self.sink.0.try_send(item) {
            Ok(()) => {
                self.finished = end;
                wake();
                Offer::Sent
            }
            Err(TrySendError::Full(item)) => {
                self.ready = Some(item);
                Offer::Full
            }
            Err(TrySendError::Disconnected(_)) => {
                self.finished = true;
                Offer::Gone
            }
        }
    }
}
