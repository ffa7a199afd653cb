//! The chain waits of one database worker: at most one wait per busy hash
//! chain, each on a short-lived thread blocked in `tdb_engine::ChainWait`
//! (an OFD lock or the chain's mutex) that reports `Input::ChainFree` to the
//! worker, and at most MAX_CHAIN_WAITERS threads at once: further chains
//! queue for a thread.

use crossbeam_channel::Sender;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::worker::Input;
use tdb_engine::Tdb;

/// Chain-wait threads a database may have at once (Samba allows 200 lock
/// helper processes per database).
const MAX_CHAIN_WAITERS: usize = 64;

/// The chain waits of one worker.
pub(super) struct ChainWaits {
    db_id: u32,
    /// Where the waiter threads report.
    to_worker: Sender<Input>,
    /// Chains with a wait running or queued.
    waiting: HashSet<u32>,
    /// Chains whose wait starts when a running one ends.
    queued: VecDeque<u32>,
    /// Waiter threads running now.
    running: usize,
    /// Waits started so far (each is one wake-up of the worker).
    started: Arc<AtomicU64>,
}

impl ChainWaits {
    /// No waits yet; waiters report to `to_worker`, and `started` counts them.
    pub fn new(db_id: u32, to_worker: Sender<Input>, started: Arc<AtomicU64>) -> ChainWaits {
        ChainWaits {
            db_id,
            to_worker,
            waiting: HashSet::new(),
            queued: VecDeque::new(),
            running: 0,
            started,
        }
    }

    /// Makes sure the worker hears when `chain` is free: a wait already
    /// running or queued for it, a new thread, or a place in the queue.
    /// False when no wait can be started (then the caller blocks instead).
    pub fn ensure(&mut self, tdb: &Tdb, chain: u32) -> bool {
        if self.waiting.contains(&chain) {
            return true;
        }
        if self.running >= MAX_CHAIN_WAITERS {
            self.waiting.insert(chain);
            self.queued.push_back(chain);
            return true;
        }
        if self.spawn(tdb, chain) {
            self.waiting.insert(chain);
            return true;
        }
        false
    }

    /// A waiter reported `chain`: its wait is over.
    pub fn ended(&mut self, chain: u32) {
        self.running = self.running.saturating_sub(1);
        self.waiting.remove(&chain);
    }

    /// Forgets every wait (the database closed); running threads still
    /// report, and their reports find nothing to do.
    pub fn clear(&mut self) {
        self.waiting.clear();
        self.queued.clear();
    }

    /// Starts queued waits while threads are free; `needed` says whether a
    /// chain still has someone waiting for it. Returns the chains whose wait
    /// could not start.
    pub fn start_queued(&mut self, tdb: &Tdb, needed: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut failed = Vec::new();
        while self.running < MAX_CHAIN_WAITERS {
            let Some(chain) = self.queued.pop_front() else {
                break;
            };
            if !needed(chain) || !self.spawn(tdb, chain) {
                self.waiting.remove(&chain);
                if needed(chain) {
                    failed.push(chain);
                }
            }
        }
        failed
    }

    /// Starts a thread that reports when `chain` is free.
    fn spawn(&mut self, tdb: &Tdb, chain: u32) -> bool {
        let wait = match tdb.chain_wait(chain) {
            Ok(w) => w,
            Err(e) => {
                crate::log_err!("Cannot wait for a chain lock: {}", e.message());
                return false;
            }
        };
        let tx = self.to_worker.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("chain-{:08x}", self.db_id))
            .stack_size(64 * 1024)
            .spawn(move || {
                let failed = wait.wait().is_err();
                let _ = tx.send(Input::ChainFree {
                    chain: wait.chain(),
                    failed,
                });
            });
        match spawned {
            Ok(_) => {
                self.started.fetch_add(1, Ordering::Relaxed);
                self.running += 1;
                true
            }
            Err(e) => {
                crate::log_err!("Cannot start a chain lock waiter: {}", e);
                false
            }
        }
    }
}
