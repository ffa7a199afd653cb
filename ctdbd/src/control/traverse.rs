//! Cluster-wide traverses, as Samba's ctdb_traverse.c runs them.
//!
//! A client's TRAVERSE_START(_EXT) makes this node the collector: it asks
//! every active node (a volatile database) or one node, this one if it is
//! in the vnn map (a persistent or replicated database), with TRAVERSE_ALL
//! (_EXT) to walk its copy.  Each walking node streams its records back as
//! TRAVERSE_DATA controls carrying the collector's id, then an empty record
//! as its end marker.  The collector hands each record on to the client's
//! srvid as it comes, and sends the client's end marker once every node
//! walked (the end markers counted against the active nodes at the time each
//! arrives) or when TraverseTimeout passes, after which it sends
//! TRAVERSE_KILL to every connected node.  A client that goes away kills
//! the traverse the same way.  This node's own walk feeds its collector
//! directly, with no packet.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::db::traverse::{Item as TraverseItem, Stream as TraverseStream};
use crate::db::{Op, Reply};
use crate::ltdb::Kind;
use crate::requests::{Completion, Tag};
use crate::transport::ClientId;
use crate::{log_err, log_info, log_notice, log_warn};
use ctdb_protocol::ltdb::RecData;
use ctdb_protocol::types::{TraverseAll, TraverseAllExt, TraverseStart, TraverseStartExt};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{ControlOpcode, DbId, Layout, Pnn, Srvid};
use std::collections::HashMap;
use std::time::Duration;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::TraverseStart, traverse_start);
    r.add(ControlOpcode::TraverseStartExt, traverse_start);
    r.add(ControlOpcode::TraverseAll, traverse_all);
    r.add(ControlOpcode::TraverseAllExt, traverse_all);
    r.add(ControlOpcode::TraverseData, traverse_data);
    r.add(ControlOpcode::TraverseKill, traverse_kill);
}

/// Unsent bytes a traverse's receiving client (or, for a walk for another
/// node, the connection to that node) may have before the walk feeding it
/// waits for them to be written.
const TRAVERSE_BACKLOG: usize = 4 << 20;

/// A walk of this node's copy of a database for a traverse collected on
/// node `to`: its records stream from the database's worker.
pub struct LocalWalk {
    /// The database walked.
    pub db_id: u32,
    /// The collecting node.
    pub to: Pnn,
    /// The collector's id, in every TRAVERSE_DATA.
    pub reqid: u32,
    /// The client's traverse id: with `srvid`, what TRAVERSE_KILL names.
    pub client_reqid: u32,
    /// The client's srvid.
    pub srvid: u64,
    /// The worker's batches.
    pub stream: TraverseStream,
    /// Records sent so far.
    pub records: u32,
}

/// A client's traverse collected on this node.
pub struct Collection {
    /// The database traversed.
    pub db_id: u32,
    /// The local client that started it.
    pub client: ClientId,
    /// Where the records go.
    pub srvid: u64,
    /// The client's traverse id, in every record it gets.
    pub client_reqid: u32,
    /// All active nodes walk it (a volatile database), not one.
    pub every_node: bool,
    /// End markers received.
    pub ends: u32,
    /// Records handed on.
    pub records: u32,
    /// Its TraverseTimeout timer (the collector's id is its low 32 bits).
    pub timer: Tag,
}

/// The traverses in flight on this node.
#[derive(Default)]
pub struct Traverses {
    /// Walks of this node's copies, by the tag of their database job.
    walks: HashMap<Tag, LocalWalk>,
    /// Collections for this node's clients, by collector id.
    collecting: HashMap<u32, Collection>,
}

impl Traverses {
    /// Drops every walk (their workers stop at the next batch).
    pub fn clear(&mut self) {
        self.walks.clear();
    }

    /// Walks in flight.
    #[cfg(test)]
    pub fn walks(&self) -> usize {
        self.walks.len()
    }

    /// Collections in flight.
    #[cfg(test)]
    pub fn collections(&self) -> usize {
        self.collecting.len()
    }
}

