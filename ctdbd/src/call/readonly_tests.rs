//! Read-only delegations and sticky records at the dispatch level (see
//! tests.rs for the harness): the packets and controls a dmaster sends,
//! and the record headers it stores, as Samba's ctdb_call.c does.

use super::tests::*;
use super::*;
use crate::db::{CALL_FETCH_WITH_HEADER_FUNC, CALL_NULL_FUNC};
use crate::ltdb::{Header as LtdbHeader, REC_FLAG_MIGRATED_WITH_DATA};
use ctdb_protocol::ltdb::{
    RecBuffer, REC_RO_HAVE_DELEGATIONS, REC_RO_HAVE_READONLY, REC_RO_REVOKING_READONLY,
};
use ctdb_protocol::packet::{ReplyControl, CALL_FLAG_WANT_READONLY};
use ctdb_protocol::{ControlOpcode, Layout};

/// Sets a database flag through a client's control (SET_DB_READONLY or
/// SET_DB_STICKY) and checks it was accepted.
fn set_db_flag(d: &mut Daemon, op: ControlOpcode) {
    let pkt = crate::dispatch::tests::control(op, 0, 3, db_id().to_le_bytes().to_vec());
    d.packet(client(90), &pkt).unwrap();
    let sent = settle(d);
    assert!(
        matches!(&sent[..], [(_, _, Packet::ReplyControl(r))] if r.status == 0),
        "{sent:?}"
    );
}

/// A REQ_CALL from node `src` to node `dest`.
fn node_call_pkt(src: u32, dest: u32, reqid: u32, key: &[u8], flags: u32, callid: u32) -> Vec<u8> {
    let c = ReqCall {
        flags,
        ..req_call(key, callid, 0)
    };
    Packet::ReqCall(c).encode(node_hdr(Operation::ReqCall, src, dest, reqid))
}

