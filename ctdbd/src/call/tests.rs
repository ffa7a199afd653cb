//! Record migration at the dispatch level, without sockets: a daemon with a
//! vnn map of three nodes gets the packets its clients and the other nodes
//! would send; its database work runs on real workers, and the packets it
//! queues are checked.

use super::*;
use crate::actions::Action;
use crate::db::{Done, Job, CALL_FETCH_FUNC, CALL_NULL_FUNC};
use crate::ltdb::{Header as LtdbHeader, HEADER_LEN, REC_FLAG_MIGRATED_WITH_DATA};
use ctdb_protocol::packet::ReqControl;
use ctdb_protocol::{ControlOpcode, Srvid};
use std::path::PathBuf;

pub(super) const GEN: u32 = 77;
const DB: &str = "migrate.tdb";

/// A daemon with pnn `pnn` of three nodes, vnn map [0, 1, 2], generation
/// GEN, recovery mode normal, its databases in a fresh directory.
pub(super) fn daemon(tag: &str, pnn: u32) -> (Daemon, PathBuf) {
    let (mut d, dir) = crate::dispatch::tests::node_daemon(&format!("call-{tag}"), pnn, 3);
    assert_eq!(d.state.generation, Generation(GEN));
    attach(&mut d);
    (d, dir)
}

/// Packets the daemon queued, decoded, with where they go.
pub(super) type Sent = Vec<(Origin, Header, Packet)>;

/// Executes the queued actions, runs the database work to its end and
/// collects the packets sent, until nothing is left to do.
pub(super) fn settle(d: &mut Daemon) -> Sent {
    settle_timers(d).0
}

/// `settle`, also returning the tags of the tracked requests whose expiry
/// timers were armed meanwhile (the test fires them with `Daemon::expire`).
pub(super) fn settle_timers(d: &mut Daemon) -> (Sent, Vec<Tag>) {
    let mut timers = Vec::new();
    let mut sent = Vec::new();
    let mut outstanding = 0usize;
    loop {
        for a in d.outbox.take() {
            match a {
                Action::Send { to, packet } => {
                    let (h, p) = Packet::decode(&packet).expect("a well-formed packet");
                    sent.push((to, h, p));
                }
                Action::ArmTimer {
                    event: crate::timers::TimerEvent::RequestExpired(tag),
                    ..
                } => timers.push(tag),
                Action::ArmTimer { .. } => {}
                Action::AnswerControl { reqid, reply } => d.answer_control(reqid, reply),
                Action::Database(job) => {
                    if matches!(job, Job::Op { .. } | Job::Open { .. }) {
                        outstanding += 1;
                    }
                    d.submit_job(job);
                }
            }
        }
        if !d.outbox.is_empty() {
            continue;
        }
        if outstanding == 0 {
            return (sent, timers);
        }
        let done = d
            .db_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("database work answers");
        outstanding -= 1;
        match done {
            Done::Op { tag, reply } => d.answer(Tag(tag), reply),
            Done::Opened { id, result } => d.opened(id, result),
            Done::Unhealthy { id, reason } => panic!("db 0x{id:08x} unhealthy: {reason}"),
        }
    }
}

/// Attaches the volatile test database through a client's DB_ATTACH.
pub(super) fn attach(d: &mut Daemon) {
    let mut name = DB.as_bytes().to_vec();
    name.push(0);
    let body = ReqControl {
        opcode: ControlOpcode::DbAttach,
        srvid: Srvid(0),
        client_id: 0,
        flags: 0,
        data: name,
    };
    let h = Header::new(Operation::ReqControl, Pnn::CURRENT_NODE, Pnn(0), 1);
    let c = Origin::Client(ClientId(99));
    d.packet(c, &Packet::ReqControl(body).encode(h)).unwrap();
    let sent = settle(d);
    // The client's answer; the attach is also announced to the other nodes.
    assert!(sent
        .iter()
        .any(|(to, _, p)| *to == c && matches!(p, Packet::ReplyControl(r) if r.status == 0)));
}

pub(super) fn db_id() -> u32 {
    crate::db::db_id(DB)
}

/// A key whose lmaster in the map [0, 1, 2] is `pnn`.
pub(super) fn key_of(pnn: u32) -> Vec<u8> {
    let map = [Pnn(0), Pnn(1), Pnn(2)];
    (0..)
        .map(|i| format!("key-{i}").into_bytes())
        .find(|k| lmaster(&map, k) == Some(Pnn(pnn)))
        .unwrap()
}

/// A REQ_CALL as a client (or, with `hopcount`, a node) sends it.
pub(super) fn req_call(key: &[u8], callid: u32, hopcount: u32) -> ReqCall {
    ReqCall {
        flags: 1,
        db_id: DbId(db_id()),
        callid,
        hopcount,
        key: key.to_vec(),
        calldata: Vec::new(),
    }
}

/// A client's REQ_CALL packet.
pub(super) fn client_call(key: &[u8], callid: u32, reqid: u32) -> Vec<u8> {
    let h = Header::new(Operation::ReqCall, Pnn::CURRENT_NODE, Pnn(0), reqid);
    Packet::ReqCall(req_call(key, callid, 0)).encode(h)
}