/// TRAVERSE_START / _EXT: db_id u32, reqid u32, srvid u64, and for _EXT
/// withemptyrecords and 7 bytes padding.
fn traverse_start(d: &mut Daemon, req: &Request) -> Outcome {
    let ext = req.opcode() == ControlOpcode::TraverseStartExt;
    let start = if ext {
        TraverseStartExt::decode(req.data())
    } else {
        TraverseStart::decode(req.data()).map(|s| TraverseStartExt {
            db_id: s.db_id,
            reqid: s.reqid,
            srvid: s.srvid,
            with_empty_records: false,
        })
    };
    let Ok(start) = start else {
        log_err!(
            "Bad record size in traverse start ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    };
    let Some(client) = req.client() else {
        log_err!("No client found");
        return Outcome::status(-1);
    };
    if !readable(d, start.db_id.0, "traverse start") {
        return Outcome::status(-1);
    }
    d.start_collection(client, start);
    Outcome::status(0)
}

/// Whether database `id` is attached and may be read (an unhealthy one only
/// with AllowUnhealthyDBRead).
fn readable(d: &Daemon, id: u32, what: &str) -> bool {
    let Some(db) = d.find_db(id) else {
        return false;
    };
    if let Some(why) = &db.unhealthy {
        if d.state.tunables.allow_unhealthy_db_read == 0 {
            log_err!("db({}) unhealthy in {}: {}", db.name, what, why);
            return false;
        }
        log_warn!("warn: db({}) unhealthy in {}: {}", db.name, what, why);
    }
    true
}

/// TRAVERSE_ALL / _EXT from a collecting node: walk this node's copy and
/// stream it back.
fn traverse_all(d: &mut Daemon, req: &Request) -> Outcome {
    let all = if req.opcode() == ControlOpcode::TraverseAllExt {
        TraverseAllExt::decode(req.data())
    } else {
        TraverseAll::decode(req.data()).map(|all| TraverseAllExt {
            all,
            with_empty_records: false,
        })
    };
    let Ok(all) = all else {
        log_err!(
            "Invalid size in ctdb_control_traverse_all ({} bytes)",
            req.data().len()
        );
        return Outcome::status(-1);
    };
    if !readable(d, all.all.db_id.0, "ctdb_control_traverse_all") {
        return Outcome::status(-1);
    }
    d.start_walk(all);
    Outcome::status(0)
}

/// TRAVERSE_DATA: one record (or a node's end marker) of a traverse this
/// node collects.
fn traverse_data(d: &mut Daemon, req: &Request) -> Outcome {
    let data = req.data();
    let declared = Reader::new(data).u32("length");
    if declared.map_or(true, |n| n as usize != data.len()) {
        log_err!("Bad record size in ctdb_control_traverse_data");
        return Outcome::status(-1);
    }
    let Ok(rec) = RecData::decode(data) else {
        log_err!("Bad record in ctdb_control_traverse_data");
        return Outcome::status(-1);
    };
    if d.collect(rec.reqid, rec.key, rec.data) {
        Outcome::status(0)
    } else {
        // The traverse may have ended already.
        Outcome::status(-1)
    }
}

/// TRAVERSE_KILL (a ctdb_traverse_start): stops this node's walk for the
/// client traverse (reqid, srvid) on the database.
fn traverse_kill(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(k) = TraverseStart::decode(req.data()) else {
        return Outcome::status(-1);
    };
    if d.find_db(k.db_id.0).is_none() {
        return Outcome::status(-1);
    }
    let doomed =
        d.traverses.walks.iter().find(|(_, w)| {
            w.db_id == k.db_id.0 && w.client_reqid == k.reqid && w.srvid == k.srvid.0
        });
    if let Some((&tag, _)) = doomed {
        d.traverses.walks.remove(&tag);
        log_info!("Traverse of db 0x{:08x} killed", k.db_id.0);
    }
    Outcome::status(0)
}

impl Daemon {
    /// Starts collecting a client's traverse: TRAVERSE_ALL to the nodes that
    /// walk it (this node's walk starts at once), the timeout armed.
    fn start_collection(&mut self, client: ClientId, start: TraverseStartExt) {
        let id = start.db_id.0;
        let every_node = self
            .find_db(id)
            .is_some_and(|db| db.kind() == Kind::Volatile);
        let timeout = Duration::from_secs(self.state.tunables.traverse_timeout as u64);
        let timer = self.track_with(
            |tag| Box::new(move |d: &mut Daemon, done| d.collection_expired(tag, done)),
            Some(timeout),
        );
        let reqid = timer.0 as u32;
        self.traverses.collecting.insert(
            reqid,
            Collection {
                db_id: id,
                client,
                srvid: start.srvid.0,
                client_reqid: start.reqid,
                every_node,
                ends: 0,
                records: 0,
                timer,
            },
        );
        let all = TraverseAllExt {
            all: TraverseAll {
                db_id: DbId(id),
                reqid,
                pnn: Pnn(self.state.pnn),
                client_reqid: start.reqid,
                srvid: start.srvid,
            },
            with_empty_records: start.with_empty_records,
        };
        log_notice!(
            "Starting traverse on DB {} (id {})",
            self.db_name(id),
            reqid
        );
        let walkers = self.walking_nodes(every_node);
        if walkers.is_empty() {
            // Nobody to walk it (no active node): it ends at once.
            self.end_collection(reqid, false);
            return;
        }
        for pnn in walkers {
            if pnn.0 == self.state.pnn {
                self.start_walk(all);
            } else if start.with_empty_records {
                let data = all.to_bytes();
                self.send_node_control(pnn, ControlOpcode::TraverseAllExt, data, None);
            } else {
                let data = all.all.to_bytes();
                self.send_node_control(pnn, ControlOpcode::TraverseAll, data, None);
            }
        }
    }

    /// The nodes that walk a traverse: every active node, or this one if
    /// it is in the vnn map (else the map's first).
    fn walking_nodes(&self, every_node: bool) -> Vec<Pnn> {
        let me = Pnn(self.state.pnn);
        if every_node {
            return self.active_nodes();
        }
        let map = &self.state.vnn_map;
        if map.contains(&me) || map.is_empty() {
            vec![me]
        } else {
            vec![map[0]]
        }
    }

    /// Starts walking this node's copy for the collector `all.pnn`.
    fn start_walk(&mut self, all: TraverseAllExt) {
        let (sink, stream) = crate::db::traverse::stream_pair();
        let tag = self.requests.new_tag();
        let id = all.all.db_id.0;
        let op = Op::Traverse {
            with_empty: all.with_empty_records,
            sink,
        };
        self.submit_tagged(tag, id, op);
        self.traverses.walks.insert(
            tag,
            LocalWalk {
                db_id: id,
                to: all.all.pnn,
                reqid: all.all.reqid,
                client_reqid: all.all.client_reqid,
                srvid: all.all.srvid.0,
                stream,
                records: 0,
            },
        );
    }

    /// Forwards what the walks' workers streamed while their receivers keep
    /// up: a walk for this node's client waits while that client has more
    /// than TRAVERSE_BACKLOG bytes unsent (and its worker with it, the
    /// stream being bounded).
    pub(crate) fn pump_traverses(&mut self) {
        let tags: Vec<Tag> = self.traverses.walks.keys().copied().collect();
        for tag in tags {
            self.pump_walk(tag);
        }
    }

    fn pump_walk(&mut self, tag: Tag) {
        loop {
            let Some(w) = self.traverses.walks.get(&tag) else {
                return;
            };
            if self.walk_backlog(w) > TRAVERSE_BACKLOG {
                return;
            }
            match w.stream.try_next() {
                None => return,
                Some(TraverseItem::Batch(recs)) => {
                    let (to, reqid) = (w.to, w.reqid);
                    if let Some(w) = self.traverses.walks.get_mut(&tag) {
                        w.records += recs.len() as u32;
                    }
                    for (key, data) in recs {
                        self.traverse_record(to, reqid, key, data);
                    }
                }
                // Only a DB_PULL's walk makes marshall buffers.
                Some(TraverseItem::Buffer(..)) => {}
                Some(TraverseItem::End(result)) => {
                    let Some(w) = self.traverses.walks.remove(&tag) else {
                        return;
                    };
                    match result {
                        Ok(_) => log_info!(
                            "Local traverse end db:{} reqid:{} records:{}",
                            self.db_name(w.db_id),
                            w.reqid,
                            w.records
                        ),
                        Err(why) => log_err!(
                            "Local traverse failed db:{} reqid:{}: {}",
                            self.db_name(w.db_id),
                            w.reqid,
                            why
                        ),
                    }
                    self.traverse_record(w.to, w.reqid, Vec::new(), Vec::new());
                    return;
                }
            }
        }
    }

    /// Bytes not yet written to whoever gets a walk's records: the
    /// collecting client's when this node collects, else the queue to the
    /// collecting node.
    fn walk_backlog(&self, w: &LocalWalk) -> usize {
        if w.to.0 != self.state.pnn {
            return self.links.queued(w.to);
        }
        match self.traverses.collecting.get(&w.reqid) {
            Some(c) => self.srvid_backlog(c.srvid),
            None => 0,
        }
    }

    /// One record (empty: the end marker) of a walk, to its collector.
    fn traverse_record(&mut self, to: Pnn, reqid: u32, key: Vec<u8>, data: Vec<u8>) {
        if to.0 == self.state.pnn {
            self.collect(reqid, key, data);
            return;
        }
        let rec = RecData { reqid, key, data };
        self.send_node_control(to, ControlOpcode::TraverseData, rec.to_bytes(), None);
    }

    /// A record for collection `reqid` arrived: handed on to the client, or
    /// counted as an end marker.  False when no such traverse is collected.
    fn collect(&mut self, reqid: u32, key: Vec<u8>, data: Vec<u8>) -> bool {
        let active = self.active_nodes().len() as u32;
        let Some(c) = self.traverses.collecting.get_mut(&reqid) else {
            return false;
        };
        if key.is_empty() && data.is_empty() {
            c.ends += 1;
            if !c.every_node || c.ends >= active {
                self.end_collection(reqid, false);
            }
            return true;
        }
        c.records += 1;
        let (srvid, client_reqid) = (c.srvid, c.client_reqid);
        self.send_records(srvid, client_reqid, vec![(key, data)]);
        true
    }

    /// Sends the client's end marker and forgets the collection; a timed-out
    /// one is killed on every connected node.
    fn end_collection(&mut self, reqid: u32, timed_out: bool) {
        let Some(c) = self.traverses.collecting.remove(&reqid) else {
            return;
        };
        self.send_records(c.srvid, c.client_reqid, vec![(Vec::new(), Vec::new())]);
        log_notice!(
            "Ending traverse on DB {} (id {}), records {}",
            self.db_name(c.db_id),
            reqid,
            c.records
        );
        if timed_out {
            self.kill_everywhere(&c);
        } else {
            // Retires the timeout.
            self.answer(c.timer, Reply::Ok);
        }
    }

    /// TRAVERSE_KILL to every connected node (this one's walk is dropped
    /// directly).
    fn kill_everywhere(&mut self, c: &Collection) {
        let kill = TraverseStart {
            db_id: DbId(c.db_id),
            reqid: c.client_reqid,
            srvid: Srvid(c.srvid),
        };
        let me = self.state.pnn;
        let reqid = c.timer.0 as u32;
        self.traverses
            .walks
            .retain(|_, w| !(w.to.0 == me && w.reqid == reqid));
        for pnn in self.connected_nodes() {
            if pnn.0 != me {
                let data = kill.to_bytes();
                self.send_node_control(pnn, ControlOpcode::TraverseKill, data, None);
            }
        }
    }

    /// TraverseTimeout passed before every node's end marker: the client
    /// gets its end marker now and the walks are killed.
    fn collection_expired(&mut self, timer: Tag, done: Completion<Reply>) {
        if done != Completion::TimedOut {
            return;
        }
        let reqid = timer.0 as u32;
        let Some(c) = self.traverses.collecting.get(&reqid) else {
            return;
        };
        log_err!("Traverse all timeout on database:{}", self.db_name(c.db_id));
        self.stats.timeouts.traverse += 1;
        self.end_collection(reqid, true);
    }

    /// A client went away: the traverses it started are killed everywhere,
    /// without an end marker.
    pub(crate) fn traverses_client_gone(&mut self, client: ClientId) {
        let gone: Vec<u32> = self
            .traverses
            .collecting
            .iter()
            .filter(|(_, c)| c.client == client)
            .map(|(r, _)| *r)
            .collect();
        for reqid in gone {
            let Some(c) = self.traverses.collecting.remove(&reqid) else {
                continue;
            };
            log_err!(
                "Traverse cancelled by client disconnect for database:0x{:08x}",
                c.db_id
            );
            self.kill_everywhere(&c);
            self.requests.cancel_where(|t| t == c.timer);
        }
    }

    /// A database was detached: its walks and collections end without an
    /// end marker.
    pub(crate) fn drop_traverses_of(&mut self, db_id: u32) {
        self.traverses.walks.retain(|_, w| w.db_id != db_id);
        let timers: Vec<Tag> = self
            .traverses
            .collecting
            .values()
            .filter(|c| c.db_id == db_id)
            .map(|c| c.timer)
            .collect();
        self.traverses.collecting.retain(|_, c| c.db_id != db_id);
        self.requests.cancel_where(|t| timers.contains(&t));
    }

    /// The most bytes any client that gets `srvid` messages has not yet
    /// written out.
    fn srvid_backlog(&self, srvid: u64) -> usize {
        self.transport
            .live()
            .filter(|(c, _)| self.registrations.copies(*c, srvid) > 0)
            .map(|(c, _)| self.transport.unsent(c))
            .max()
            .unwrap_or(0)
    }

    /// The name of an attached database (empty if unknown), for logs.
    fn db_name(&self, id: u32) -> String {
        self.dbs
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::persistent::testing::Cluster;
    use crate::ltdb::{self, Header};
    use crate::transport::Origin;
    use ctdb_protocol::types::NODE_FLAGS_DISCONNECTED;

    const SRVID: u64 = 0xF00D;

    /// A volatile database on 3 nodes; node n holds (as dmaster) the record
    /// "kn" = "vn", and a copy of "k0" it is not dmaster of.
    fn three_nodes(tag: &str) -> (Cluster, u32) {
        let mut c = Cluster::new(tag, 3);
        let db = c.attach_everywhere("v.tdb", ControlOpcode::DbAttach);
        for pnn in 0..3u32 {
            let own = Header {
                rsn: 2,
                dmaster: pnn,
                ..Default::default()
            };
            let mut recs = vec![(
                format!("k{pnn}").into_bytes(),
                own,
                format!("v{pnn}").into_bytes(),
            )];
            if pnn != 0 {
                let stale = Header {
                    rsn: 1,
                    dmaster: 0,
                    ..Default::default()
                };
                recs.push((b"k0".to_vec(), stale, b"old".to_vec()));
            }
            c.nodes[pnn as usize].submit_untracked(
                db,
                Op::PushStore {
                    recs,
                    vnn_map: Vec::new(),
                },
            );
        }
        c.settle();
        (c, db)
    }

    /// A client of node `pnn` registered for SRVID starts a traverse.
    fn start(c: &mut Cluster, pnn: u32, db: u32) -> ClientId {
        let client = c.connect(pnn);
        c.control_srvid(pnn, client, ControlOpcode::RegisterSrvid, SRVID, vec![]);
        let start = TraverseStart {
            db_id: DbId(db),
            reqid: 77,
            srvid: Srvid(SRVID),
        };
        let reqid = c.control(pnn, client, ControlOpcode::TraverseStart, start.to_bytes());
        assert_eq!(c.reply(pnn, reqid), Some((0, vec![])));
        client
    }

    /// The (key, value) pairs the client got, the end marker as ("", "").
    fn got(c: &Cluster, pnn: u32) -> Vec<(String, String)> {
        c.records_to(pnn, SRVID)
            .into_iter()
            .map(|r| {
                assert_eq!(r.reqid, 77, "the client's traverse id");
                let v = r.data.get(ltdb::HEADER_LEN..).unwrap_or(&[]);
                (
                    String::from_utf8_lossy(&r.key).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_traverse_collects_every_nodes_records_then_one_end_marker() {
        let (mut c, db) = three_nodes("travall");
        start(&mut c, 1, db);
        let mut recs = got(&c, 1);
        assert_eq!(recs.pop(), Some((String::new(), String::new())));
        recs.sort();
        let want: Vec<(String, String)> =
            (0..3).map(|n| (format!("k{n}"), format!("v{n}"))).collect();
        assert_eq!(recs, want, "each record once, from its dmaster");
        for other in [0, 2] {
            assert_eq!(c.controls_sent(1, other), [ControlOpcode::TraverseAll]);
            let sent = c.controls_sent(other, 1);
            assert_eq!(sent.len(), 2, "one record and the end marker");
            assert!(sent.iter().all(|o| *o == ControlOpcode::TraverseData));
        }
        assert_eq!(c.nodes[1].traverses.collections(), 0);
        for n in &c.nodes {
            assert_eq!(n.traverses.walks(), 0);
        }
    }

    #[test]
    fn a_persistent_traverse_walks_this_node_only() {
        let mut c = Cluster::new("travpers", 3);
        let db = c.attach_everywhere("p.tdb", ControlOpcode::DbAttachPersistent);
        let h = Header {
            rsn: 1,
            ..Default::default()
        };
        for pnn in 0..3usize {
            let recs = vec![(b"same".to_vec(), h, b"x".to_vec())];
            c.nodes[pnn].submit_untracked(
                db,
                Op::PushStore {
                    recs,
                    vnn_map: Vec::new(),
                },
            );
        }
        c.settle();
        start(&mut c, 2, db);
        assert_eq!(
            got(&c, 2),
            [("same".into(), "x".into()), (String::new(), String::new())]
        );
        assert!(c.wire.is_empty(), "no packet between nodes");
    }

    #[test]
    fn a_silent_node_ends_the_traverse_at_the_timeout_and_it_is_killed() {
        let (mut c, db) = three_nodes("travdead");
        c.dead.push(2);
        start(&mut c, 1, db);
        let recs = got(&c, 1);
        assert_eq!(
            recs.len(),
            2,
            "node 0's and node 1's records, no end: {recs:?}"
        );
        let timer = c.nodes[1]
            .traverses
            .collecting
            .values()
            .next()
            .unwrap()
            .timer;
        c.nodes[1].expire(timer);
        c.settle();
        assert_eq!(got(&c, 1).last(), Some(&(String::new(), String::new())));
        assert_eq!(c.nodes[1].stats.timeouts.traverse, 1);
        for other in [0, 2] {
            assert_eq!(
                c.controls_sent(1, other).last(),
                Some(&ControlOpcode::TraverseKill)
            );
        }
    }

    #[test]
    fn a_node_known_to_be_gone_is_not_waited_for() {
        let (mut c, db) = three_nodes("travgone");
        c.dead.push(2);
        c.nodes[1].state.node_flags[2] = NODE_FLAGS_DISCONNECTED;
        start(&mut c, 1, db);
        let recs = got(&c, 1);
        assert_eq!(recs.len(), 3, "{recs:?}");
        assert_eq!(recs.last(), Some(&(String::new(), String::new())));
        assert!(c.controls_sent(1, 2).is_empty());
    }

    #[test]
    fn traverse_kill_stops_a_walk_and_a_client_gone_kills_everywhere() {
        let (mut c, db) = three_nodes("travkill");
        let all = TraverseAll {
            db_id: DbId(db),
            reqid: 5,
            pnn: Pnn(1),
            client_reqid: 77,
            srvid: Srvid(SRVID),
        };
        let pkt = crate::dispatch::tests::control(ControlOpcode::TraverseAll, 1, 1, all.to_bytes());
        c.nodes[0].packet(Origin::Node(Pnn(1)), &pkt).unwrap();
        assert_eq!(c.nodes[0].traverses.walks(), 1);
        let kill = TraverseStart {
            db_id: DbId(db),
            reqid: 77,
            srvid: Srvid(SRVID),
        };
        let pkt =
            crate::dispatch::tests::control(ControlOpcode::TraverseKill, 1, 2, kill.to_bytes());
        c.nodes[0].packet(Origin::Node(Pnn(1)), &pkt).unwrap();
        assert_eq!(c.nodes[0].traverses.walks(), 0);
        c.settle();
        assert!(
            c.controls_sent(0, 1).is_empty(),
            "nothing streamed after the kill"
        );

        // A collecting client goes away before node 2 answers.
        c.dead.push(2);
        let client = start(&mut c, 1, db);
        assert_eq!(c.nodes[1].traverses.collections(), 1);
        c.nodes[1].traverses_client_gone(client);
        c.settle();
        assert_eq!(c.nodes[1].traverses.collections(), 0);
        assert_eq!(
            c.controls_sent(1, 0).last(),
            Some(&ControlOpcode::TraverseKill)
        );
    }

    #[test]
    fn traverse_data_for_an_unknown_traverse_or_of_a_bad_size_fails() {
        let (mut c, _) = three_nodes("travdata");
        let rec = RecData {
            reqid: 999,
            key: b"k".to_vec(),
            data: b"v".to_vec(),
        };
        let mut bytes = rec.to_bytes();
        let pkt = crate::dispatch::tests::control(ControlOpcode::TraverseData, 0, 3, bytes.clone());
        c.nodes[1].packet(Origin::Node(Pnn(0)), &pkt).unwrap();
        bytes.push(0);
        let pkt = crate::dispatch::tests::control(ControlOpcode::TraverseData, 0, 4, bytes);
        c.nodes[1].packet(Origin::Node(Pnn(0)), &pkt).unwrap();
        c.settle();
        assert_eq!(c.reply_to_node(1, 3).map(|r| r.0), Some(-1));
        assert_eq!(c.reply_to_node(1, 4).map(|r| r.0), Some(-1));
    }
}