/// Node `src` asks node 1 for a read-only copy: the REPLY_CALL's data.
fn readonly_fetch(d: &mut Daemon, src: u32, reqid: u32, key: &[u8]) -> Vec<u8> {
    let flags = CALL_FLAG_IMMEDIATE_MIGRATION | CALL_FLAG_WANT_READONLY;
    let pkt = node_call_pkt(src, 1, reqid, key, flags, CALL_FETCH_WITH_HEADER_FUNC);
    d.packet(Origin::Node(Pnn(src)), &pkt).unwrap();
    let sent = settle(d);
    let [(to, h, Packet::ReplyCall(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid, r.status), (Origin::Node(Pnn(src)), reqid, 0));
    r.data.clone()
}

/// Node 1 of a read-only database, holding a record (rsn 10 as seeded) it
/// is dmaster and lmaster of: the daemon, its directory and the key.
fn delegating_node(tag: &str) -> (Daemon, std::path::PathBuf, Vec<u8>) {
    let (mut d, dir) = daemon(tag, 1);
    set_db_flag(&mut d, ControlOpcode::SetDbReadonly);
    let key = key_of(1);
    let mine = LtdbHeader {
        rsn: 10,
        dmaster: 1,
        flags: REC_FLAG_MIGRATED_WITH_DATA,
        ..Default::default()
    };
    seed(&mut d, &key, mine, b"v");
    (d, dir, key)
}

/// Node 1, dmaster and lmaster of a record, delegates read-only copies to
/// nodes 2 and 0 (the first one adds 3 to the rsn, the copies carry the
/// rsn less 2 and HAVE_READONLY); node 0's write then sends UPDATE_RECORD
/// to both, waits for their answers, and only then migrates the record;
/// a read-only call that came meanwhile waits a second longer.
#[test]
fn a_write_revokes_every_delegation_before_the_record_migrates() {
    let (mut d, dir, key) = delegating_node("ro-revoke");
    // Stored as dmaster, the seed's rsn is bumped once.
    assert_eq!(stored(&mut d, &key).unwrap().0.rsn, 11);

    let copy = readonly_fetch(&mut d, 2, 7, &key);
    let h = LtdbHeader::decode(&copy).unwrap();
    let ro = REC_FLAG_MIGRATED_WITH_DATA | REC_RO_HAVE_READONLY;
    assert_eq!((h.rsn, h.dmaster, h.flags), (12, 1, ro));
    assert_eq!(&copy[crate::ltdb::HEADER_LEN..], b"v");
    let delegated = REC_FLAG_MIGRATED_WITH_DATA | REC_RO_HAVE_DELEGATIONS;
    let (s, _) = stored(&mut d, &key).unwrap();
    assert_eq!((s.rsn, s.dmaster, s.flags), (14, 1, delegated));
    // A second delegation keeps the rsn.
    let copy = readonly_fetch(&mut d, 0, 8, &key);
    assert_eq!(LtdbHeader::decode(&copy).unwrap().rsn, 12);
    assert_eq!(stored(&mut d, &key).unwrap().0.rsn, 14);
    assert_eq!(d.stats.total_ro_delegations, 2);
    assert_eq!(d.find_db(db_id()).unwrap().stats.ro_delegations, 2);

    // Node 0 wants to write: UPDATE_RECORD to both delegated nodes first.
    let pkt = node_call_pkt(0, 1, 9, &key, CALL_FLAG_IMMEDIATE_MIGRATION, CALL_NULL_FUNC);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    let sent = settle(&mut d);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let mut revoked = Vec::new();
    for (to, h, p) in &sent {
        let Packet::ReqControl(c) = p else {
            panic!("{sent:?}")
        };
        assert_eq!(c.opcode, ControlOpcode::UpdateRecord);
        let buf = RecBuffer::decode(&c.data).unwrap();
        let (rh, value) = buf.records[0].header().unwrap();
        assert_eq!(
            (rh.rsn, rh.dmaster.0, rh.flags),
            (13, 1, REC_FLAG_MIGRATED_WITH_DATA)
        );
        assert_eq!((&buf.records[0].key, value), (&key, &b"v"[..]));
        revoked.push((*to, h.reqid));
    }
    revoked.sort_by_key(|(to, _)| format!("{to:?}"));
    assert_eq!(
        revoked.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [Origin::Node(Pnn(0)), Origin::Node(Pnn(2))]
    );
    let flags = stored(&mut d, &key).unwrap().0.flags;
    assert_eq!(flags, delegated | REC_RO_REVOKING_READONLY);

    // Node 2 asks for a copy again during the revoke: it waits.
    let flags = CALL_FLAG_IMMEDIATE_MIGRATION | CALL_FLAG_WANT_READONLY;
    let pkt = node_call_pkt(2, 1, 10, &key, flags, CALL_FETCH_WITH_HEADER_FUNC);
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());

    // The first answer alone changes nothing; the second ends the revoke.
    let answer = |d: &mut Daemon, (to, reqid): (Origin, u32)| {
        let Origin::Node(pnn) = to else { panic!() };
        let h = node_hdr(Operation::ReplyControl, pnn.0, 1, reqid);
        let r = ReplyControl {
            status: 0,
            data: Vec::new(),
            errmsg: None,
        };
        d.packet(to, &Packet::ReplyControl(r).encode(h)).unwrap();
        settle_timers(d)
    };
    assert!(answer(&mut d, revoked[0]).0.is_empty());
    let (sent, timers) = answer(&mut d, revoked[1]);
    let [(to, h, Packet::ReplyDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    // rsn 14, +1 for REVOKE_COMPLETE, +1 when the writer's call clears it.
    assert_eq!((*to, h.reqid, r.rsn), (Origin::Node(Pnn(0)), 9, 16));
    assert_eq!(r.record_flags, Some(REC_FLAG_MIGRATED_WITH_DATA));
    let (s, _) = stored(&mut d, &key).unwrap();
    assert_eq!(
        (s.rsn, s.dmaster, s.flags),
        (16, 0, REC_FLAG_MIGRATED_WITH_DATA)
    );
    assert_eq!(d.stats.total_ro_revokes, 1);
    assert_eq!(d.find_db(db_id()).unwrap().stats.ro_revokes, 1);

    // The reader's call runs after its grace: the record is node 0's now.
    for t in timers {
        d.expire(t);
    }
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqCall(c))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (*to, h.srcnode, c.hopcount),
        (Origin::Node(Pnn(0)), Pnn(2), 1)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A local client's read-only FETCH goes out as FETCH_WITH_HEADER with
/// WANT_READONLY; the copy in the REPLY_CALL is stored with HAVE_READONLY
/// (dmaster still the other node) and the client gets the value only.
/// Without the read-only flag on the database the flag is dropped.
#[test]
fn a_client_read_only_fetch_stores_the_copy() {
    let (mut d, dir) = daemon("ro-client", 0);
    let key = key_of(1);
    let call = |reqid| {
        let c = ReqCall {
            flags: CALL_FLAG_IMMEDIATE_MIGRATION | CALL_FLAG_WANT_READONLY,
            ..req_call(&key, CALL_FETCH_FUNC, 0)
        };
        let h = Header::new(Operation::ReqCall, Pnn::CURRENT_NODE, Pnn(0), reqid);
        Packet::ReqCall(c).encode(h)
    };
    d.packet(client(40), &call(5)).unwrap();
    let sent = settle(&mut d);
    let [(_, _, Packet::ReqCall(c))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (c.flags, c.callid),
        (CALL_FLAG_IMMEDIATE_MIGRATION, CALL_FETCH_FUNC)
    );
    d.calls.pending.clear();
    d.calls.collapsed.clear();

    set_db_flag(&mut d, ControlOpcode::SetDbReadonly);
    d.packet(client(40), &call(6)).unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqCall(c))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, Origin::Node(Pnn(1)));
    assert_eq!(
        c.flags,
        CALL_FLAG_IMMEDIATE_MIGRATION | CALL_FLAG_WANT_READONLY
    );
    assert_eq!(c.callid, CALL_FETCH_WITH_HEADER_FUNC);
    let copy = LtdbHeader {
        rsn: 11,
        dmaster: 1,
        flags: REC_FLAG_MIGRATED_WITH_DATA | REC_RO_HAVE_READONLY,
        ..Default::default()
    };
    let mut data = copy.encode().to_vec();
    data.extend_from_slice(b"v");
    let reply = ReplyCall { status: 0, data };
    let rh = node_hdr(Operation::ReplyCall, 1, 0, h.reqid);
    d.packet(Origin::Node(Pnn(1)), &Packet::ReplyCall(reply).encode(rh))
        .unwrap();
    let sent = settle(&mut d);
    let [(to, h, Packet::ReplyCall(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid, &r.data[..]), (client(40), 6, &b"v"[..]));
    let (s, v) = stored(&mut d, &key).unwrap();
    assert_eq!(
        (s.rsn, s.dmaster, s.flags, &v[..]),
        (11, 1, copy.flags, &b"v"[..])
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// On a sticky database, a record served for a call of HopcountMakeSticky
/// hops becomes sticky; when it comes back to this node it is pinned down
/// for StickyPindown: node calls for it wait until the pin ends.
#[test]
fn a_sticky_record_is_pinned_when_it_returns() {
    let (mut d, dir) = daemon("sticky", 1);
    set_db_flag(&mut d, ControlOpcode::SetDbSticky);
    d.state.tunables.hopcount_make_sticky = 1;
    let key = key_of(0);
    let mine = LtdbHeader {
        rsn: 5,
        dmaster: 1,
        flags: REC_FLAG_MIGRATED_WITH_DATA,
        ..Default::default()
    };
    seed(&mut d, &key, mine, b"v");
    // Hop 0 does not make it sticky; the record goes to node 2.
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(node_hdr(
        Operation::ReqCall,
        2,
        1,
        3,
    ));
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    assert!(matches!(
        &settle(&mut d)[..],
        [(_, _, Packet::ReqDmaster(_))]
    ));
    assert_eq!(d.sticky_state(db_id(), &key), None);
    seed(&mut d, &key, mine, b"v");
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 1)).encode(node_hdr(
        Operation::ReqCall,
        2,
        1,
        4,
    ));
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    assert!(matches!(
        &settle(&mut d)[..],
        [(_, _, Packet::ReqDmaster(_))]
    ));
    assert_eq!(d.sticky_state(db_id(), &key), Some((None, 0)));

    // The record comes back (REPLY_DMASTER from the lmaster): pinned.
    d.packet(client(40), &client_call(&key, CALL_FETCH_FUNC, 6))
        .unwrap();
    let sent = settle(&mut d);
    let [(_, h, Packet::ReqCall(_))] = &sent[..] else {
        panic!("{sent:?}")
    };
    let body = ReplyDmaster {
        db_id: DbId(db_id()),
        rsn: 9,
        key: key.clone(),
        data: b"v".to_vec(),
        record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
    };
    let rh = node_hdr(Operation::ReplyDmaster, 0, 1, h.reqid);
    d.packet(Origin::Node(Pnn(0)), &Packet::ReplyDmaster(body).encode(rh))
        .unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(_, _, Packet::ReplyCall(_))]),
        "{sent:?}"
    );
    let Some((Some(pin), 0)) = d.sticky_state(db_id(), &key) else {
        panic!("not pinned: {:?}", d.sticky_state(db_id(), &key))
    };

    // Node 2's call waits for the pin's end, then takes the record.
    let pkt = Packet::ReqCall(req_call(&key, CALL_NULL_FUNC, 0)).encode(node_hdr(
        Operation::ReqCall,
        2,
        1,
        5,
    ));
    d.packet(Origin::Node(Pnn(2)), &pkt).unwrap();
    assert!(settle(&mut d).is_empty());
    assert_eq!(d.sticky_state(db_id(), &key), Some((Some(pin), 1)));
    d.expire(pin);
    let sent = settle(&mut d);
    let [(to, h, Packet::ReqDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid, r.dmaster), (Origin::Node(Pnn(0)), 5, Pnn(2)));
    assert_eq!(d.sticky_state(db_id(), &key), Some((None, 0)));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The dmaster's own client writes a record delegated to node 2: the revoke
