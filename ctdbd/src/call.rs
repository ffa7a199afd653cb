//! Record calls and record migration between nodes (Samba's ctdb_call.c and
//! the record-call part of ctdb_daemon.c).
//!
//! Every record of a volatile database has one dmaster, the node whose copy
//! is current, and an lmaster fixed by the key's hash over the vnn map,
//! which always knows the dmaster.  A client's REQ_CALL runs where the
//! local copy names this node as dmaster; otherwise a REQ_CALL goes to the
//! node the local copy names (at first the lmaster).  A node that is not the
//! dmaster redirects the call to the lmaster, and the lmaster to the dmaster
//! it knows; each redirect adds one to the hop count.  The dmaster hands the
//! record to the requester: through the lmaster with REQ_DMASTER, which
//! answers the requester with REPLY_DMASTER (directly when the dmaster is
//! the lmaster).  The requester stores the record as its dmaster and runs
//! the call locally.  Every store on the dmaster bumps the rsn.
//!
//! The tdb side of each step runs on the database's worker under the
//! record's chain lock (`db::RecordStep`); this module decides the routing
//! and keeps the calls in flight.  Node packets of another generation are
//! dropped, those for a frozen database wait for its thaw; a local
//! client's calls wait while the database is frozen or
//! recovery is active, and calls sent to other nodes are sent again after
//! a recovery (DB_THAW), with a new reqid.  While one client's call fetches
//! a record from another node, other local calls for the same record wait
//! for it (FetchCollapse), so two clients cause one migration.

use crate::daemon::{Daemon, DbContinuation, ReplyTo};
use crate::db::{CallSpec, Handover, Op, RecordStep, Reply};
use crate::ltdb::Kind;
use crate::requests::{Completion, Tag};
use crate::transport::{ClientId, Origin};
use crate::{log_debug, log_err, log_notice, log_warn};
use ctdb_protocol::packet::{
    ReplyCall, ReplyDmaster, ReplyError, ReqCall, ReqDmaster, CALL_FLAG_IMMEDIATE_MIGRATION,
    CALL_FLAG_VACUUM_MIGRATION,
};
use ctdb_protocol::statistics::{MAX_COUNT_BUCKETS, MAX_HOT_KEYS};
use ctdb_protocol::types::{NODE_FLAGS_BANNED, RECOVERY_ACTIVE, RECOVERY_NORMAL};
use ctdb_protocol::{DbId, Generation, Header, Operation, Packet, Pnn};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long later calls for a record wait behind a fetch from another node
/// before they are issued anyway (Samba's deferred-fetch timeout).
const COLLAPSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Record-call flag: the client would take a read-only copy (cleared on
/// a database without read-only records, as Samba does).
use crate::db::{CALL_FETCH_FUNC, CALL_FETCH_WITH_HEADER_FUNC, CALL_FLAG_WANT_READONLY};

/// How often held-back calls look whether recovery has ended.
const RECOVERY_POLL: Duration = Duration::from_secs(1);

/// The lmaster of `key`: the vnn map's entry at the key's Jenkins hash
/// modulo the map's size (Samba's ctdb_lmaster); None for an empty map.
pub fn lmaster(vnn_map: &[Pnn], key: &[u8]) -> Option<Pnn> {
    if vnn_map.is_empty() {
        return None;
    }
    let slot = tdb_engine::jenkins_hash(key) % vnn_map.len() as u32;
    Some(vnn_map[slot as usize])
}

/// The hop-count histogram bucket of a call: the number of significant
/// bits of its hop count, capped at the last bucket.
pub fn hop_bucket(hopcount: u32) -> usize {
    ((u32::BITS - hopcount.leading_zeros()) as usize).min(MAX_COUNT_BUCKETS - 1)
}

/// Migrations of one record within this window count together for the hot
/// keys (Samba's migration counter interval).
const HOT_KEY_WINDOW: Duration = Duration::from_secs(1);

/// Records remembered by the migration counter before stale ones go.
const MIGRATION_COUNTER_LIMIT: usize = 4096;

/// Samba's hot-key table update after a record migrated in `count` times in
/// the current window: the table (count, key) holds at most MAX_HOT_KEYS
/// entries, fewest migrations first; a key already there keeps its higher
/// count; a new key takes a free slot or the least migrated one.  Returns
/// true when a key was added.
pub fn update_hot_keys(table: &mut Vec<(u32, Vec<u8>)>, key: &[u8], count: u32) -> bool {
    if table.len() == MAX_HOT_KEYS && count <= table[0].0 {
        return false;
    }
    let added = match table.iter().position(|(_, k)| k == key) {
        Some(i) if count <= table[i].0 => return false,
        Some(i) => {
            table[i].0 = count;
            false
        }
        None if table.len() < MAX_HOT_KEYS => {
            table.push((count, key.to_vec()));
            true
        }
        None => {
            table[0] = (count, key.to_vec());
            true
        }
    };
    table.sort_by_key(|(c, _)| *c);
    added
}

/// A local client's call that went to another node and waits for the
/// record (or the answer).
#[derive(Clone, Debug)]
struct PendingCall {
    /// The client's call as it sent it.
    call: ReqCall,
    /// Where the REPLY_CALL goes.
    client: ReplyTo,
    /// When the call was read (for the call latency).
    started: Instant,
    /// The function the client asked for (a read-only call runs
    /// FETCH_WITH_HEADER instead; a FETCH client gets the value only).
    asked_callid: u32,
}

/// Local calls waiting for one record while a call fetches it.
#[derive(Debug)]
struct Collapse {
    /// The tracked timeout of this wait.
    timeout: Tag,
    /// The waiting calls: client and whole packet, oldest first.
    waiting: Vec<(ClientId, Vec<u8>)>,
}

/// The record calls in flight on this node.
#[derive(Debug)]
pub struct Calls {
    /// Calls sent to other nodes, by the reqid of their REQ_CALL.
    pending: HashMap<u32, PendingCall>,
    /// (db_id, key) → later local calls for a record being fetched.
    collapsed: HashMap<(u32, Vec<u8>), Collapse>,
    /// The next reqid for a REQ_CALL this node sends.
    next_reqid: u32,
    /// A timer looks whether recovery has ended (calls are held back).
    watching_recovery: bool,
    /// (db_id, key) → (window start, migrations in the window).
    migrations: HashMap<(u32, Vec<u8>), (Instant, u64)>,
    /// db_id → record packets from nodes that came while it was frozen.
    held: HashMap<u32, Vec<(Pnn, Vec<u8>)>>,
    /// (db_id, key) → the revoke of the record's read-only delegations.
    revokes: HashMap<(u32, Vec<u8>), readonly::Revoking>,
    /// The id of the last revoke started.
    revoke_ids: u64,
    /// (db_id, key) → this node's sticky records.
    sticky: HashMap<(u32, Vec<u8>), sticky::StickyRecord>,
    /// (db_id, key) → the count last logged for a key of the hot-key table.
    hot_logged: HashMap<(u32, Vec<u8>), u32>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            pending: HashMap::new(),
            collapsed: HashMap::new(),
            next_reqid: 1,
            watching_recovery: false,
            migrations: HashMap::new(),
            held: HashMap::new(),
            revokes: HashMap::new(),
            revoke_ids: 0,
            sticky: HashMap::new(),
            hot_logged: HashMap::new(),
        }
    }
}