/// A header of a packet from node `src` to node `dest`.
pub(super) fn node_hdr(op: Operation, src: u32, dest: u32, reqid: u32) -> Header {
    Header {
        generation: Generation(GEN),
        ..Header::new(op, Pnn(dest), Pnn(src), reqid)
    }
}

/// The record as stored in this daemon's database file (header, value),
/// read from a copy of the file (a tdb is open once per process).
pub(super) fn stored(d: &mut Daemon, key: &[u8]) -> Option<(LtdbHeader, Vec<u8>)> {
    settle(d);
    let path = d.find_db(db_id()).unwrap().path.clone();
    let copy = path.with_extension("copy");
    std::fs::copy(&path, &copy).unwrap();
    let c = std::ffi::CString::new(copy.as_os_str().as_encoded_bytes()).unwrap();
    let opts = tdb_engine::OpenOptions {
        open_flags: libc::O_RDWR,
        ..Default::default()
    };
    let mut t = tdb_engine::Tdb::open(Some(&c), opts).unwrap();
    let v = t.fetch(key).ok();
    let _ = t.close();
    std::fs::remove_file(&copy).unwrap();
    let v = v?;
    Some((LtdbHeader::decode(&v).unwrap(), v[HEADER_LEN..].to_vec()))
}

/// Stores a record with this header as it is (a copy naming another
/// dmaster is not bumped).
pub(super) fn seed(d: &mut Daemon, key: &[u8], header: LtdbHeader, data: &[u8]) {
    let recs = vec![(key.to_vec(), header, data.to_vec())];
    d.submit_untracked(
        db_id(),
        Op::PushStore {
            recs,
            vnn_map: Vec::new(),
        },
    );
    settle(d);
}

pub(super) fn client(n: usize) -> Origin {
    Origin::Client(ClientId(n))
}

/// A client really connected to the daemon's socket (so that calls held
/// back for it are replayed); the stream must stay open.
pub(super) fn connected(
    d: &mut Daemon,
    dir: &std::path::Path,
) -> (Origin, std::os::unix::net::UnixStream) {
    let before: Vec<ClientId> = d.transport.live().map(|(c, _)| c).collect();
    let s = std::os::unix::net::UnixStream::connect(dir.join("sock")).unwrap();
    d.transport.accept_clients();
    let id = d
        .transport
        .live()
        .map(|(c, _)| c)
        .find(|c| !before.contains(c))
        .expect("the new client");
    (Origin::Client(id), s)
}

#[test]
fn lmaster_is_the_map_entry_at_the_jenkins_hash() {
    let map = [Pnn(4), Pnn(7), Pnn(9)];
    for k in [&b"a"[..], b"key-1", b"", b"a longer key than twelve bytes"] {
        let slot = tdb_engine::jenkins_hash(k) % 3;
        assert_eq!(lmaster(&map, k), Some(map[slot as usize]));
    }
    assert_eq!(lmaster(&[], b"a"), None);
    assert_eq!(lmaster(&[Pnn(5)], b"whatever"), Some(Pnn(5)));
    // The three nodes each get some of a hundred keys.
    let mut per = [0; 3];
    for i in 0..100 {
        per[lmaster(&[Pnn(0), Pnn(1), Pnn(2)], format!("k{i}").as_bytes())
            .unwrap()
            .0 as usize] += 1;
    }
    assert!(per.iter().all(|n| *n > 10), "{per:?}");
}

#[test]
fn hop_buckets_count_significant_bits() {
    assert_eq!(hop_bucket(0), 0);
    assert_eq!(hop_bucket(1), 1);
    assert_eq!(hop_bucket(2), 2);
    assert_eq!(hop_bucket(3), 2);
    assert_eq!(hop_bucket(4), 3);
    assert_eq!(hop_bucket(u32::MAX), MAX_COUNT_BUCKETS - 1);
    assert_eq!(redirect_target(Pnn(1), Pnn(1), Pnn(2)), Pnn(2));
    assert_eq!(redirect_target(Pnn(0), Pnn(1), Pnn(2)), Pnn(1));
}

