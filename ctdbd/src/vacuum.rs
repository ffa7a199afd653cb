//! Vacuuming of volatile databases: the per-database delete queue and the
//! run that deletes empty records from the tdb file (see docs/ctdbd.md,
//! "Vacuuming").  A run happens on the database's worker thread; the timer that starts
//! it is in the event loop.
//!
//! A record emptied by a client (`deletekey`, smbd dropping a lock entry)
//! stays in the file as a bare header until the vacuumer deletes it.  The
//! records it looks at come from the delete queue, which SCHEDULE_FOR_DELETION
//! and the daemon's own stores of empty records fill; every
//! VacuumFastPathCount runs it also scans the whole file for empty records.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::ltdb::{self, Header, NodeView};
use tdb_engine::{Tdb, TdbError};

/// What a store of a record means for the delete queue (Samba's
/// schedule_for_deletion / remove_from_delete_queue pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueAction {
    /// An empty record was left behind: queue it with its new header.
    Schedule,
    /// The record was kept for good (it has a value): drop it from the queue.
    Remove,
    /// Deleted, or a kind of database that is not vacuumed.
    Leave,
}

/// Records waiting for the next vacuum run, indexed by key hash as Samba's
/// tree is: a second key with the same hash is not queued.
#[derive(Default, Debug)]
pub struct DeleteQueue {
    entries: HashMap<u32, (Vec<u8>, Header)>,
}

impl DeleteQueue {
    /// Queues `key` with the header it had when it was emptied; a key already
    /// queued gets the newer header.
    pub fn insert(&mut self, key: &[u8], header: &Header) {
        let hash = tdb_engine::hash::jenkins_hash(key);
        if let Some((k, _)) = self.entries.get(&hash) {
            if k.as_slice() != key {
                crate::log_info!("schedule for deletion: hash collision for key hash [0x{:08x}], skipping the record", hash);
                return;
            }
        }
        self.entries.insert(hash, (key.to_vec(), *header));
    }

    pub fn remove(&mut self, key: &[u8]) {
        if self.entries.is_empty() {
            return;
        }
        let hash = tdb_engine::hash::jenkins_hash(key);
        if self
            .entries
            .get(&hash)
            .is_some_and(|(k, _)| k.as_slice() == key)
        {
            self.entries.remove(&hash);
        }
    }