impl Calls {
    /// Counts one migration of a record into this node; returns the count in
    /// the current window.
    fn count_migration(&mut self, db_id: u32, key: &[u8], now: Instant) -> u64 {
        if self.migrations.len() >= MIGRATION_COUNTER_LIMIT {
            self.migrations
                .retain(|_, (start, _)| now.duration_since(*start) < HOT_KEY_WINDOW);
        }
        let e = self
            .migrations
            .entry((db_id, key.to_vec()))
            .or_insert((now, 0));
        if now.duration_since(e.0) >= HOT_KEY_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1
    }

    /// A reqid no pending call uses.
    fn new_reqid(&mut self) -> u32 {
        loop {
            let r = self.next_reqid;
            self.next_reqid = self.next_reqid.wrapping_add(1).max(1);
            if !self.pending.contains_key(&r) {
                return r;
            }
        }
    }

    /// Calls of local clients waiting on other nodes.
    #[cfg(test)]
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

/// Where a REQ_CALL that reached a node which is not the dmaster goes next:
/// to the lmaster, or from the lmaster to the dmaster it knows.
pub fn redirect_target(me: Pnn, lmaster: Pnn, dmaster: Pnn) -> Pnn {
    if lmaster == me {
        dmaster
    } else {
        lmaster
    }
}

impl Daemon {
    /// True when record calls are routed over the vnn map; false when this
    /// node serves every record itself: no recovery has set a map yet, or
    /// the map names only this node.
    pub(crate) fn calls_routed(&self) -> bool {
        let me = Pnn(self.state.pnn);
        self.state.generation != Generation::INVALID && self.state.vnn_map.iter().any(|p| *p != me)
    }

    /// The lmaster of `key` for a routed call (this node when calls are not
    /// routed).
    fn lmaster_of(&self, key: &[u8]) -> Pnn {
        let me = Pnn(self.state.pnn);
        if !self.calls_routed() {
            return me;
        }
        lmaster(&self.state.vnn_map, key).unwrap_or(me)
    }

