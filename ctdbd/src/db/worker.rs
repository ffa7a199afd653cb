//! One worker thread per open database: it owns that database's tdb handle
//! and runs its operations in the order they come, so a long operation on
//! one database (a vacuum, an fsync'd commit, a big traverse) never delays
//! another database.
//!
//! A record call whose chain another process holds is parked, with every
//! later call on the same chain, and a chain-wait thread blocks until the
//! chain is free (see tdb_engine::ChainWait); the worker goes on with other
//! work meanwhile and retries the parked calls when the waiter reports.
//! There is no polling. Each operation runs under catch_unwind: a panic in
//! the engine fails that operation and marks the database unhealthy.

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::chain_wait::ChainWaits;
use super::ops::{self, ChainLock, OpenDb, Outcome};
use super::traverse::{Offer, Walk};
use super::{Done, Op, OpenParams, Reply, Wake};
use crate::ltdb::NodeView;
use crate::vacuum::DeleteQueue;

/// What a worker thread reads from its queue.
pub(super) enum Input {
    /// An operation from the event loop; `tag` comes back with the reply.
    Op { tag: u64, op: Op },
    /// A chain-wait thread saw `chain` free (or, with `failed`, could not
    /// wait for it).
    ChainFree { chain: u32, failed: bool },
    /// Close the database (if open) and end the thread.
    Stop,
}

/// The event loop's handle on one worker thread.
pub(super) struct Handle {
    /// The worker's queue.
    pub tx: Sender<Input>,
    /// The worker's thread, until it is waited for.
    pub thread: Option<std::thread::JoinHandle<()>>,
    /// Chain waits started so far (each is one wake-up of this worker).
    #[cfg_attr(not(test), allow(dead_code))]
    pub chain_waits: Arc<AtomicU64>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // The worker holds a sender to its own queue (for its waiters), so it
        // must be told to stop; it is not waited for here.
        let _ = self.tx.send(Input::Stop);
    }
}

