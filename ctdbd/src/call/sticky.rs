//! Sticky records (Samba's ctdb_make_record_sticky,
//! ctdb_set_sticky_pindown and ctdb_defer_pinned_down_request): on a
//! database with the sticky flag, a dmaster that serves a REQ_CALL with a
//! hop count of at least HopcountMakeSticky remembers the record as sticky
//! for StickyDuration seconds.  When such a record migrates back to this
//! node it is pinned down for StickyPindown milliseconds: REQ_CALLs from
//! nodes for it wait until the pin ends, so the record stays here a while.

use crate::daemon::{Daemon, DbContinuation};
use crate::requests::Tag;
use crate::{log_err, log_warn};
use ctdb_protocol::packet::ReqCall;
use ctdb_protocol::types::DB_FLAGS_STICKY;
use ctdb_protocol::Header;
use std::time::Duration;

/// One sticky record of this node.
#[derive(Debug, Default)]
pub(super) struct StickyRecord {
    /// While pinned down: the timer that ends the pin.
    pin: Option<Tag>,
    /// REQ_CALLs from nodes that wait for the pin's end, oldest first.
    deferred: Vec<(Header, ReqCall)>,
}

impl Daemon {
    /// True when database `db_id` has sticky records enabled.
    fn db_sticky(&self, db_id: u32) -> bool {
        self.find_db(db_id)
            .is_some_and(|d| d.flags & DB_FLAGS_STICKY != 0)
    }

    /// The record served a call that took `hopcount` hops: on a sticky
    /// database with a hop count of at least HopcountMakeSticky the record
    /// becomes sticky for StickyDuration (once; later calls do not extend
    /// it).
    pub(super) fn maybe_make_sticky(&mut self, db_id: u32, key: &[u8], hopcount: u32) {
        if !self.db_sticky(db_id) || hopcount < self.state.tunables.hopcount_make_sticky {
            return;
        }
        let record = (db_id, key.to_vec());
        if self.calls.sticky.contains_key(&record) {
            return;
        }
        let secs = self.state.tunables.sticky_duration;
        let name = self
            .find_db(db_id)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        log_err!(
            "Make record sticky for {} seconds in db {} key:0x{:08x}.",
            secs,
            name,
            tdb_engine::jenkins_hash(key)
        );
        let rec = record.clone();
        let then: DbContinuation = Box::new(move |d: &mut Daemon, _| d.unstick(&rec));
        self.track(then, Some(Duration::from_secs(secs.into())));
        self.calls.sticky.insert(record, StickyRecord::default());
    }

    /// The record's stickiness ended: it is forgotten, and calls that
    /// waited for its pin run now.
    fn unstick(&mut self, record: &(u32, Vec<u8>)) {
        if let Some(sr) = self.calls.sticky.remove(record) {
            if let Some(pin) = sr.pin {
                self.requests.cancel_where(|t| t == pin);
            }
            self.run_pinned(sr.deferred);
        }
    }

    /// This node became the record's dmaster: a sticky record not pinned
    /// yet is pinned down for StickyPindown milliseconds.
    pub(super) fn maybe_pin(&mut self, db_id: u32, key: &[u8]) {
        if !self.db_sticky(db_id) {
            return;
        }
        let record = (db_id, key.to_vec());
        let ms = self.state.tunables.sticky_pindown;
        match self.calls.sticky.get(&record) {
            Some(sr) if sr.pin.is_none() => {}
            _ => return,
        }
        let name = self
            .find_db(db_id)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        log_err!("Pinning down record in {} for {} ms", name, ms);
        let rec = record.clone();
        let then: DbContinuation = Box::new(move |d: &mut Daemon, _| d.unpin(&rec));
        let tag = self.track(then, Some(Duration::from_millis(ms.into())));
        if let Some(sr) = self.calls.sticky.get_mut(&record) {
            sr.pin = Some(tag);
        }
    }

    /// The pin of a record ended: the calls that waited run now.
    fn unpin(&mut self, record: &(u32, Vec<u8>)) {
        let Some(sr) = self.calls.sticky.get_mut(record) else {
            return;
        };
        sr.pin = None;
        let deferred = std::mem::take(&mut sr.deferred);
        let name = self
            .find_db(record.0)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        log_err!("Pindown timeout db:{}  unstick record", name);
        self.run_pinned(deferred);
    }

    /// Runs REQ_CALLs that waited for a pin, in order.
    fn run_pinned(&mut self, deferred: Vec<(Header, ReqCall)>) {
        for (hdr, c) in deferred {
            self.node_call(hdr, c);
        }
    }

    /// A REQ_CALL from a node for a pinned-down record waits for the pin's
    /// end; returns the call back when the record is not pinned.
    pub(super) fn defer_if_pinned(&mut self, hdr: Header, c: ReqCall) -> Option<(Header, ReqCall)> {
        let record = (c.db_id.0, c.key.clone());
        let name = match self.find_db(c.db_id.0) {
            Some(d) if d.flags & DB_FLAGS_STICKY != 0 => d.name.clone(),
            _ => return Some((hdr, c)),
        };
        match self.calls.sticky.get_mut(&record) {
            Some(sr) if sr.pin.is_some() => {
                log_warn!("Defer request for pinned down record in {}", name);
                sr.deferred.push((hdr, c));
                None
            }
            _ => Some((hdr, c)),
        }
    }

    /// Sticky records of this node (tests).
    #[cfg(test)]
    pub(crate) fn sticky_state(&self, db_id: u32, key: &[u8]) -> Option<(Option<Tag>, usize)> {
        let sr = self.calls.sticky.get(&(db_id, key.to_vec()))?;
        Some((sr.pin, sr.deferred.len()))
    }
}