    /// Forgets every queued record (the database was wiped).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn apply(&mut self, key: &[u8], header: &Header, action: QueueAction) {
        match action {
            QueueAction::Schedule => self.insert(key, header),
            QueueAction::Remove => self.remove(key),
            QueueAction::Leave => {}
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Empties the queue, returning its entries in hash order (the order in
    /// which Samba walks its tree).
    pub fn take(&mut self) -> Vec<(Vec<u8>, Header)> {
        let mut v: Vec<(u32, (Vec<u8>, Header))> = self.entries.drain().collect();
        v.sort_by_key(|(h, _)| *h);
        v.into_iter().map(|(_, e)| e).collect()
    }
}

/// The fast path's decision for a queued record, made under its chain lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Never migrated with data: no other node has a copy, delete it now.
    Delete,
    /// Migrated with data at some point: other nodes may hold copies, so it
    /// goes through the delete list (asking every other active node first;
    /// with one node there is none to ask).
    DeleteList,
    /// Another node is the lmaster: it would be sent there with VACUUM_FETCH
    /// (never the case with one node).
    SendToLmaster,
    /// Gone, refilled, migrated away, or changed since it was queued.
    Skip,
}

/// Is `stored` (the record's whole value in the tdb, None if absent) still
/// the empty record that was queued with `queued`?  It must be a bare header
/// (no value), this node must be its dmaster, and its rsn must be the one it
/// was queued with (an rsn change means it was migrated away and back).
fn still_empty(stored: Option<&[u8]>, queued: &Header, node: NodeView) -> Option<Header> {
    let v = stored?;
    if v.len() != ltdb::HEADER_LEN {
        return None;
    }
    let h = Header::decode(v)?;
    if h.dmaster != node.pnn || h.rsn != queued.rsn {
        return None;
    }
    Some(h)
}

/// The fast-path rule for one queued record.  Read-only flags are not
/// looked at here (Samba checks them only on the delete list).
pub fn fast_path_verdict(stored: Option<&[u8]>, queued: &Header, node: NodeView) -> Verdict {
    if still_empty(stored, queued, node).is_none() {
        return Verdict::Skip;
    }
    if node.lmaster != node.pnn {
        return Verdict::SendToLmaster;
    }
    if queued.flags & ltdb::REC_FLAG_MIGRATED_WITH_DATA != 0 {
        Verdict::DeleteList
    } else {
        Verdict::Delete
    }
}

/// The delete list's final check before it deletes a record: still empty
/// and unchanged, this node its dmaster and lmaster, no read-only flags.
pub fn delete_list_ok(stored: Option<&[u8]>, queued: &Header, node: NodeView) -> bool {
    match still_empty(stored, queued, node) {
        Some(h) => h.flags & ltdb::REC_RO_FLAGS == 0 && node.lmaster == node.pnn,
        None => false,
    }
}

/// The full scan's rule: an empty record this node is the dmaster of is
/// queued, with the header it has now.
pub fn scan_candidate(value: &[u8], node: NodeView) -> Option<Header> {
    if value.len() != ltdb::HEADER_LEN {
        return None;
    }
    Header::decode(value).filter(|h| h.dmaster == node.pnn)
}

/// What a run leaves to the other nodes when the node is not alone: the
/// records to hand to their lmaster (VACUUM_FETCH, by lmaster pnn) and
/// this node's delete list, which every other active node must confirm
/// (TRY_DELETE_RECORDS) before `delete_confirmed` deletes it here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ForNodes {
    /// lmaster pnn → (key, queued header).
    pub fetch: BTreeMap<u32, Vec<(Vec<u8>, Header)>>,
    /// (key, queued header) of records this node is lmaster and dmaster of.
    pub delete: Vec<(Vec<u8>, Header)>,
}

impl ForNodes {
    /// Nothing for the other nodes.
    pub fn is_empty(&self) -> bool {
        self.fetch.is_empty() && self.delete.is_empty()
    }
}

/// The view of this node for each key (its lmaster under the vnn map).
pub type ViewOf<'a> = &'a dyn Fn(&[u8]) -> NodeView;

/// TRY_DELETE_RECORDS on a node that is not the lmaster: may this node's
/// copy (`stored`, the whole value, None if absent) go, given the header
/// the lmaster sent?  An absent record counts as deleted.  Refused when
/// this node is the lmaster or still the dmaster, when its copy is newer
/// (higher rsn), or when either side has read-only flags.
pub fn may_drop_copy(stored: Option<&[u8]>, sent: &Header, node: NodeView) -> bool {
    if node.lmaster == node.pnn || sent.flags & ltdb::REC_RO_FLAGS != 0 {
        return false;
    }
    let Some(v) = stored else {
        return true;
    };
    let Some(mine) = Header::decode(v) else {
        // Too short to be a record: nothing worth keeping.
        return true;
    };
    mine.rsn <= sent.rsn && mine.flags & ltdb::REC_RO_FLAGS == 0 && mine.dmaster != node.pnn
}

/// TRY_DELETE_RECORDS: drops this node's copy of each record the lmaster
/// sent, where `may_drop_copy` allows; returns the records it kept (the
/// lmaster must not delete those).
pub fn try_delete(
    t: &mut Tdb,
    recs: Vec<(Vec<u8>, Header)>,
    view: ViewOf,
) -> Vec<(Vec<u8>, Header)> {
    let mut kept = Vec::new();
    for (key, sent) in recs {
        if t.chainlock_nonblock(&key).is_err() {
            kept.push((key, sent));
            continue;
        }
        let dropped = match stored(t, &key) {
            Ok(None) => true,
            Ok(Some(v)) if may_drop_copy(Some(&v), &sent, view(&key)) => t.delete(&key).is_ok(),
            _ => false,
        };
        let _ = t.chainunlock(&key);
        if !dropped {
            kept.push((key, sent));
        }
    }
    kept
}