impl Handle {
    /// Stops the worker and waits for its thread to end.
    pub fn stop(mut self) {
        let _ = self.tx.send(Input::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Tells the worker to stop and gives its thread, to be waited for by
    /// whoever opens the same database next.
    pub fn retire(mut self) -> Option<std::thread::JoinHandle<()>> {
        let _ = self.tx.send(Input::Stop);
        self.thread.take()
    }
}

/// The state of one worker thread.
struct Worker {
    id: u32,
    node: NodeView,
    db: Option<OpenDb>,
    input: Receiver<Input>,
    done: Sender<Done>,
    wake: Wake,
    /// Busy chain -> the record calls waiting for it, oldest first.
    parked: HashMap<u32, VecDeque<(u64, Op)>>,
    /// The waits for busy chains (of parked calls and paused walks).
    waits: ChainWaits,
    /// Traverses in progress, walked a batch at a time between operations.
    walks: Vec<Walk>,
}

/// Starts the worker of database `id`; it opens the database first and
/// reports `Done::Opened`. A worker whose database is not open (the open
/// failed, or Close ran) answers every operation with a failure until it is
/// stopped. With `after`, the thread first waits for that thread (the
/// previous worker of the same database, which still closes the file).
pub(super) fn spawn(
    id: u32,
    after: Option<std::thread::JoinHandle<()>>,
    params: OpenParams,
    node: NodeView,
    done: Sender<Done>,
    wake: Wake,
) -> std::io::Result<Handle> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let chain_waits = Arc::new(AtomicU64::new(0));
    let worker = Worker {
        id,
        node,
        db: None,
        input: rx,
        done,
        wake,
        parked: HashMap::new(),
        waits: ChainWaits::new(id, tx.clone(), chain_waits.clone()),
        walks: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("db-{id:08x}"))
        .spawn(move || {
            if let Some(previous) = after {
                let _ = previous.join();
            }
            worker.run(params)
        })?;
    Ok(Handle {
        tx,
        thread: Some(thread),
        chain_waits,
    })
}

impl Worker {
    fn run(mut self, params: OpenParams) {
        let opened = guarded(|| {
            let mut t = ops::open_tdb(&params.path, params.hash_size, params.tdb_flags)?;
            t.set_max_dead(params.max_dead as i32);
            Ok(t)
        });
        let result = match opened {
            Ok(Ok(t)) => {
                self.db = Some(OpenDb {
                    tdb: t,
                    kind: params.kind,
                    tracking: None,
                    queue: DeleteQueue::default(),
                });
                Ok(())
            }
            Ok(Err(why)) => Err(why),
            Err(what) => Err(format!("panic while opening: {what}")),
        };
        self.report(Done::Opened {
            id: self.id,
            result,
        });
        loop {
            // One batch of each traverse, then one input: neither starves.
            let walked = self.advance_walks();
            let input = match self.input.try_recv() {
                Ok(input) => input,
                Err(TryRecvError::Empty) => {
                    if !walked {
                        self.wait_for_input_or_room();
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            match input {
                Input::Op { tag, op } => self.job(tag, op),
                Input::ChainFree { chain, failed } => self.chain_free(chain, failed),
                Input::Stop => break,
            }
        }
        self.end_walks();
        if let Some(db) = self.db.take() {
            let _ = guarded(|| db.close());
        }
        self.fail_queued();
    }

    /// Blocks until an input comes or a paused traverse's stream has room.
    fn wait_for_input_or_room(&self) {
        let mut sel = Select::new();
        sel.recv(&self.input);
        for tx in self.walks.iter().filter_map(Walk::blocked_on) {
            sel.send(tx);
        }
        sel.ready();
    }

    /// Takes every traverse one step (one batch) further where its stream
    /// has room; true when any of them moved. A walk that stops at a busy
    /// chain gets a chain wait.
    fn advance_walks(&mut self) -> bool {
        let Some(db) = self.db.as_mut() else {
            return false;
        };
        let (kind, node, wake) = (db.kind, self.node, self.wake.clone());
        let mut moved = false;
        let mut panicked = None;
        for w in &mut self.walks {
            let before = w.blocked_on().is_some();
            let run = guarded(|| {
                w.step(&mut db.tdb, kind, node);
                w.offer(&wake)
            });
            match run {
                Ok(Offer::Sent) | Ok(Offer::Gone) => moved = true,
                Ok(Offer::Full) => moved |= !before,
                Ok(Offer::Idle) => {}
                Err(what) => {
                    panicked = Some(what);
                    break;
                }
            }
        }
        self.walks.retain(|w| !w.finished());
        if let Some(what) = panicked {
            // The walks' streams end (the loop sends their end markers).
            self.walks.clear();
            self.unhealthy(&what);
            (self.wake)();
            return true;
        }
        let busy: Vec<u32> = self.walks.iter().filter_map(Walk::busy_chain).collect();
        for chain in busy {
            if !self.waits.ensure(&db.tdb, chain) {
                self.walks
                    .iter_mut()
                    .for_each(|w| w.chain_freed(chain, true));
                moved = true;
            }
        }
        moved
    }

    /// Drops every traverse in progress; their streams end.
    fn end_walks(&mut self) {
        if !self.walks.is_empty() {
            self.walks.clear();
            (self.wake)();
        }
    }

    /// Reports the database unhealthy after a panic in its work.
    fn unhealthy(&self, what: &str) -> String {
        let reason = format!("panic in database work: {what}");
        crate::log_err!("Database 0x{:08x}: {}", self.id, reason);
        self.report(Done::Unhealthy {
            id: self.id,
            reason: reason.clone(),
        });
        reason
    }

    fn report(&self, done: Done) {
        let _ = self.done.send(done);
        (self.wake)();
    }

    /// Answers everything still queued or parked with a failure.
    fn fail_queued(&mut self) {
        let parked: Vec<(u64, Op)> = self.parked.drain().flat_map(|(_, q)| q).collect();
        for (tag, op) in parked {
            self.fail(tag, op);
        }
        while let Ok(input) = self.input.try_recv() {
            if let Input::Op { tag, op } = input {
                self.fail(tag, op);
            }
        }
    }

    fn fail(&self, tag: u64, op: Op) {
        let why = format!("database 0x{:08x} not open", self.id);
        match op {
            Op::Traverse { sink, .. } | Op::Pull { sink, .. } => sink.fail(why, &self.wake),
            _ => self.report(Done::Op {
                tag,
                reply: Reply::Failed(why),
            }),
        }
    }

    /// A new operation: record calls on a chain with parked calls queue
    /// behind them, so calls on one record keep their order.
    fn job(&mut self, tag: u64, op: Op) {
        let Some(db) = &self.db else {
            return self.fail(tag, op);
        };
        if let Some(key) = op.record_key() {
            let chain = db.tdb.chain_index(key);
            if let Some(q) = self.parked.get_mut(&chain) {
                q.push_back((tag, op));
                return;
            }
        }
        if let Op::Traverse { with_empty, sink } = op {
            self.walks.push(Walk::new(sink, with_empty));
            return;
        }
        if let Op::Pull { sink, db_id, limit } = op {
            self.walks.push(Walk::every_record(sink, db_id, limit));
            return;
        }
        if let Op::Close = op {
            // From now on every operation fails, until the thread is stopped.
            self.end_walks();
            let reply = match self.db.take().map(|db| guarded(|| db.close())) {
                Some(Ok(reply)) => reply,
                Some(Err(what)) => Reply::Failed(self.unhealthy(&what)),
                None => Reply::Ok,
            };
            self.report(Done::Op { tag, reply });
            let parked: Vec<(u64, Op)> = self.parked.drain().flat_map(|(_, q)| q).collect();
            for (tag, op) in parked {
                self.fail(tag, op);
            }
            self.waits.clear();
            return;
        }
        if let Some(op) = self.attempt(tag, op, ChainLock::Try) {
            self.park(tag, op);
        }
    }

    /// Runs an operation, catching a panic; gives the operation back when
    /// its chain is busy.
    fn attempt(&mut self, tag: u64, op: Op, lock: ChainLock) -> Option<Op> {
        let Some(db) = self.db.as_mut() else {
            self.fail(tag, op);
            return None;
        };
        let retry = op.record_key().map(|_| op.clone());
        let (id, node, wake) = (self.id, self.node, self.wake.clone());
        let timed = op
            .recovery_step()
            .map(|what| (what, std::time::Instant::now(), thread_cpu()));
        let run = guarded(|| db.run(id, node, op, lock, &wake));
        if let Some((what, since, cpu)) = timed {
            crate::log_debug!(
                "db 0x{:08x}: {} took {} us ({} us on the cpu)",
                id,
                what,
                since.elapsed().as_micros(),
                thread_cpu().saturating_sub(cpu).as_micros()
            );
        }
        match run {
            Ok(Outcome::Done(reply)) => self.report(Done::Op { tag, reply }),
            Ok(Outcome::Streamed) => {}
            Ok(Outcome::ChainBusy) => return retry,
            Err(what) => {
                let reason = self.unhealthy(&what);
                self.report(Done::Op {
                    tag,
                    reply: Reply::Failed(reason),
                });
            }
        }
        None
    }

    /// Parks a record call whose chain is busy behind a wait for the chain.
    fn park(&mut self, tag: u64, op: Op) {
        let Some(key) = op.record_key() else {
            return;
        };
        let Some(db) = &self.db else {
            return self.fail(tag, op);
        };
        let chain = db.tdb.chain_index(key);
        if !self.waits.ensure(&db.tdb, chain) {
            // No wait: this one call waits for its lock on this thread.
            if let Some(op) = self.attempt(tag, op, ChainLock::Wait) {
                self.fail(tag, op);
            }
            return;
        }
        self.parked.entry(chain).or_default().push_back((tag, op));
    }

    /// A chain-wait thread reported: the walks paused at the chain go on,
    /// its parked calls run, and queued waits start.
    fn chain_free(&mut self, chain: u32, failed: bool) {
        self.waits.ended(chain);
        for w in &mut self.walks {
            w.chain_freed(chain, failed);
        }
        self.retry_parked(chain, failed);
        let Some(db) = &self.db else {
            return;
        };
        let (parked, walks) = (&self.parked, &self.walks);
        let needed =
            |c: u32| parked.contains_key(&c) || walks.iter().any(|w| w.busy_chain() == Some(c));
        for c in self.waits.start_queued(&db.tdb, needed) {
            for w in &mut self.walks {
                w.chain_freed(c, true);
            }
            self.retry_parked(c, true);
        }
    }

    /// Runs the calls parked on `chain` in order until one finds it taken
    /// again, which parks the rest behind a new wait; with `failed` (no wait
    /// possible) such a call waits for its lock on this thread.
    fn retry_parked(&mut self, chain: u32, failed: bool) {
        let Some(mut queue) = self.parked.remove(&chain) else {
            return;
        };
        while let Some((tag, op)) = queue.pop_front() {
            let Some(op) = self.attempt(tag, op, ChainLock::Try) else {
                continue;
            };
            let waiting = match &self.db {
                Some(db) if !failed => self.waits.ensure(&db.tdb, chain),
                _ => false,
            };
            if !waiting {
                if let Some(op) = self.attempt(tag, op, ChainLock::Wait) {
                    self.fail(tag, op);
                }
                continue;
            }
            queue.push_front((tag, op));
            self.parked.insert(chain, queue);
            return;
        }
    }
}

/// The cpu time this thread has used (zero when the clock cannot be read).
fn thread_cpu() -> std::time::Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(std::time::Duration::from)
        .unwrap_or_default()
}

/// Runs `f`, turning a panic into its message.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()))
}

/// The message a panic carried.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