    /// True when a record packet from a node is handled: not while this
    /// node is banned, and only in the current generation (Samba's
    /// ctdb_input_pkt drops the others before counting them).
    fn accept_call_packet(&self, hdr: &Header) -> bool {
        let why = if self.state.own_flags() & NODE_FLAGS_BANNED != 0 {
            "this node is banned"
        } else if hdr.generation != self.state.generation {
            "another generation"
        } else {
            return true;
        };
        log_debug!(
            "{:?} reqid {} from node {} (generation {}, ours {}) dropped: {}",
            hdr.operation,
            hdr.reqid,
            hdr.srcnode.0,
            hdr.generation.0,
            self.state.generation.0,
            why
        );
        false
    }

    /// A header for a packet from this node to node `dest`.
    fn node_header(&self, operation: Operation, dest: Pnn, reqid: u32) -> Header {
        Header {
            generation: self.state.generation,
            ..Header::new(operation, dest, Pnn(self.state.pnn), reqid)
        }
    }

    /// Sends a packet to node `dest`; one for this node is handled here at
    /// once, as Samba's daemon queues packets to itself.
    fn send_call_packet(&mut self, dest: Pnn, packet: Vec<u8>) {
        if dest.0 == self.state.pnn {
            // Counted as Samba's ctdb_queue_packet counts a packet to itself.
            self.stats.node_packets_sent += 1;
            if let Err(why) = self.packet(Origin::Node(dest), &packet) {
                log_err!("Record packet to this node is malformed: {}", why);
            }
            return;
        }
        match self.state.nodes.get(dest.0 as usize) {
            Some(n) if !n.deleted => self.send(Origin::Node(dest), packet),
            _ => log_err!("Cannot send to node {} that does not exist", dest.0),
        }
    }

    /// REQ_CALL, from a local client or from another node.
    pub(crate) fn request_call(&mut self, origin: Origin, hdr: Header, c: ReqCall, pkt: &[u8]) {
        match origin {
            Origin::Client(client) => self.client_call(client, hdr.reqid, c, pkt),
            Origin::Node(_) => self.node_call(hdr, c),
        }
    }

    /// A local client's REQ_CALL: held back while the database is frozen or
    /// in recovery, queued behind a fetch of the same record in flight, run
    /// here when this node is the dmaster, else sent to the dmaster the
    /// local copy names.
    fn client_call(&mut self, client: ClientId, reqid: u32, mut c: ReqCall, pkt: &[u8]) {
        let db_id = c.db_id.0;
        let asked_callid = c.callid;
        if c.flags & CALL_FLAG_WANT_READONLY != 0 {
            if self.db_readonly(db_id) {
                c.callid = CALL_FETCH_WITH_HEADER_FUNC;
            } else {
                c.flags &= !CALL_FLAG_WANT_READONLY;
            }
        }
        let recmode_active = self.state.recmode != RECOVERY_NORMAL;
        let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id && d.ready) else {
            log_err!("Unknown database in request. db_id==0x{:08x}", db_id);
            return;
        };
        if d.frozen || recmode_active {
            d.deferred.push((client.0, pkt.to_vec()));
            if !d.frozen {
                self.watch_recovery_end();
            }
            return;
        }
        let volatile = d.kind() == Kind::Volatile;
        let record = (db_id, c.key.clone());
        if let Some(col) = self.calls.collapsed.get_mut(&record) {
            col.waiting.push((client, pkt.to_vec()));
            return;
        }
        self.stats.total_calls += 1;
        self.stats.pending_calls += 1;
        let pending = PendingCall {
            call: c,
            client: ReplyTo {
                origin: Origin::Client(client),
                reqid,
                noreply: false,
            },
            started: Instant::now(),
            asked_callid,
        };
        if !(volatile && self.calls_routed()) {
            return self.local_call(pending);
        }
        if self.state.tunables.fetch_collapse == 1 {
            self.begin_collapse(record);
        }
        self.issue_call(pending);
    }

    /// VACUUM_FETCH at the lmaster: migrates the record of `key` here (a
    /// null call with immediate and vacuum migration) unless this node is
    /// its dmaster already; nobody waits for the answer.
    pub(crate) fn migrate_for_vacuum(&mut self, db_id: u32, key: Vec<u8>) {
        if self.state.recmode != RECOVERY_NORMAL || !self.calls_routed() {
            return;
        }
        let call = ReqCall {
            flags: CALL_FLAG_IMMEDIATE_MIGRATION | CALL_FLAG_VACUUM_MIGRATION,
            db_id: ctdb_protocol::DbId(db_id),
            callid: crate::db::CALL_NULL_FUNC,
            hopcount: 0,
            key,
            calldata: Vec::new(),
        };
        let pending = PendingCall {
            call,
            client: ReplyTo {
                origin: Origin::Node(Pnn(self.state.pnn)),
                reqid: 0,
                noreply: true,
            },
            started: Instant::now(),
            asked_callid: crate::db::CALL_NULL_FUNC,
        };
        self.issue_call(pending);
    }