/// The delete list's last step: each record is checked again under its
/// chain lock (`delete_list_ok`) and deleted.
pub fn delete_confirmed(t: &mut Tdb, recs: Vec<(Vec<u8>, Header)>, view: ViewOf, c: &mut Counts) {
    for (key, queued) in recs {
        if t.chainlock_nonblock(&key).is_err() {
            c.list_error += 1;
            continue;
        }
        let ok =
            matches!(stored(t, &key), Ok(v) if delete_list_ok(v.as_deref(), &queued, view(&key)));
        if ok {
            match t.delete(&key) {
                Ok(()) => c.list_deleted += 1,
                Err(_) => c.list_error += 1,
            }
        } else {
            c.list_skipped += 1;
        }
        let _ = t.chainunlock(&key);
    }
}

impl Counts {
    /// Logs the delete list's counts at INFO, as Samba does.
    pub fn log_delete_list(&self, name: &str) {
        crate::log_info!(
            "vacuum delete list of db[{}]: deleted[{}] skipped[{}] error[{}]",
            name,
            self.list_deleted,
            self.list_skipped,
            self.list_error
        );
    }
}

/// Counters of one run, logged at INFO as Samba does.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Counts {
    pub scanned: u32,
    pub scan_queued: u32,
    pub queue_total: u32,
    pub queue_deleted: u32,
    pub queue_skipped: u32,
    /// Busy chain lock or tdb error: the record stays for a later full scan.
    pub queue_error: u32,
    pub to_delete_list: u32,
    pub to_lmaster: u32,
    pub list_deleted: u32,
    pub list_skipped: u32,
    pub list_error: u32,
    pub repacked: bool,
}

/// What a run is allowed to do.
#[derive(Clone, Copy, Debug)]
pub struct RunParams {
    pub full: bool,
    /// Repack when the freelist has at least this many entries (0: never).
    pub repack_limit: u32,
    /// VacuumMaxRunTime: the run stops here (Samba kills its child).
    pub deadline: Instant,
    /// No other active node: the delete list is deleted here at once.
    pub alone: bool,
}

pub enum RunError {
    TimedOut,
    Tdb(String),
}