#[test]
fn hot_keys_keep_the_most_migrated_records() {
    let mut t = Vec::new();
    assert!(update_hot_keys(&mut t, b"a", 1));
    assert!(!update_hot_keys(&mut t, b"a", 1));
    assert!(!update_hot_keys(&mut t, b"a", 3));
    assert_eq!(t, [(3, b"a".to_vec())]);
    for i in 0..(MAX_HOT_KEYS as u32 - 1) {
        assert!(update_hot_keys(&mut t, &[b'k', i as u8], 2 + i));
    }
    assert_eq!(t.len(), MAX_HOT_KEYS);
    assert_eq!(t[0], (2, b"k\0".to_vec()));
    // Full: a count not above the smallest is ignored; a larger one takes
    // the smallest slot.
    assert!(!update_hot_keys(&mut t, b"new", 2));
    assert!(update_hot_keys(&mut t, b"new", 50));
    assert_eq!(t.len(), MAX_HOT_KEYS);
    assert_eq!(t.last().unwrap(), &(50, b"new".to_vec()));
    assert!(t.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(!t.iter().any(|(_, k)| k == b"k\0"));
}

/// Node 0's client fetches a record whose lmaster is node 1: the REQ_CALL
/// goes to node 1; the REPLY_DMASTER makes node 0 the dmaster, the call runs
/// and the client is answered; the next call runs locally.
#[test]
fn a_client_call_fetches_the_record_through_its_lmaster() {
    let (mut d, dir) = daemon("fetch", 0);
    let key = key_of(1);
    d.packet(client(40), &client_call(&key, CALL_FETCH_FUNC, 5))
        .unwrap();
    let sent = settle(&mut d);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (to, h, Packet::ReqCall(c)) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert_eq!(
        (h.destnode, h.srcnode, h.generation),
        (Pnn(1), Pnn(0), Generation(GEN))
    );
    assert_eq!((c.hopcount, c.callid, c.flags), (0, CALL_FETCH_FUNC, 1));
    assert_eq!(c.key, key);
    assert_eq!(d.calls.pending_count(), 1);
    // Not stored here: the lmaster is node 1.
    assert_eq!(stored(&mut d, &key), None);

    let body = ReplyDmaster {
        db_id: DbId(db_id()),
        rsn: 5,
        key: key.clone(),
        data: b"value".to_vec(),
        record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
    };
    let hdr = node_hdr(Operation::ReplyDmaster, 1, 0, h.reqid);
    d.packet(
        Origin::Node(Pnn(1)),
        &Packet::ReplyDmaster(body).encode(hdr),
    )
    .unwrap();
    let sent = settle(&mut d);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (to, h, Packet::ReplyCall(r)) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid), (client(40), 5));
    assert_eq!((r.status, &r.data[..]), (0, &b"value"[..]));
    assert_eq!(d.calls.pending_count(), 0);
    // Stored as dmaster: rsn 5, one bump for becoming dmaster and one for
    // the call's own store, as Samba's ctdb_become_dmaster does.
    let (hd, v) = stored(&mut d, &key).unwrap();
    assert_eq!(
        (hd.rsn, hd.dmaster, hd.flags),
        (7, 0, REC_FLAG_MIGRATED_WITH_DATA)
    );
    assert_eq!(v, b"value");
    assert_eq!(d.stats.node.reply_dmaster, 1);
    let hot = &d.find_db(db_id()).unwrap().stats.hot_keys;
    assert_eq!(hot, &[(1, key.clone())]);

    // Now this node is the dmaster: the next call stays here.
    d.packet(client(41), &client_call(&key, CALL_FETCH_FUNC, 6))
        .unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(to, _, Packet::ReplyCall(r))] if *to == client(41) && r.data == b"value"),
        "{sent:?}"
    );
    assert_eq!(stored(&mut d, &key).unwrap().0.rsn, 8);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The lmaster (node 1) redirects node 0's call to the dmaster it knows