/// runs first; a node that refuses the UPDATE_RECORD undoes it, and the
/// client's call, run again after the grace, revokes again; once node 2
/// answers, the call runs here and the client gets its answer.
#[test]
fn a_local_write_revokes_and_a_refused_revoke_is_tried_again() {
    let (mut d, dir) = daemon("ro-local", 1);
    set_db_flag(&mut d, ControlOpcode::SetDbReadonly);
    let (c, _s) = connected(&mut d, &dir);
    let key = key_of(1);
    let mine = LtdbHeader {
        rsn: 10,
        dmaster: 1,
        flags: REC_FLAG_MIGRATED_WITH_DATA,
        ..Default::default()
    };
    seed(&mut d, &key, mine, b"v");
    readonly_fetch(&mut d, 2, 7, &key);
    let update_to_2 = |sent: &Sent| -> u32 {
        let [(to, h, Packet::ReqControl(r))] = &sent[..] else {
            panic!("{sent:?}")
        };
        assert_eq!(
            (*to, r.opcode),
            (Origin::Node(Pnn(2)), ControlOpcode::UpdateRecord)
        );
        h.reqid
    };
    let answer = |d: &mut Daemon, reqid: u32, status: i32| {
        let h = node_hdr(Operation::ReplyControl, 2, 1, reqid);
        let r = ReplyControl {
            status,
            data: Vec::new(),
            errmsg: None,
        };
        d.packet(Origin::Node(Pnn(2)), &Packet::ReplyControl(r).encode(h))
            .unwrap();
        settle_timers(d)
    };
    d.packet(c, &client_call(&key, CALL_FETCH_FUNC, 5)).unwrap();
    let reqid = update_to_2(&settle(&mut d));
    let (sent, timers) = answer(&mut d, reqid, -1);
    assert!(sent.is_empty(), "{sent:?}");
    let (s, _) = stored(&mut d, &key).unwrap();
    assert_eq!(
        s.flags,
        REC_FLAG_MIGRATED_WITH_DATA | REC_RO_HAVE_DELEGATIONS
    );
    assert_eq!(d.stats.total_ro_revokes, 0);
    for t in timers {
        d.expire(t);
    }
    let reqid = update_to_2(&settle(&mut d));
    let (sent, _) = answer(&mut d, reqid, 0);
    let [(to, h, Packet::ReplyCall(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!((*to, h.reqid, &r.data[..]), (c, 5, &b"v"[..]));
    let (s, _) = stored(&mut d, &key).unwrap();
    assert_eq!((s.dmaster, s.flags), (1, REC_FLAG_MIGRATED_WITH_DATA));
    assert_eq!(d.stats.total_ro_revokes, 1);
    assert_eq!(d.stats.pending_calls, 0);
    // The call, run three times (two revokes), counts as Samba's does.
    assert_eq!(d.stats.total_calls, 3);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A recovery during a revoke: the pushed record has no read-only flags,
/// DB_PUSH_CONFIRM wipes the tracking database and drops the revoke; the
/// write that waited runs at once and migrates the record.
#[test]
fn a_recovery_push_drops_the_revoke_and_the_writer_goes_on() {
    let (mut d, dir, key) = delegating_node("ro-recovery");
    readonly_fetch(&mut d, 2, 7, &key);
    let pkt = node_call_pkt(0, 1, 9, &key, CALL_FLAG_IMMEDIATE_MIGRATION, CALL_NULL_FUNC);
    d.packet(Origin::Node(Pnn(0)), &pkt).unwrap();
    let sent = settle(&mut d);
    assert!(
        matches!(&sent[..], [(_, _, Packet::ReqControl(c))] if c.opcode == ControlOpcode::UpdateRecord),
        "{sent:?}"
    );
    // The recovery's push stores the record without read-only flags (as
    // flagged here: PushStore clears them), then DB_PUSH_CONFIRM.
    let flagged = LtdbHeader {
        rsn: 10,
        dmaster: 1,
        flags: REC_FLAG_MIGRATED_WITH_DATA | REC_RO_HAVE_DELEGATIONS | REC_RO_REVOKING_READONLY,
        ..Default::default()
    };
    seed(&mut d, &key, flagged, b"v");
    d.submit_untracked(db_id(), Op::WipeTracking);
    d.drop_revokes(db_id());
    let sent = settle(&mut d);
    let [(to, h, Packet::ReplyDmaster(r))] = &sent[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (*to, h.reqid, &r.data[..]),
        (Origin::Node(Pnn(0)), 9, &b"v"[..])
    );
    assert_eq!(d.stats.total_ro_revokes, 0);
    std::fs::remove_dir_all(dir).unwrap();
}
