//! Traverses streamed to the event loop in bounded batches.
//!
//! The worker walks the database and sends records in batches through a
//! channel that holds at most [`STREAM_BATCHES`] of them; when the event loop
//! does not take them (its client is slow to read), the worker waits there.
//! So a traverse never holds more than a few batches in memory, whatever the
//! size of the database. The last item says how the walk ended.

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::Wake;
use crate::ltdb::{self, Header, Kind, NodeView};
use tdb_engine::Tdb;

/// Batches a traverse may have queued for the event loop before it waits.
pub const STREAM_BATCHES: usize = 2;
/// A batch is sent once it holds this many records...
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
    /// Sends an item, waiting while the stream is full; false when the event
    /// loop dropped the stream (the traverse is no longer wanted).
    fn send(&self, item: Item, wake: &Wake) -> bool {
        let ok = self.0.send(item).is_ok();
        wake();
        ok
    }

    /// Ends the stream without walking (the database is not open).
    pub(super) fn fail(self, why: String, wake: &Wake) {
        self.send(Item::End(Err(why)), wake);
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

/// Walks the database, sending its records to `sink` in batches, then the end.
pub(super) fn stream(
    t: &mut Tdb,
    kind: Kind,
    node: NodeView,
    with_empty: bool,
    sink: &Sink,
    wake: &Wake,
) {
    let mut batch: Vec<Record> = Vec::new();
    let mut bytes = 0;
    let mut count: u32 = 0;
    let mut abandoned = false;
    let mut cb = |_: &mut Tdb, k: &[u8], v: &[u8]| {
        if !wanted(kind, node, with_empty, v) {
            return false;
        }
        batch.push((k.to_vec(), v.to_vec()));
        bytes += k.len() + v.len();
        count += 1;
        if batch.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES {
            bytes = 0;
            if !sink.send(Item::Batch(std::mem::take(&mut batch)), wake) {
                abandoned = true;
                return true;
            }
        }
        false
    };
    let result = t.traverse_read(Some(&mut cb));
    if abandoned {
        return;
    }
    let end = match result {
        Ok(_) => {
            if !batch.is_empty() && !sink.send(Item::Batch(batch), wake) {
                return;
            }
            Ok(count)
        }
        Err(e) => Err(format!("traverse: {}", e.message())),
    };
    sink.send(Item::End(end), wake);
}