/// (node 2), one hop further, keeping the requester as source; the
/// dmaster's REQ_DMASTER then makes it record node 0 as dmaster and send
/// the record on with REPLY_DMASTER.
#[test]
fn the_lmaster_redirects_to_the_dmaster_and_passes_the_record_on() {
    let (mut d, dir) = daemon("lmaster", 1);
    let key = key_of(1);
    let at_2 = LtdbHeader {
        rsn: 10,
        dmaster: 2,
        ..Default::default()
    };
    seed(&mut d, &key, at_2, b"x");
    let hdr = node_hdr(Operation::ReqCall, 0, 1, 9);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqCall(c))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(2)));
    assert_eq!((h.destnode, h.srcnode, h.reqid), (Pnn(2), Pnn(0), 9));
    assert_eq!(c.hopcount, 1);
    // A redirect is not counted as served.
    assert_eq!(d.stats.max_hop_count, 0);

    let body = ReqDmaster {
        db_id: DbId(db_id()),
        rsn: 11,
        dmaster: Pnn(0),
        key: key.clone(),
        data: b"x".to_vec(),
        record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
    };
    let hdr = node_hdr(Operation::ReqDmaster, 2, 1, 9);
    let pkt = Packet::ReqDmaster(body).encode(hdr);
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReplyDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(0)));
    assert_eq!((h.destnode, h.srcnode, h.reqid), (Pnn(0), Pnn(1), 9));
    assert_eq!(h.generation, Generation(GEN));
    assert_eq!((r.rsn, &r.data[..]), (11, &b"x"[..]));
    assert_eq!(r.record_flags, Some(REC_FLAG_MIGRATED_WITH_DATA));
    let (hd, v) = stored(&mut d, &key).unwrap();
    assert_eq!((hd.rsn, hd.dmaster), (11, 0));
    assert_eq!(v, b"x");

    // Node 2 is no longer the dmaster the lmaster knows: its REQ_DMASTER is
    // refused and recovery is forced, as in Samba.
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(d.state.recmode, RECOVERY_ACTIVE);
    assert_eq!(stored(&mut d, &key).unwrap().0.dmaster, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The dmaster that is not the lmaster hands the record over with
/// REQ_DMASTER to the lmaster; its own copy then names the requester.
#[test]
fn the_dmaster_hands_the_record_to_the_lmaster() {
    let (mut d, dir) = daemon("dmaster", 2);
    let key = key_of(1);
    // Stored as this node's own copy: the store bumps the rsn to 11.
    let here = LtdbHeader {
        rsn: 10,
        dmaster: 2,
        ..Default::default()
    };
    seed(&mut d, &key, here, b"x");
    let hdr = node_hdr(Operation::ReqCall, 0, 2, 9);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 1)).encode(hdr);
    d.packet(Origin::Node(Pnn(1)), &pkt).unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert_eq!((h.destnode, h.srcnode, h.reqid), (Pnn(1), Pnn(2), 9));
    assert_eq!((r.dmaster, r.rsn, &r.data[..]), (Pnn(0), 11, &b"x"[..]));
    assert_eq!(r.record_flags, Some(REC_FLAG_MIGRATED_WITH_DATA));
    let (hd, _) = stored(&mut d, &key).unwrap();
    assert_eq!(
        (hd.rsn, hd.dmaster, hd.flags),
        (11, 0, REC_FLAG_MIGRATED_WITH_DATA)
    );
    assert_eq!(d.stats.max_hop_count, 1);
    assert_eq!(d.stats.hop_count_bucket[1], 1);
    assert_eq!(d.find_db(db_id()).unwrap().stats.hop_count_bucket[1], 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The lmaster that is also the dmaster of a record it never gave away
/// answers with REPLY_DMASTER at once (an empty record: rsn 1, no flags, as
/// in Debian's captured cluster traffic).
#[test]
fn the_lmaster_as_dmaster_replies_directly() {
    let (mut d, dir) = daemon("direct", 1);
    let key = key_of(1);
    let hdr = node_hdr(Operation::ReqCall, 0, 1, 3);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReplyDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid), (Origin::Node(Pnn(0)), 3));
    assert_eq!((r.rsn, r.record_flags, r.data.len()), (1, Some(0), 0));
    // The lmaster keeps the empty record naming the new dmaster.
    let (hd, _) = stored(&mut d, &key).unwrap();
    assert_eq!((hd.rsn, hd.dmaster), (1, 0));
    assert_eq!(d.stats.hop_count_bucket[0], 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A node that is neither lmaster nor dmaster sends the call to the
/// lmaster, one hop further; high hop counts only warn (no limit in 4.17).
#[test]
fn a_stale_node_redirects_to_the_lmaster_without_limit() {
    let (mut d, dir) = daemon("stale", 2);
    let key = key_of(1);
    for hops in [3, 96, 250] {
        let hdr = node_hdr(Operation::ReqCall, 0, 2, 4);
        let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, hops)).encode(hdr);
        d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
        let sent = settle(&mut d);
        let [(to, h, Packet::ReqCall(c))] = &sent[..] else {
            panic!("{sent:?}")
        };
        assert_eq!(
            (*to, h.srcnode, c.hopcount),
            (Origin::Node(Pnn(1)), Pnn(0), hops + 1)
        );
    }
    // Nothing was stored: the initial header names node 1.
    assert_eq!(stored(&mut d, &key), None);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two local clients asking at once for a record held elsewhere cause one