    /// Runs a call here with no routing (this node alone serves records).
    fn local_call(&mut self, p: PendingCall) {
        let op = Op::Call {
            key: p.call.key.clone(),
            callid: p.call.callid,
        };
        let db_id = p.call.db_id.0;
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            let (status, data) = call_result(done);
            d.finish_call(&p, status, data);
        });
        self.submit(db_id, op, then, None);
    }

    /// Asks the worker whether this node is the dmaster of the call's
    /// record; the call then runs here, or goes to the dmaster named.
    fn issue_call(&mut self, p: PendingCall) {
        let me = self.state.pnn;
        let lm = self.lmaster_of(&p.call.key).0;
        let op = Op::Record {
            key: p.call.key.clone(),
            step: RecordStep::Request {
                call: spec(&p.call),
                requester: me,
                lmaster: lm,
            },
        };
        let db_id = p.call.db_id.0;
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| match done {
            Completion::Answered(Reply::NotDmaster { dmaster }) => d.send_call(p, Pnn(dmaster)),
            Completion::Answered(Reply::Revoking) => {
                let (db, key) = (p.call.db_id.0, p.call.key.clone());
                d.wait_for_revoke(db, &key, readonly::Waiting::Client(p), None)
            }
            Completion::Answered(Reply::Revoke(r)) => {
                let (db, key) = (p.call.db_id.0, p.call.key.clone());
                d.wait_for_revoke(db, &key, readonly::Waiting::Client(p), Some(r))
            }
            other => {
                let (status, data) = call_result(other);
                d.finish_call(&p, status, data);
            }
        });
        self.submit(db_id, op, then, None);
    }

    /// Sends a local client's call to `dmaster` and keeps it until the
    /// record (or an answer) comes back.
    fn send_call(&mut self, p: PendingCall, dmaster: Pnn) {
        let reqid = self.calls.new_reqid();
        let body = ReqCall {
            hopcount: 0,
            ..p.call.clone()
        };
        let h = self.node_header(Operation::ReqCall, dmaster, reqid);
        self.calls.pending.insert(reqid, p);
        self.send_call_packet(dmaster, Packet::ReqCall(body).encode(h));
    }

    /// Answers a local client's call and lets the calls that waited for
    /// the same record go.
    fn finish_call(&mut self, p: &PendingCall, status: i32, data: Vec<u8>) {
        if p.client.noreply {
            // The daemon's own call (a vacuum fetch): nobody to answer.
            return;
        }
        self.stats.call_done(p.started);
        let h = self.own_header(Operation::ReplyCall, p.client.reqid);
        let data = match data {
            // A read-only FETCH ran as FETCH_WITH_HEADER: the client gets
            // the value only.
            d if p.call.flags & CALL_FLAG_WANT_READONLY != 0
                && p.asked_callid == CALL_FETCH_FUNC
                && d.len() >= crate::ltdb::HEADER_LEN =>
            {
                d[crate::ltdb::HEADER_LEN..].to_vec()
            }
            d => d,
        };
        let body = ReplyCall { status, data };
        self.send(p.client.origin, Packet::ReplyCall(body).encode(h));
        self.end_collapse(&(p.call.db_id.0, p.call.key.clone()));
    }

    /// From now on, local calls for `record` wait for the call in flight.
    fn begin_collapse(&mut self, record: (u32, Vec<u8>)) {
        let key = record.clone();
        let timeout = self.track_with(
            move |tag| {
                Box::new(move |d: &mut Daemon, _| {
                    if d.calls
                        .collapsed
                        .get(&key)
                        .is_some_and(|c| c.timeout == tag)
                    {
                        log_notice!("Fetch of a record for db 0x{:08x} timed out", key.0);
                        d.end_collapse(&key);
                    }
                })
            },
            Some(COLLAPSE_TIMEOUT),
        );
        let col = Collapse {
            timeout,
            waiting: Vec::new(),
        };
        self.calls.collapsed.insert(record, col);
    }

    /// The calls that waited for `record` are issued again, in order.
    fn end_collapse(&mut self, record: &(u32, Vec<u8>)) {
        let Some(col) = self.calls.collapsed.remove(record) else {
            return;
        };
        let tag = col.timeout;
        self.requests.cancel_where(|t| t == tag);
        for (client, pkt) in col.waiting {
            if self.client_is_live(client) {
                let _ = self.packet(Origin::Client(client), &pkt);
            }
        }
    }

    /// REQ_CALL from a node (or sent to this node by itself): run here as
    /// the dmaster (the record then moves to the requester), or redirected.
    fn node_call(&mut self, hdr: Header, mut c: ReqCall) {
        if !self.accept_call_packet(&hdr) {
            return;
        }
        self.stats.node.req_call += 1;
        let db_id = c.db_id.0;
        if !self.dbs.iter().any(|d| d.id == db_id && d.ready) {
            let msg = format!("Unknown database in request. db_id==0x{db_id:08x}");
            return self.send_error(&hdr, -1, &msg);
        }
        let Some((hdr, c2)) = self.defer_if_pinned(hdr, c) else {
            return;
        };
        c = c2;
        if self.find_db(db_id).is_some_and(|d| d.frozen) {
            return self.hold_for_thaw(db_id, hdr, Packet::ReqCall(c));
        }
        if !self.db_readonly(db_id) {
            c.flags &= !CALL_FLAG_WANT_READONLY;
        }
        let lm = self.lmaster_of(&c.key);
        let op = Op::Record {
            key: c.key.clone(),
            step: RecordStep::Request {
                call: spec(&c),
                requester: hdr.srcnode.0,
                lmaster: lm.0,
            },
        };
        let then: DbContinuation =
            Box::new(move |d: &mut Daemon, done| d.node_call_answered(hdr, c, lm, done));
        self.submit(db_id, op, then, None);
    }

    /// What the dmaster (or not) did with a node's REQ_CALL.
    fn node_call_answered(&mut self, hdr: Header, c: ReqCall, lm: Pnn, done: Completion<Reply>) {
        match done {
            Completion::Answered(Reply::NotDmaster { dmaster }) => {
                self.redirect(hdr, c, lm, Pnn(dmaster))
            }
            Completion::Answered(Reply::Handover(h)) => {
                self.count_hops(c.db_id.0, c.hopcount);
                self.maybe_make_sticky(c.db_id.0, &c.key, c.hopcount);
                self.send_handover(c.db_id, c.key, hdr.reqid, lm, h);
            }
            Completion::Answered(Reply::Call { status, data }) => {
                self.count_hops(c.db_id.0, c.hopcount);
                self.maybe_make_sticky(c.db_id.0, &c.key, c.hopcount);
                let h = self.node_header(Operation::ReplyCall, hdr.srcnode, hdr.reqid);
                let body = ReplyCall { status, data };
                self.send_call_packet(hdr.srcnode, Packet::ReplyCall(body).encode(h));
            }
            Completion::Answered(Reply::Delegated { data }) => {
                self.count_delegation(c.db_id.0);
                let h = self.node_header(Operation::ReplyCall, hdr.srcnode, hdr.reqid);
                let body = ReplyCall { status: 0, data };
                self.send_call_packet(hdr.srcnode, Packet::ReplyCall(body).encode(h));
            }
            Completion::Answered(Reply::Revoking) => {
                let (db, key) = (c.db_id.0, c.key.clone());
                self.wait_for_revoke(db, &key, readonly::Waiting::Node(hdr, c), None)
            }
            Completion::Answered(Reply::Revoke(r)) => {
                let (db, key) = (c.db_id.0, c.key.clone());
                self.wait_for_revoke(db, &key, readonly::Waiting::Node(hdr, c), Some(r))
            }
            other => {
                log_err!(
                    "Record call from node {} failed: {:?}",
                    hdr.srcnode.0,
                    other
                );
                self.send_error(&hdr, -1, "ltdb fetch failed in ctdb_request_call");
            }
        }
    }

    /// Sends a REQ_CALL on: to the lmaster, or from the lmaster to the
    /// dmaster it knows, one hop further.  Samba 4.17 sets no limit
    /// (MaxRedirectCount is obsolete); it warns about high hop counts.
    fn redirect(&mut self, mut hdr: Header, mut c: ReqCall, lm: Pnn, dmaster: Pnn) {
        let me = Pnn(self.state.pnn);
        hdr.destnode = redirect_target(me, lm, dmaster);
        c.hopcount += 1;
        if c.hopcount % 100 > 95 {
            log_warn!(
                "High hopcount {} dbid:0x{:08x} key:0x{:08x} reqid={:08x} pnn:{} src:{} lmaster:{} header->dmaster:{} dst:{}",
                c.hopcount,
                c.db_id.0,
                tdb_engine::jenkins_hash(&c.key),
                hdr.reqid,
                me.0,
                hdr.srcnode.0,
                lm.0,
                dmaster.0,
                hdr.destnode.0
            );
        }
        let dest = hdr.destnode;
        self.send_call_packet(dest, Packet::ReqCall(c).encode(hdr));
    }

    /// The record leaves this node: REQ_DMASTER to the lmaster, or (from
    /// the lmaster) REPLY_DMASTER to the new dmaster.
    fn send_handover(&mut self, db_id: DbId, key: Vec<u8>, reqid: u32, lm: Pnn, h: Handover) {
        let to = Pnn(h.to);
        if h.from_lmaster {
            let body = ReplyDmaster {
                db_id,
                rsn: h.rsn,
                key,
                data: h.data,
                record_flags: Some(h.flags),
            };
            let hdr = self.node_header(Operation::ReplyDmaster, to, reqid);
            self.send_call_packet(to, Packet::ReplyDmaster(body).encode(hdr));
        } else {
            let body = ReqDmaster {
                db_id,
                rsn: h.rsn,
                dmaster: to,
                key,
                data: h.data,
                record_flags: Some(h.flags),
            };
            let hdr = self.node_header(Operation::ReqDmaster, lm, reqid);
            self.send_call_packet(lm, Packet::ReqDmaster(body).encode(hdr));
        }
    }

    /// Samba's per-call hop statistics, counted where a call is served.
    fn count_hops(&mut self, db_id: u32, hopcount: u32) {
        let bucket = hop_bucket(hopcount);
        self.stats.max_hop_count = self.stats.max_hop_count.max(hopcount);
        self.stats.hop_count_bucket[bucket] += 1;
        if let Some(d) = self.db_mut(db_id) {
            d.stats.hop_count_bucket[bucket] += 1;
        }
    }

    /// REPLY_ERROR to the sender of a call.
    fn send_error(&mut self, hdr: &Header, status: i32, msg: &str) {
        let mut bytes = msg.as_bytes().to_vec();
        bytes.push(0);
        let h = self.node_header(Operation::ReplyError, hdr.srcnode, hdr.reqid);
        let body = ReplyError { status, msg: bytes };
        self.send_call_packet(hdr.srcnode, Packet::ReplyError(body).encode(h));
    }

    /// The pending call a dmaster packet with `reqid` is for, taken out of
    /// the pending set; one for another record stays (Samba drops such a
    /// packet as bogus).
    fn take_pending(&mut self, reqid: u32, db_id: u32, key: &[u8]) -> Option<PendingCall> {
        let p = self.calls.pending.get(&reqid)?;
        if p.call.db_id.0 != db_id || p.call.key != key {
            log_err!(
                "Got bogus DMASTER packet reqid:{}: key does not match the call",
                reqid
            );
            return None;
        }
        self.calls.pending.remove(&reqid)
    }

    /// REQ_DMASTER at the lmaster: the dmaster gives the record to a new
    /// dmaster; the lmaster records that and passes the record on.
    pub(crate) fn request_dmaster(&mut self, hdr: Header, r: ReqDmaster) {
        if !self.accept_call_packet(&hdr) {
            return;
        }
        self.stats.node.req_dmaster += 1;
        let db_id = r.db_id.0;
        let Some(d) = self.dbs.iter().find(|d| d.id == db_id && d.ready) else {
            let msg = format!("Unknown database in request. db_id==0x{db_id:08x}");
            return self.send_error(&hdr, -1, &msg);
        };
        if d.frozen {
            return self.hold_for_thaw(db_id, hdr, Packet::ReqDmaster(r));
        }
        let me = Pnn(self.state.pnn);
        let lm = self.lmaster_of(&r.key);
        if lm != me {
            log_err!(
                "dmaster request to non-lmaster db=0x{:08x} lmaster={} gen={} curgen={}: dropped",
                db_id,
                lm.0,
                hdr.generation.0,
                self.state.generation
            );
            return;
        }
        let pending = if r.dmaster == me {
            self.take_pending(hdr.reqid, db_id, &r.key)
        } else {
            None
        };
        let op = Op::Record {
            key: r.key.clone(),
            step: RecordStep::DmasterRequest {
                sender: hdr.srcnode.0,
                new_dmaster: r.dmaster.0,
                rsn: r.rsn,
                flags: r.record_flags.unwrap_or(0),
                data: r.data,
                call: pending.as_ref().map(|p| spec(&p.call)),
                lmaster: lm.0,
            },
        };
        let key = r.key;
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| match done {
            Completion::Answered(Reply::Handover(h)) => {
                d.send_handover(r.db_id, key, hdr.reqid, lm, h)
            }
            Completion::Answered(Reply::DmasterRefused { dmaster, rsn }) => {
                log_err!(
                    "pnn {} dmaster request for new-dmaster {} from non-master {} real-dmaster={} rsn={}: forcing a recovery",
                    d.state.pnn, r.dmaster.0, hdr.srcnode.0, dmaster, rsn
                );
                d.state.recmode = RECOVERY_ACTIVE;
            }
            other => {
                d.maybe_pin(db_id, &key);
                d.became_dmaster(&hdr, pending, other)
            }
        });
        self.submit(db_id, op, then, None);
    }

    /// REPLY_DMASTER: this node becomes the record's dmaster and runs the
    /// call that waited for it.
    pub(crate) fn reply_dmaster(&mut self, hdr: Header, r: ReplyDmaster) {
        if !self.accept_call_packet(&hdr) {
            return;
        }
        self.stats.node.reply_dmaster += 1;
        let db_id = r.db_id.0;
        let Some(d) = self.dbs.iter().find(|d| d.id == db_id && d.ready) else {
            log_err!("Unknown db_id 0x{:x} in ctdb_reply_dmaster", db_id);
            return;
        };
        if d.frozen {
            return self.hold_for_thaw(db_id, hdr, Packet::ReplyDmaster(r));
        }
        let lm = self.lmaster_of(&r.key);
        let pending = self.take_pending(hdr.reqid, db_id, &r.key);
        let key = r.key.clone();
        let op = Op::Record {
            key: r.key,
            step: RecordStep::BecomeDmaster {
                rsn: r.rsn,
                flags: r.record_flags.unwrap_or(0),
                data: r.data,
                call: pending.as_ref().map(|p| spec(&p.call)),
                lmaster: lm.0,
            },
        };
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            d.maybe_pin(db_id, &key);
            d.became_dmaster(&hdr, pending, done)
        });
        self.submit(db_id, op, then, None);
    }

    /// The record is stored here as its dmaster: the call that waited for it
    /// has run and its client gets the answer.
    fn became_dmaster(&mut self, hdr: &Header, p: Option<PendingCall>, done: Completion<Reply>) {
        match p {
            Some(p) => {
                self.hot_key(p.call.db_id.0, &p.call.key);
                let (status, data) = call_result(done);
                self.finish_call(&p, status, data);
            }
            None => {
                if let Completion::Answered(Reply::Failed(why)) = done {
                    log_err!("Storing a migrated record failed: {}", why);
                } else {
                    log_err!(
                        "pnn {} Invalid reqid {} in ctdb_become_dmaster from node {}",
                        self.state.pnn,
                        hdr.reqid,
                        hdr.srcnode.0
                    );
                }
            }
        }
    }

    /// A record migrated in for a call: counted for the database's hot keys.
    fn hot_key(&mut self, db_id: u32, key: &[u8]) {
        let count = self.calls.count_migration(db_id, key, Instant::now());
        let count = count.min(i32::MAX as u64) as u32;
        let record = (db_id, key.to_vec());
        let Some(d) = self.dbs.iter_mut().find(|d| d.id == db_id) else {
            return;
        };
        let before = d.stats.hot_keys.iter().find(|(_, k)| k == key).map(|e| e.0);
        if update_hot_keys(&mut d.stats.hot_keys, key, count) {
            log_notice!(
                "Added hot key database={} key={} count={}",
                d.name,
                hex(key),
                count
            );
            let table = &d.stats.hot_keys;
            let logged = &mut self.calls.hot_logged;
            logged.retain(|(db, k), _| *db != db_id || table.iter().any(|(_, t)| t == k));
            logged.insert(record, count);
            return;
        }
        let Some(before) = before.filter(|b| count > *b) else {
            return;
        };
        // A raised count is logged when it doubled since last logged.
        let last = self.calls.hot_logged.entry(record).or_insert(before);
        if count >= last.saturating_mul(2) {
            log_notice!(
                "Updated hot key database={} key={} count={}",
                d.name,
                hex(key),
                count
            );
            *last = count;
        }
    }

    /// REPLY_CALL from the node that ran a local client's call.
    pub(crate) fn reply_call(&mut self, hdr: Header, r: ReplyCall) {
        if !self.accept_call_packet(&hdr) {
            return;
        }
        self.stats.node.reply_call += 1;
        let Some(p) = self.calls.pending.remove(&hdr.reqid) else {
            return log_err!("reqid {} not found", hdr.reqid);
        };
        let copy = match crate::ltdb::Header::decode(&r.data) {
            Some(h) if p.call.callid == CALL_FETCH_WITH_HEADER_FUNC => h,
            _ => return self.finish_call(&p, r.status, r.data),
        };
        let db_id = p.call.db_id.0;
        if copy.flags & ctdb_protocol::ltdb::REC_RO_HAVE_READONLY == 0 {
            return self.finish_call(&p, r.status, r.data);
        }
        let op = Op::Record {
            key: p.call.key.clone(),
            step: RecordStep::StoreReadonly {
                header: copy,
                data: r.data[crate::ltdb::HEADER_LEN..].to_vec(),
                lmaster: self.lmaster_of(&p.call.key).0,
            },
        };
        let then: DbContinuation = Box::new(move |d: &mut Daemon, done| {
            if let Completion::Answered(Reply::Failed(why)) = done {
                log_err!("Failed to store new record in ctdb_reply_call: {}", why);
            }
            d.finish_call(&p, r.status, r.data);
        });
        self.submit(db_id, op, then, None);
    }

    /// REPLY_ERROR: a local client's call failed on another node.  Samba
    /// leaves the client waiting; we answer it with status -1.
    pub(crate) fn reply_error(&mut self, hdr: Header, r: ReplyError) {
        self.stats.node.reply_error += 1;
        let msg = String::from_utf8_lossy(&r.msg);
        let msg = msg.trim_end_matches('\0');
        match self.calls.pending.remove(&hdr.reqid) {
            Some(p) => {
                log_err!(
                    "Record call failed on node {}: {} (status {})",
                    hdr.srcnode.0,
                    msg,
                    r.status
                );
                self.finish_call(&p, -1, Vec::new());
            }
            None => log_err!(
                "pnn {} Invalid reqid {} in ctdb_reply_error",
                self.state.pnn,
                hdr.reqid
            ),
        }
    }

    /// After a recovery (DB_THAW of `db_id`): the calls this node sent to
    /// other nodes for that database are sent again with a new reqid and
    /// the current generation, routed from the start (Samba's
    /// ctdb_call_resend_db).
    pub(crate) fn resend_calls(&mut self, db_id: u32) {
        let mut reqids: Vec<u32> = self
            .calls
            .pending
            .iter()
            .filter(|(_, p)| p.call.db_id.0 == db_id)
            .map(|(r, _)| *r)
            .collect();
        reqids.sort_unstable();
        let count = reqids.len();
        for r in reqids {
            let Some(p) = self.calls.pending.remove(&r) else {
                continue;
            };
            if self.calls_routed() {
                self.issue_call(p);
            } else {
                self.local_call(p);
            }
        }
        if count > 0 {
            log_notice!(
                "Resent calls for database=0x{:08x}, generation={}, count={}",
                db_id,
                self.state.generation,
                count
            );
        }
    }

    /// Looks every second, while calls are held back for an active recovery,
    /// whether it has ended (in case nothing calls `reissue_held_calls`).
    fn watch_recovery_end(&mut self) {
        if self.calls.watching_recovery {
            return;
        }
        self.calls.watching_recovery = true;
        let then: DbContinuation = Box::new(|d: &mut Daemon, _| {
            d.calls.watching_recovery = false;
            if d.state.recmode == RECOVERY_NORMAL {
                d.reissue_held_calls();
            } else if d.dbs.iter().any(|db| !db.frozen && !db.deferred.is_empty()) {
                d.watch_recovery_end();
            }
        });
        self.track(then, Some(RECOVERY_POLL));
    }

    /// A record packet from a node for a frozen database waits for the thaw
    /// (Samba's waits for the freeze's locks); at the thaw it is handled
    /// again and dropped if the generation has changed meanwhile.
    fn hold_for_thaw(&mut self, db_id: u32, hdr: Header, packet: Packet) {
        log_debug!(
            "{:?} reqid {} from node {} waits for the thaw",
            hdr.operation,
            hdr.reqid,
            hdr.srcnode.0
        );
        let bytes = packet.encode(hdr);
        let held = self.calls.held.entry(db_id).or_default();
        held.push((hdr.srcnode, bytes));
    }

    /// At the thaw of `db_id`: the record packets from nodes held while it
    /// was frozen are handled, in order.
    pub(crate) fn release_held_packets(&mut self, db_id: u32) {
        for (src, pkt) in self.calls.held.remove(&db_id).unwrap_or_default() {
            if let Err(why) = self.packet(Origin::Node(src), &pkt) {
                log_err!("Held record packet is malformed: {}", why);
            }
        }
    }

    /// Issues again the calls of local clients held back while recovery was
    /// active, for every database that is not frozen (to be run when
    /// recovery mode returns to normal).
    pub(crate) fn reissue_held_calls(&mut self) {
        if self.state.recmode != RECOVERY_NORMAL {
            return;
        }
        let ids: Vec<u32> = self
            .dbs
            .iter()
            .filter(|d| d.ready && !d.frozen && !d.deferred.is_empty())
            .map(|d| d.id)
            .collect();
        for id in ids {
            self.replay_deferred(id);
        }
    }

    /// Replays the calls held back for database `id`, in order.
    pub(crate) fn replay_deferred(&mut self, id: u32) {
        let Some(d) = self.db_mut(id) else {
            return;
        };
        for (tok, pkt) in std::mem::take(&mut d.deferred) {
            let c = ClientId(tok);
            if self.client_is_live(c) {
                let _ = self.packet(Origin::Client(c), &pkt);
            }
        }
    }
}

/// What the dmaster runs for a call.
fn spec(c: &ReqCall) -> CallSpec {
    CallSpec {
        callid: c.callid,
        flags: c.flags,
    }
}

/// The status and data of a finished call; a failure is logged and answered
/// with status -1.
fn call_result(done: Completion<Reply>) -> (i32, Vec<u8>) {
    match done {
        Completion::Answered(Reply::Call { status, data }) => (status, data),
        Completion::Answered(Reply::Failed(why)) => {
            log_err!("Record call failed: {}", why);
            (-1, Vec::new())
        }
        other => {
            log_err!("Record call ended unexpectedly: {:?}", other);
            (-1, Vec::new())
        }
    }
}

/// Bytes as Samba's hex_encode_talloc writes them (upper case).
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

mod readonly;
#[cfg(test)]
mod readonly_tests;
mod sticky;
#[cfg(test)]
mod tests;