fn stored(t: &mut Tdb, key: &[u8]) -> Result<Option<Vec<u8>>, TdbError> {
    match t.fetch(key) {
        Ok(v) => Ok(Some(v)),
        Err(TdbError::NoExist) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One vacuum run of a volatile database.  Chain locks are only tried, never
/// waited for: a record a client has locked is left for a later run.
pub fn run(
    t: &mut Tdb,
    queue: &mut DeleteQueue,
    view: ViewOf,
    name: &str,
    p: RunParams,
) -> Result<(Counts, ForNodes), RunError> {
    let mut c = Counts::default();
    let mut for_nodes = ForNodes::default();
    if p.full {
        let mut found = Vec::new();
        let mut cb = |_: &mut Tdb, k: &[u8], v: &[u8]| {
            if let Some(h) = scan_candidate(v, view(k)) {
                found.push((k.to_vec(), h));
            }
            false
        };
        match t.traverse_read(Some(&mut cb)) {
            Ok(n) => c.scanned = n.max(0) as u32,
            Err(e) => crate::log_err!("Traverse error in vacuuming '{}': {}", name, e.message()),
        }
        c.scan_queued = found.len() as u32;
        for (k, h) in found {
            queue.insert(&k, &h);
        }
        crate::log_info!(
            "full vacuum scan of db[{}]: records[{}] queued[{}]",
            name,
            c.scanned,
            c.scan_queued
        );
    }
    crate::log_debug!("vacuum db[{}]: {} records queued", name, queue.len());
    let mut delete_list = Vec::new();
    for (key, queued) in queue.take() {
        if Instant::now() >= p.deadline {
            return Err(RunError::TimedOut);
        }
        c.queue_total += 1;
        match t.chainlock_nonblock(&key) {
            Ok(()) => {}
            Err(_) => {
                c.queue_error += 1;
                continue;
            }
        }
        let node = view(&key);
        let verdict = match stored(t, &key) {
            Ok(v) => fast_path_verdict(v.as_deref(), &queued, node),
            Err(_) => Verdict::Skip,
        };
        match verdict {
            Verdict::Delete => match t.delete(&key) {
                Ok(()) => c.queue_deleted += 1,
                Err(e) => {
                    crate::log_err!("Error deleting record from db[{}]: {}", name, e.message());
                    c.queue_error += 1;
                }
            },
            Verdict::DeleteList => {
                delete_list.push((key.clone(), queued));
                c.to_delete_list += 1;
            }
            Verdict::SendToLmaster => {
                c.to_lmaster += 1;
                let lmaster = for_nodes.fetch.entry(node.lmaster).or_default();
                lmaster.push((key.clone(), queued));
            }
            Verdict::Skip => c.queue_skipped += 1,
        }
        let _ = t.chainunlock(&key);
    }
    // The delete list: with other nodes each must drop its copies first
    // (TRY_DELETE_RECORDS, sent by the loop); alone, the node deletes at
    // once after checking each record again.
    if Instant::now() >= p.deadline && !delete_list.is_empty() {
        return Err(RunError::TimedOut);
    }
    if p.alone {
        delete_confirmed(t, delete_list, view, &mut c);
    } else {
        for_nodes.delete = delete_list;
    }
    if c.queue_total > 0 {
        crate::log_info!(
            "fast vacuum of db[{}]: total[{}] deleted[{}] skipped[{}] error[{}] delete-list[{}] to-lmaster[{}]",
            name, c.queue_total, c.queue_deleted, c.queue_skipped, c.queue_error, c.to_delete_list, c.to_lmaster
        );
    }
    if c.to_delete_list > 0 {
        c.log_delete_list(name);
    }
    let free = t.freelist_size().map_err(|e| {
        RunError::Tdb(format!(
            "Failed to get freelist size for '{name}': {}",
            e.message()
        ))
    })?;
    if p.repack_limit != 0 && free >= 0 && free as u32 >= p.repack_limit {
        crate::log_notice!("Repacking {} with {} freelist entries", name, free);
        t.repack()
            .map_err(|e| RunError::Tdb(format!("Failed to repack '{name}': {}", e.message())))?;
        c.repacked = true;
    }
    Ok((c, for_nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeView = NodeView { pnn: 0, lmaster: 0 };

    fn rec(h: Header, value: &[u8]) -> Vec<u8> {
        let mut v = h.encode().to_vec();
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn fast_path_deletes_only_unchanged_empty_records() {
        let q = Header {
            rsn: 5,
            dmaster: 0,
            reserved1: 0,
            flags: 0,
        };
        // Empty, unchanged, this node dmaster and lmaster: deleted.
        assert_eq!(
            fast_path_verdict(Some(&rec(q, b"")), &q, ME),
            Verdict::Delete
        );
        // Refilled with a value since it was queued.
        assert_eq!(
            fast_path_verdict(Some(&rec(q, b"v")), &q, ME),
            Verdict::Skip
        );
        // Already gone.
        assert_eq!(fast_path_verdict(None, &q, ME), Verdict::Skip);
        // Too short to hold a header.
        assert_eq!(fast_path_verdict(Some(&[0u8; 10]), &q, ME), Verdict::Skip);
        // Another node is the dmaster.
        assert_eq!(
            fast_path_verdict(Some(&rec(Header { dmaster: 1, ..q }, b"")), &q, ME),
            Verdict::Skip
        );
        // Stored again (rsn moved on) without being queued again.
        assert_eq!(
            fast_path_verdict(Some(&rec(Header { rsn: 6, ..q }, b"")), &q, ME),
            Verdict::Skip
        );
        // Migrated with data once: through the delete list.
        let m = Header {
            flags: ltdb::REC_FLAG_MIGRATED_WITH_DATA,
            ..q
        };
        assert_eq!(
            fast_path_verdict(Some(&rec(m, b"")), &m, ME),
            Verdict::DeleteList
        );
        // The fast path does not look at read-only flags...
        let ro = Header {
            flags: ltdb::REC_RO_HAVE_READONLY,
            ..q
        };
        assert_eq!(
            fast_path_verdict(Some(&rec(ro, b"")), &q, ME),
            Verdict::Delete
        );
        // ...the delete list does.
        assert!(delete_list_ok(Some(&rec(m, b"")), &m, ME));
        assert!(!delete_list_ok(
            Some(&rec(
                Header {
                    flags: m.flags | ltdb::REC_RO_HAVE_DELEGATIONS,
                    ..m
                },
                b""
            )),
            &m,
            ME
        ));
        assert!(!delete_list_ok(
            Some(&rec(Header { rsn: 9, ..m }, b"")),
            &m,
            ME
        ));
        assert!(!delete_list_ok(Some(&rec(m, b"x")), &m, ME));
        // Not the lmaster (a multi-node case): handed to the lmaster.
        let other = NodeView { pnn: 0, lmaster: 1 };
        assert_eq!(
            fast_path_verdict(Some(&rec(q, b"")), &q, other),
            Verdict::SendToLmaster
        );
        assert!(!delete_list_ok(Some(&rec(m, b"")), &m, other));
    }

    #[test]
    fn a_copy_is_dropped_only_where_samba_drops_it() {
        // This node is 1; the lmaster (0) sends the header it has.
        let node = NodeView { pnn: 1, lmaster: 0 };
        let sent = Header {
            rsn: 7,
            dmaster: 0,
            reserved1: 0,
            flags: ltdb::REC_FLAG_MIGRATED_WITH_DATA,
        };
        let mine = |rsn, dmaster, flags| {
            rec(
                Header {
                    rsn,
                    dmaster,
                    reserved1: 0,
                    flags,
                },
                b"",
            )
        };
        assert!(may_drop_copy(None, &sent, node), "absent counts as dropped");
        assert!(may_drop_copy(Some(&mine(5, 0, 0)), &sent, node));
        assert!(may_drop_copy(Some(&mine(7, 0, 0)), &sent, node));
        assert!(
            !may_drop_copy(Some(&mine(8, 0, 0)), &sent, node),
            "newer copy"
        );
        assert!(
            !may_drop_copy(Some(&mine(5, 1, 0)), &sent, node),
            "this node is dmaster"
        );
        let ro = ctdb_protocol::ltdb::REC_RO_HAVE_READONLY;
        assert!(
            !may_drop_copy(Some(&mine(5, 0, ro)), &sent, node),
            "read-only here"
        );
        let sent_ro = Header { flags: ro, ..sent };
        assert!(
            !may_drop_copy(Some(&mine(5, 0, 0)), &sent_ro, node),
            "read-only sent"
        );
        // The lmaster itself never drops its copy this way.
        assert!(!may_drop_copy(None, &sent, NodeView { pnn: 0, lmaster: 0 }));
    }

    #[test]
    fn full_scan_picks_empty_records_of_this_dmaster() {
        let h = Header {
            rsn: 3,
            dmaster: 0,
            reserved1: 0,
            flags: 0,
        };
        assert_eq!(scan_candidate(&rec(h, b""), ME), Some(h));
        assert_eq!(scan_candidate(&rec(h, b"v"), ME), None);
        assert_eq!(
            scan_candidate(&rec(Header { dmaster: 2, ..h }, b""), ME),
            None
        );
        assert_eq!(scan_candidate(b"short", ME), None);
    }

    #[test]
    fn queue_replaces_same_key_and_removes() {
        let mut q = DeleteQueue::default();
        let h1 = Header {
            rsn: 1,
            ..Default::default()
        };
        let h2 = Header {
            rsn: 2,
            ..Default::default()
        };
        q.apply(b"a", &h1, QueueAction::Schedule);
        q.apply(b"a", &h2, QueueAction::Schedule);
        q.apply(b"b", &h1, QueueAction::Schedule);
        assert_eq!(q.len(), 2);
        q.apply(b"b", &h1, QueueAction::Remove);
        q.apply(b"zzz", &h1, QueueAction::Remove);
        q.apply(b"a", &h1, QueueAction::Leave);
        let v = q.take();
        assert_eq!(v, vec![(b"a".to_vec(), h2)]);
        assert_eq!(q.len(), 0);
    }
}