/// REQ_CALL; the second is answered after the first, locally.
#[test]
fn two_clients_cause_one_migration() {
    let (mut d, dir) = daemon("collapse", 0);
    let (c1, _s1) = connected(&mut d, &dir);
    let (c2, _s2) = connected(&mut d, &dir);
    let key = key_of(2);
    d.packet(c1, &client_call(&key, CALL_FETCH_FUNC, 5))
        .unwrap();
    d.packet(c2, &client_call(&key, CALL_FETCH_FUNC, 6))
        .unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(2)));
    let body = ReplyDmaster {
        db_id: DbId(db_id()),
        rsn: 5,
        key: key.clone(),
        data: b"v".to_vec(),
        record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
    };
    let hdr = node_hdr(Operation::ReplyDmaster, 2, 0, h.reqid);
    let pkt = Packet::ReplyDmaster(body).encode(hdr);
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    let sent = settle(&mut d);
    let replies: Vec<_> = sent
        .iter()
        .map(|(to, h, p)| match p {
            Packet::ReplyCall(r) => (*to, h.reqid, r.data.clone()),
            other => panic!("no second migration: {other:?}"),
        })
        .collect();
    assert_eq!(replies, [(c1, 5, b"v".to_vec()), (c2, 6, b"v".to_vec())]);
    // 5, +1 becoming dmaster, +1 for each of the two calls.
    assert_eq!(stored(&mut d, &key).unwrap().0.rsn, 8);
    assert!(d.calls.collapsed.is_empty());
    assert_eq!(d.stats.total_calls, 2);
    assert_eq!(d.stats.pending_calls, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// With FetchCollapse 0, each client's call goes out on its own.
#[test]
fn without_fetch_collapse_each_call_goes_out() {
    let (mut d, dir) = daemon("nocollapse", 0);
    d.state.tunables.fetch_collapse = 0;
    let key = key_of(2);
    d.packet(client(40), &client_call(&key, CALL_FETCH_FUNC, 5))
        .unwrap();
    d.packet(client(41), &client_call(&key, CALL_FETCH_FUNC, 6))
        .unwrap();
    let sent = settle(&mut d);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent
        .iter()
        .all(|(to, _, p)| *to == Origin::Node(Pnn(2)) && matches!(p, Packet::ReqCall(_))));
    assert_ne!(sent[0].1.reqid, sent[1].1.reqid);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Calls of local clients wait while recovery is active and go out when
/// it ends; calls already sent go out again after the thaw, with a new
/// reqid and the new generation, and a late answer of the old generation
/// is dropped.
#[test]
fn calls_wait_for_recovery_and_are_sent_again_after_it() {
    let (mut d, dir) = daemon("recovery", 0);
    let (c1, _s1) = connected(&mut d, &dir);
    let key = key_of(1);
    d.state.recmode = RECOVERY_ACTIVE;
    d.packet(c1, &client_call(&key, CALL_NULL_FUNC, 5)).unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(d.find_db(db_id()).unwrap().deferred.len(), 1);
    d.state.recmode = RECOVERY_NORMAL;
    d.reissue_held_calls();
    let sent = settle(&mut d);
    let [(to, first, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert!(d.find_db(db_id()).unwrap().deferred.is_empty());
    // Recovery: freeze, new generation, thaw.  A new call for the same
    // record waits for the freeze, then for the call in flight.
    d.db_mut(db_id()).unwrap().frozen = true;
    d.state.generation = Generation(GEN + 1);
    d.packet(c1, &client_call(&key, CALL_NULL_FUNC, 7)).unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(d.find_db(db_id()).unwrap().deferred.len(), 1);
    d.thaw(db_id());
    let sent = settle(&mut d);
    let [(to, again, Packet::ReqCall(c))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert_ne!(again.reqid, first.reqid);
    assert_eq!(again.generation, Generation(GEN + 1));
    assert_eq!(c.hopcount, 0);
    // The old generation's REPLY_DMASTER is dropped: nothing stored.
    let body = ReplyDmaster {
        db_id: DbId(db_id()),
        rsn: 5,
        key: key.clone(),
        data: b"old".to_vec(),
        record_flags: Some(0),
    };
    let old = node_hdr(Operation::ReplyDmaster, 1, 0, first.reqid);
    d.packet(
        Origin::Node(Pnn(1)),
        &Packet::ReplyDmaster(body.clone()).encode(old),
    )
    .unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(stored(&mut d, &key), None);
    // The new one completes the call, then the one that waited runs here.
    let new = Header {
        generation: Generation(GEN + 1),
        ..node_hdr(Operation::ReplyDmaster, 1, 0, again.reqid)
    };
    d.packet(
        Origin::Node(Pnn(1)),
        &Packet::ReplyDmaster(body).encode(new),
    )
    .unwrap();
    let sent = settle(&mut d);
    let answered: Vec<_> = sent
        .iter()
        .map(|(to, h, p)| match p {
            Packet::ReplyCall(r) => (*to, h.reqid, r.status),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(answered, [(c1, 5, 0), (c1, 7, 0)]);
    let (hd, v) = stored(&mut d, &key).unwrap();
    assert_eq!((hd.dmaster, hd.rsn, &v[..]), (0, 8, &b"old"[..]));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Node packets of another generation, for a frozen database or an unknown
/// one: dropped, or answered with REPLY_ERROR; a REPLY_ERROR for a pending
/// call answers its client with status -1.
#[test]
fn stale_and_unknown_node_calls() {
    let (mut d, dir) = daemon("errors", 1);
    let key = key_of(1);
    let mut hdr = node_hdr(Operation::ReqCall, 0, 1, 3);
    hdr.generation = Generation(GEN - 1);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(d.stats.node.req_call, 0, "dropped before it is counted");
    // Nor while this node is banned.
    let banned = ctdb_protocol::types::NODE_FLAGS_BANNED;
    d.state.node_flags[1] |= banned;
    let hdr = node_hdr(Operation::ReqCall, 0, 1, 3);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());
    d.state.node_flags[1] &= !banned;
    assert_eq!(d.stats.node.req_call, 0);

    // On a frozen database a node's call waits for the thaw, and is then
    // served (this lmaster hands its new record over at once).
    d.db_mut(db_id()).unwrap().frozen = true;
    let hdr = node_hdr(Operation::ReqCall, 0, 1, 3);
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());
    d.thaw(db_id());
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(to, h, Packet::ReplyDmaster(r))] if *to == Origin::Node(Pnn(0)) && h.reqid == 3 && r.rsn == 1),
        "{sent:?}"
    );
    // One held across a change of generation is dropped at the thaw.
    let key3 = b"another".to_vec();
    d.db_mut(db_id()).unwrap().frozen = true;
    let pkt = Packet::ReqCall(req_call(&key3, CALL_NULL_FUNC, 0)).encode(hdr);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    d.state.generation = Generation(GEN + 1);
    d.thaw(db_id());
    assert!(settle(&mut d).is_empty());
    d.state.generation = Generation(GEN);

    let mut c = req_call(&key, CALL_NULL_FUNC, 0);
    c.db_id = DbId(0x1234);
    d.packet(Origin::Node(Pnn(0)), &Packet::ReqCall(c).encode(hdr))
        .unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReplyError(e))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid, e.status), (Origin::Node(Pnn(0)), 3, -1));
    assert_eq!(
        e.msg,
        b"Unknown database in request. db_id==0x00001234\0".to_vec()
    );

    // Node 1's own client: a call that failed on node 2.
    let key2 = key_of(2);
    d.packet(client(40), &client_call(&key2, CALL_NULL_FUNC, 8))
        .unwrap();
    let sent = settle(&mut d);
    let [(_, out, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    let err = ReplyError {
        status: -1,
        msg: b"failed\0".to_vec(),
    };
    let h = node_hdr(Operation::ReplyError, 2, 1, out.reqid);
    d.packet(Origin::Node(Pnn(2)), &Packet::ReplyError(err).encode(h))
        .unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(to, h, Packet::ReplyCall(r))] if *to == client(40) && h.reqid == 8 && r.status == -1),
        "{sent:?}"
    );
    assert_eq!(d.calls.pending_count(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A REQ_CALL that comes back to the requester while it is the dmaster is
/// served here and answered through this node's own REPLY_CALL.
#[test]
fn a_call_redirected_back_to_its_requester_completes_there() {
    let (mut d, dir) = daemon("self", 0);
    let key = key_of(0);
    // This node is lmaster; its copy says node 2 has the record.
    let at_2 = LtdbHeader {
        rsn: 3,
        dmaster: 2,
        ..Default::default()
    };
    seed(&mut d, &key, at_2, b"y");
    d.packet(client(40), &client_call(&key, CALL_FETCH_FUNC, 5))
        .unwrap();
    let sent = settle(&mut d);
    let [(to, out, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(2)));
    // Meanwhile the record came back here (stored as dmaster).
    let here = LtdbHeader {
        rsn: 9,
        dmaster: 0,
        ..Default::default()
    };
    seed(&mut d, &key, here, b"y");
    // Node 2 no longer has it and redirects to the lmaster, this node.
    let hdr = node_hdr(Operation::ReqCall, 0, 0, out.reqid);
    let pkt = Packet::ReqCall(req_call(&key, CALL_FETCH_FUNC, 1)).encode(hdr);
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(to, h, Packet::ReplyCall(r))] if *to == client(40) && h.reqid == 5 && r.data == b"y"),
        "{sent:?}"
    );
    assert_eq!(d.stats.node.reply_call, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// With no vnn map to route over, every call runs here as before.
#[test]
fn without_a_vnn_map_calls_run_locally() {
    let (mut d, dir) = daemon("alone", 0);
    d.state.vnn_map = vec![Pnn(0)];
    let key = key_of(1);
    d.packet(client(40), &client_call(&key, CALL_NULL_FUNC, 5))
        .unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(to, _, Packet::ReplyCall(r))] if *to == client(40) && r.status == 0),
        "{sent:?}"
    );
    assert_eq!(stored(&mut d, &key).unwrap().0.dmaster, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Three daemons wired together in one process: packets for a node go to
/// that daemon's dispatch, as the node transport would deliver them.
struct Trio {
    nodes: Vec<Daemon>,
    dirs: Vec<PathBuf>,
}

impl Trio {
    fn new(tag: &str) -> Trio {
        let (nodes, dirs) = (0..3).map(|k| daemon(&format!("{tag}-{k}"), k)).unzip();
        Trio { nodes, dirs }
    }

    /// Runs every node's actions and database work, delivering node packets,
    /// until all is quiet; returns the packets sent to clients, by node.
    fn run(&mut self) -> Vec<(usize, Origin, Header, Packet)> {
        let mut to_clients = Vec::new();
        let mut outstanding = [0usize; 3];
        loop {
            let mut wire = Vec::new();
            for (k, d) in self.nodes.iter_mut().enumerate() {
                for a in d.outbox.take() {
                    match a {
                        Action::Send {
                            to: Origin::Node(p),
                            packet,
                        } => wire.push((k, p, packet)),
                        Action::Send { to, packet } => {
                            let (h, p) = Packet::decode(&packet).unwrap();
                            to_clients.push((k, to, h, p));
                        }
                        Action::ArmTimer { .. } => {}
                        Action::AnswerControl { reqid, reply } => d.answer_control(reqid, reply),
                        Action::Database(job) => {
                            outstanding[k] += 1;
                            d.submit_job(job);
                        }
                    }
                }
            }
            for (from, to, packet) in wire {
                assert_ne!(from as u32, to.0, "a node's packet to itself left it");
                let d = &mut self.nodes[to.0 as usize];
                d.packet(Origin::Node(Pnn(from as u32)), &packet).unwrap();
            }
            if self.nodes.iter().any(|d| !d.outbox.is_empty()) {
                continue;
            }
            let Some(k) = (0..3).find(|k| outstanding[*k] > 0) else {
                return to_clients;
            };
            let d = &mut self.nodes[k];
            let done = d.db_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            outstanding[k] -= 1;
            match done {
                Done::Op { tag, reply } => d.answer(Tag(tag), reply),
                Done::Opened { id, result } => d.opened(id, result),
                Done::Unhealthy { reason, .. } => panic!("{reason}"),
            }
        }
    }

    /// `ctdb readkey` on node `k`: the client's migration call, answered.
    fn fetch(&mut self, k: usize, key: &[u8]) {
        let c = client(50 + k);
        self.nodes[k]
            .packet(c, &client_call(key, CALL_NULL_FUNC, 9))
            .unwrap();
        let out = self.run();
        assert!(
            matches!(&out[..], [(n, to, h, Packet::ReplyCall(r))] if *n == k && *to == c && h.reqid == 9 && r.status == 0),
            "{out:?}"
        );
    }

    /// (dmaster, rsn, flags) of every node's copy of `key`.
    fn copies(&mut self, key: &[u8]) -> Vec<Option<(u32, u64, u32)>> {
        self.nodes
            .iter_mut()
            .map(|d| stored(d, key).map(|(h, _)| (h.dmaster, h.rsn, h.flags)))
            .collect()
    }
}

impl Drop for Trio {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What `ctdb writekey` does after its fetch: stores the value under the
/// chain lock with the header it read, in the node's file (another process,
/// through Debian's libtdb, as the tool would).
fn client_store(d: &mut Daemon, key: &[u8], value: &[u8]) {
    let (h, _) = stored(d, key).expect("the record after the fetch");
    let lib = [
        "/usr/lib/x86_64-linux-gnu/libtdb.so.1",
        "/usr/lib/aarch64-linux-gnu/libtdb.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Debian's libtdb.so.1 (scripts/deps.sh)");
    let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut rec = h.encode().to_vec();
    rec.extend_from_slice(value);
    let prog = format!(
        "import ctypes,sys\nlib=ctypes.CDLL('{lib}')\nlib.tdb_open.restype=ctypes.c_void_p\n\
         t=ctypes.c_void_p(lib.tdb_open(sys.argv[1].encode(),0,0,2,0))\nassert t\n\
         class D(ctypes.Structure): _fields_=[('p',ctypes.c_char_p),('n',ctypes.c_size_t)]\n\
         k=bytes.fromhex('{}'); v=bytes.fromhex('{}')\n\
         assert lib.tdb_chainlock(t,D(k,len(k)))==0\n\
         assert lib.tdb_store(t,D(k,len(k)),D(v,len(v)),1)==0\n\
         lib.tdb_chainunlock(t,D(k,len(k)))\n",
        hexs(key),
        hexs(&rec)
    );
    let path = d.find_db(db_id()).unwrap().path.clone();
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(prog)
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Debian's 3-node cluster, for `writekey` of key1 on node 0 and `readkey`
/// on nodes 1, 2, 0 and 1 in turn, shows these copies in `ctdb cattdb`
/// (compat-tests/ctdb/migration.sh compares the real clusters); three
/// daemons of ours wired in one process give the same.
#[test]
fn three_nodes_migrate_a_record_as_debians_cluster_does() {
    const MIG: u32 = REC_FLAG_MIGRATED_WITH_DATA;
    let mut t = Trio::new("trio");
    let key = b"key1".to_vec();
    assert_eq!(lmaster(&[Pnn(0), Pnn(1), Pnn(2)], &key), Some(Pnn(0)));
    t.fetch(0, &key);
    client_store(&mut t.nodes[0], &key, b"value1");
    assert_eq!(t.copies(&key), [Some((0, 2, 0)), None, None]);
    t.fetch(1, &key);
    assert_eq!(t.copies(&key), [Some((1, 2, MIG)), Some((1, 4, MIG)), None]);
    t.fetch(2, &key);
    assert_eq!(
        t.copies(&key),
        [Some((2, 4, MIG)), Some((2, 4, MIG)), Some((2, 6, MIG))]
    );
    t.fetch(0, &key);
    assert_eq!(
        t.copies(&key),
        [Some((0, 8, MIG)), Some((2, 4, MIG)), Some((0, 6, MIG))]
    );
    t.fetch(1, &key);
    assert_eq!(
        t.copies(&key),
        [Some((1, 8, MIG)), Some((1, 10, MIG)), Some((0, 6, MIG))]
    );
    assert_eq!(stored(&mut t.nodes[1], &key).unwrap().1, b"value1");
    // Node 1 served one call at hop 0 (step 4) and none redirected; the
    // last fetch went 1 -> 2 (stale) -> 0, so node 0 served it at hop 1.
    assert_eq!(t.nodes[0].stats.hop_count_bucket[1], 1);
    let hot = &t.nodes[1].find_db(db_id()).unwrap().stats.hot_keys;
    assert_eq!(hot, &[(2, key.clone())]);
}

/// A vacuum run with other nodes hands an empty record another node is
/// lmaster of to that lmaster (VACUUM_FETCH) and keeps it here: deleting
/// it would leave the lmaster pointing at this node.
#[test]
fn vacuuming_hands_records_of_other_lmasters_to_them() {
    let (mut d, dir) = daemon("vacuum", 2);
    let key = key_of(1);
    let here = LtdbHeader {
        rsn: 4,
        dmaster: 2,
        ..Default::default()
    };
    seed(&mut d, &key, here, b"");
    let mut data = db_id().to_le_bytes().to_vec();
    data.push(1);
    let body = ReqControl {
        opcode: ControlOpcode::DbVacuum,
        srvid: Srvid(0),
        client_id: 0,
        flags: 0,
        data,
    };
    let h = Header::new(Operation::ReqControl, Pnn::CURRENT_NODE, Pnn(2), 3);
    let pkt = Packet::ReqControl(body.clone()).encode(h);
    d.packet(client(40), &pkt).unwrap();
    let sent = settle(&mut d);
    let fetch: Vec<_> = sent
        .iter()
        .filter_map(|(_, h, p)| match p {
            Packet::ReqControl(c) if c.opcode == ControlOpcode::VacuumFetch => {
                Some((h.destnode, c))
            }
            _ => None,
        })
        .collect();
    assert_eq!(fetch.len(), 1, "{sent:?}");
    assert_eq!(fetch[0].0, Pnn(1));
    let buf = <ctdb_protocol::ltdb::RecBuffer as ctdb_protocol::Layout>::decode(&fetch[0].1.data)
        .unwrap();
    assert_eq!(buf.records.len(), 1);
    assert_eq!(buf.records[0].key, key);
    assert!(
        sent.iter()
            .any(|(_, _, p)| matches!(p, Packet::ReplyControl(r) if r.status == 0)),
        "{sent:?}"
    );
    assert_eq!(stored(&mut d, &key).unwrap().0.dmaster, 2);
    // Alone, the same full run deletes it.
    d.state.vnn_map = vec![Pnn(2)];
    d.packet(client(40), &pkt).unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(_, _, Packet::ReplyControl(r))] if r.status == 0),
        "{sent:?}"
    );
    assert_eq!(stored(&mut d, &key), None);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Calls waiting behind a fetch go out on their own when the fetch has not
/// ended after its timeout (Samba's 30 s deferred-fetch timeout).
#[test]
fn collapsed_calls_go_out_when_the_fetch_times_out() {
    let (mut d, dir) = daemon("collapse-timeout", 0);
    let (c1, _s1) = connected(&mut d, &dir);
    let (c2, _s2) = connected(&mut d, &dir);
    let key = key_of(1);
    d.packet(c1, &client_call(&key, CALL_NULL_FUNC, 5)).unwrap();
    d.packet(c2, &client_call(&key, CALL_NULL_FUNC, 6)).unwrap();
    let sent = settle(&mut d);
    let [(_, first, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    let timeout = d.calls.collapsed[&(db_id(), key.clone())].timeout;
    d.expire(timeout);
    let sent = settle(&mut d);
    let [(to, second, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert_ne!(second.reqid, first.reqid);
    assert_eq!(d.calls.pending_count(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A REQ_DMASTER that reaches a node which is not the key's lmaster is
/// dropped (Samba's daemon aborts on it).
#[test]
fn a_dmaster_request_to_a_non_lmaster_is_dropped() {
    let (mut d, dir) = daemon("nonlmaster", 2);
    let key = key_of(1);
    let body = ReqDmaster {
        db_id: DbId(db_id()),
        rsn: 3,
        dmaster: Pnn(0),
        key: key.clone(),
        data: b"x".to_vec(),
        record_flags: Some(0),
    };
    let hdr = node_hdr(Operation::ReqDmaster, 0, 2, 4);
    d.packet(Origin::Node(Pnn(0)), &Packet::ReqDmaster(body).encode(hdr))
        .unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(stored(&mut d, &key), None);
    assert_eq!(d.state.recmode, RECOVERY_NORMAL);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A record step whose chain a client process holds waits for it (parked
/// on the worker like a call) and completes once the client lets go.
#[test]
fn a_migration_waits_for_a_client_holding_the_chain() {
    let (mut d, dir) = daemon("chainwait", 0);
    let (c1, _s1) = connected(&mut d, &dir);
    let key = key_of(1);
    d.packet(c1, &client_call(&key, CALL_FETCH_FUNC, 5))
        .unwrap();
    let sent = settle(&mut d);
    let [(_, out, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    let lib = [
        "/usr/lib/x86_64-linux-gnu/libtdb.so.1",
        "/usr/lib/aarch64-linux-gnu/libtdb.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Debian's libtdb.so.1 (scripts/deps.sh)");
    let hexkey: String = key.iter().map(|x| format!("{x:02x}")).collect();
    let prog = format!(
        "import ctypes,sys,time\nlib=ctypes.CDLL('{lib}')\nlib.tdb_open.restype=ctypes.c_void_p\n\
         t=ctypes.c_void_p(lib.tdb_open(sys.argv[1].encode(),0,0,2,0))\nassert t\n\
         class D(ctypes.Structure): _fields_=[('p',ctypes.c_char_p),('n',ctypes.c_size_t)]\n\
         k=bytes.fromhex('{hexkey}')\nassert lib.tdb_chainlock(t,D(k,len(k)))==0\n\
         print('locked',flush=True)\ntime.sleep(0.5)\nlib.tdb_chainunlock(t,D(k,len(k)))\n"
    );
    let path = d.find_db(db_id()).unwrap().path.clone();
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(prog)
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let body = ReplyDmaster {
        db_id: DbId(db_id()),
        rsn: 5,
        key: key.clone(),
        data: b"w".to_vec(),
        record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
    };
    let hdr = node_hdr(Operation::ReplyDmaster, 1, 0, out.reqid);
    let started = Instant::now();
    d.packet(
        Origin::Node(Pnn(1)),
        &Packet::ReplyDmaster(body).encode(hdr),
    )
    .unwrap();
    let sent = settle(&mut d);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "did not wait"
    );
    assert!(
        matches!(&sent[..], [(to, h, Packet::ReplyCall(r))] if *to == c1 && h.reqid == 5 && r.data == b"w"),
        "{sent:?}"
    );
    assert!(child.wait().unwrap().success());
    assert_eq!(stored(&mut d, &key).unwrap().0.rsn, 7);
    assert!(d.db_tx.chain_waits(db_id()) >= 1);
    std::fs::remove_dir_all(dir).unwrap();
}
