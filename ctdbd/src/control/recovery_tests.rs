//! Dispatch-level tests of the controls a recovery run and the recovery
//! daemon send (recmode, vnnmap, flags, DB_PULL, the recovery transaction,
//! deferred attaches), with no sockets: packets go to `Daemon::packet`,
//! queued actions are read back, database work runs on real workers.

use crate::actions::Action;
use crate::daemon::Daemon;
use crate::dispatch::tests::{control, daemon, replies};
use crate::transport::{ClientId, Origin};
use ctdb_protocol::ltdb::{LtdbHeader, RecBuffer, RecData};
use ctdb_protocol::packet::{ReplyControl, ReqControl, ReqMessage, CONTROL_FLAG_ATTACH_RECOVERY};
use ctdb_protocol::types::{
    NodeFlagChange, NodeMap, PullDbExt, RunState, TransDb, VnnMap, NODE_FLAGS_BANNED,
    NODE_FLAGS_DISCONNECTED, NODE_FLAGS_STOPPED, NODE_FLAGS_UNHEALTHY, RECOVERY_ACTIVE,
    RECOVERY_NORMAL,
};
use ctdb_protocol::{
    ControlOpcode as Op, DbId, Generation, Header, Layout, Operation, Packet, Pnn, Srvid,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NODE1: Origin = Origin::Node(Pnn(1));

/// Sends one control and returns its immediate reply (None: no reply yet).
fn ask(d: &mut Daemon, from: Origin, op: Op, data: Vec<u8>) -> Option<ReplyControl> {
    let src = match from {
        Origin::Node(p) => p.0,
        Origin::Client(_) => 0,
    };
    d.packet(from, &control(op, src, 1, data)).unwrap();
    replies(d).into_iter().next().map(|(_, _, r)| r)
}

/// A control's status, asserting it answered at once.
fn status(d: &mut Daemon, from: Origin, op: Op, data: Vec<u8>) -> i32 {
    ask(d, from, op, data)
        .unwrap_or_else(|| panic!("{op:?}: no reply"))
        .status
}

/// Everything the daemon sends while the database side works, until
/// `done` says enough (or 10 s pass, which fails the test).
fn run_until(
    d: &mut Daemon,
    done: impl Fn(&[(Origin, Vec<u8>)]) -> bool,
) -> Vec<(Origin, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = Vec::new();
    loop {
        for a in d.outbox.take() {
            match a {
                Action::Send { to, packet } => sent.push((to, packet)),
                Action::ArmTimer { at, event } => d.timers.arm(at, event),
                Action::Database(job) => d.submit_job(job),
                Action::AnswerControl { reqid, reply } => d.answer_control(reqid, reply),
            }
        }
        if done(&sent) {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; sent {}",
            sent.len()
        );
        std::thread::sleep(Duration::from_millis(2));
        d.drain_db_replies();
        d.pump_pulls();
    }
}

/// The control replies among sent packets.
fn control_replies(sent: &[(Origin, Vec<u8>)]) -> Vec<(Origin, ReplyControl)> {
    sent.iter()
        .filter_map(|(to, p)| match Packet::decode(p) {
            Ok((_, Packet::ReplyControl(r))) => Some((*to, r)),
            _ => None,
        })
        .collect()
}

/// Sends a control whose answer comes from the database side and waits
/// for it.
fn ask_db(d: &mut Daemon, from: Origin, op: Op, data: Vec<u8>) -> ReplyControl {
    let src = match from {
        Origin::Node(p) => p.0,
        Origin::Client(_) => 0,
    };
    d.packet(from, &control(op, src, 1, data)).unwrap();
    let sent = run_until(d, |s| !control_replies(s).is_empty());
    control_replies(&sent).remove(0).1
}

/// Attaches a volatile database from node 1 (no client rules, no
/// announcement) and returns its id.
fn attach(d: &mut Daemon, name: &str) -> u32 {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    let r = ask_db(d, NODE1, Op::DbAttach, n);
    assert_eq!(r.status, 0);
    u32::from_le_bytes(r.data[..4].try_into().unwrap())
}

fn transdb(db: u32, tid: u32) -> Vec<u8> {
    TransDb {
        db_id: DbId(db),
        tid,
    }
    .to_bytes()
}

fn pulldb(db: u32, srvid: u64) -> Vec<u8> {
    PullDbExt {
        db_id: DbId(db),
        lmaster: Pnn(0xFFFF_FFFF),
        srvid: Srvid(srvid),
    }
    .to_bytes()
}

fn vnnmap(generation: u32, map: &[u32]) -> Vec<u8> {
    VnnMap {
        generation: Generation(generation),
        map: map.iter().map(|p| Pnn(*p)).collect(),
    }
    .to_bytes()
}

/// A record with an ltdb header: key, rsn, dmaster, value.
fn record(key: &str, rsn: u64, dmaster: u32, value: &[u8]) -> RecData {
    let h = LtdbHeader {
        rsn,
        dmaster: Pnn(dmaster),
        ..Default::default()
    };
    RecData::with_header(0, key.as_bytes(), &h, value)
}

/// A REQ_MESSAGE from node 1 to srvid on this node.
fn message_from_node1(srvid: u64, data: Vec<u8>) -> Vec<u8> {
    let h = Header::new(Operation::ReqMessage, Pnn(0), Pnn(1), 0);
    Packet::ReqMessage(ReqMessage {
        srvid: Srvid(srvid),
        data,
    })
    .encode(h)
}

/// Freezes db `id`, starts a recovery transaction `tid` and pushes `recs`
/// into it from node 1; returns DB_PUSH_CONFIRM's count.
fn push(d: &mut Daemon, id: u32, tid: u32, recs: Vec<RecData>) -> u32 {
    assert_eq!(status(d, NODE1, Op::DbFreeze, id.to_le_bytes().to_vec()), 0);
    assert_eq!(
        ask_db(d, NODE1, Op::DbTransactionStart, transdb(id, tid)).status,
        0
    );
    assert_eq!(
        ask_db(d, NODE1, Op::WipeDatabase, transdb(id, tid)).status,
        0
    );
    let srvid = 0xF00D;
    assert_eq!(status(d, NODE1, Op::DbPushStart, pulldb(id, srvid)), 0);
    let buf = RecBuffer {
        db_id: DbId(id),
        records: recs,
    };
    d.packet(NODE1, &message_from_node1(srvid, buf.to_bytes()))
        .unwrap();
    let r = ask_db(d, NODE1, Op::DbPushConfirm, id.to_le_bytes().to_vec());
    assert_eq!(r.status, 0);
    u32::from_le_bytes(r.data[..4].try_into().unwrap())
}

/// The record buffers of the REQ_MESSAGEs sent to `srvid`, with where
/// they went.
fn pulled(sent: &[(Origin, Vec<u8>)], srvid: u64) -> Vec<(Origin, Header, RecBuffer)> {
    sent.iter()
        .filter_map(|(to, p)| match Packet::decode(p) {
            Ok((h, Packet::ReqMessage(m))) if m.srvid.0 == srvid => {
                Some((*to, h, RecBuffer::decode(&m.data).unwrap()))
            }
            _ => None,
        })
        .collect()
}

fn cleanup(dir: PathBuf) {
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recmode_and_vnnmap_follow_the_recovery() {
    let (mut d, dir) = daemon("recmode");
    assert_eq!(status(&mut d, NODE1, Op::GetRecmode, vec![]), 0);
    // The vnn map is only set in recovery.
    assert_eq!(
        status(&mut d, NODE1, Op::SetVnnMap, vnnmap(1234, &[1, 0])),
        -1
    );
    assert_eq!(d.state.generation, Generation(77));
    // SET_RECMODE wants exactly a u32.
    assert_eq!(status(&mut d, NODE1, Op::SetRecmode, vec![1, 0]), -1);
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::GetRecmode, vec![]),
        RECOVERY_ACTIVE as i32
    );
    assert!(d.in_recovery());
    // Setting the same mode again is fine.
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::SetVnnMap, vnnmap(1234, &[1, 0])),
        0
    );
    let r = ask(&mut d, NODE1, Op::GetVnnMap, vec![]).unwrap();
    assert_eq!(r.status, 0);
    let map = VnnMap::decode(&r.data).unwrap();
    assert_eq!(map.generation, Generation(1234));
    assert_eq!(map.map, vec![Pnn(1), Pnn(0)]);
    // Packets this node sends now carry the new generation.
    d.packet(NODE1, &control(Op::Ping, 1, 9, vec![])).unwrap();
    let pkt = d.outbox.take();
    let Action::Send { packet, .. } = &pkt[0] else {
        panic!("no reply")
    };
    assert_eq!(
        Header::decode(&packet[..32]).unwrap().generation,
        Generation(1234)
    );
    // A truncated map is refused and changes nothing.
    assert_eq!(
        status(&mut d, NODE1, Op::SetVnnMap, vnnmap(5, &[0])[..10].to_vec()),
        -1
    );
    assert_eq!(d.state.generation, Generation(1234));
    // GETVNNMAP wants no payload.
    assert_eq!(status(&mut d, NODE1, Op::GetVnnMap, vec![0; 4]), -1);
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()),
        0
    );
    assert!(!d.in_recovery());
    cleanup(dir);
}

#[test]
fn normal_mode_waits_for_every_database_to_carry_the_generation() {
    let (mut d, dir) = daemon("recgen");
    let id = attach(&mut d, "gen.tdb");
    assert_eq!(d.find_db(id).unwrap().generation, Generation(77));
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::SetVnnMap, vnnmap(500, &[0, 1])),
        0
    );
    // gen.tdb still carries 77: NORMAL is refused.
    let r = ask(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()).unwrap();
    assert_eq!(r.status, -1);
    assert!(d.in_recovery());
    // Transactions need a frozen database.
    assert_eq!(
        status(&mut d, NODE1, Op::DbTransactionStart, transdb(id, 500)),
        -1
    );
    assert_eq!(
        status(&mut d, NODE1, Op::DbFreeze, id.to_le_bytes().to_vec()),
        0
    );
    // Commit before start, and wrong sizes, are refused.
    assert_eq!(
        status(&mut d, NODE1, Op::DbTransactionCommit, transdb(id, 500)),
        -1
    );
    assert_eq!(
        status(&mut d, NODE1, Op::DbTransactionStart, vec![0; 7]),
        -1
    );
    assert_eq!(
        ask_db(&mut d, NODE1, Op::DbTransactionStart, transdb(id, 500)).status,
        0
    );
    // Another generation's commit or wipe is refused.
    assert_eq!(
        status(&mut d, NODE1, Op::DbTransactionCommit, transdb(id, 499)),
        -1
    );
    assert_eq!(
        status(&mut d, NODE1, Op::WipeDatabase, transdb(id, 499)),
        -1
    );
    assert_eq!(
        ask_db(&mut d, NODE1, Op::DbTransactionCommit, transdb(id, 500)).status,
        0
    );
    assert_eq!(d.find_db(id).unwrap().generation, Generation(500));
    assert_eq!(d.find_db(id).unwrap().transaction, None);
    assert_eq!(
        status(&mut d, NODE1, Op::DbThaw, id.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()),
        0
    );
    assert!(!d.in_recovery());
    cleanup(dir);
}

#[test]
fn db_pull_streams_every_record_to_the_asking_node() {
    let (mut d, dir) = daemon("pull");
    let id = attach(&mut d, "pull.tdb");
    // Not frozen: refused.  Unknown db and bad size: refused.
    assert_eq!(status(&mut d, NODE1, Op::DbPull, pulldb(id, 0xABC)), -1);
    assert_eq!(status(&mut d, NODE1, Op::DbPull, pulldb(0x1234, 0xABC)), -1);
    assert_eq!(
        status(&mut d, NODE1, Op::DbPull, pulldb(id, 0xABC)[..12].to_vec()),
        -1
    );
    let mut recs: Vec<RecData> = (0..50)
        .map(|i| record(&format!("key{i}"), 3, 1, format!("value {i}").as_bytes()))
        .collect();
    // An empty record and another node's copy go too.
    recs.push(record("empty", 9, 1, b""));
    recs.push(record("foreign", 4, 2, b"x"));
    assert_eq!(push(&mut d, id, 88, recs.clone()), 52);
    // Small buffers: the records come in several messages.
    d.state.tunables.rec_buffer_size_limit = 300;
    d.packet(NODE1, &control(Op::DbPull, 1, 42, pulldb(id, 0xABC)))
        .unwrap();
    let sent = run_until(&mut d, |s| !control_replies(s).is_empty());
    let bufs = pulled(&sent, 0xABC);
    assert!(bufs.len() > 3, "{} buffers", bufs.len());
    let mut got = Vec::new();
    for (to, h, buf) in &bufs {
        assert_eq!(*to, NODE1);
        assert_eq!((h.destnode, h.srcnode), (Pnn(1), Pnn(0)));
        assert_eq!(buf.db_id, DbId(id));
        got.extend(buf.records.iter().cloned());
    }
    // Every message went before the reply, which counts the records.
    let (to, r) = control_replies(&sent).remove(0);
    assert_eq!((to, r.status), (NODE1, 0));
    assert_eq!(u32::from_le_bytes(r.data[..4].try_into().unwrap()), 52);
    let reply_at = sent
        .iter()
        .position(|(_, p)| matches!(Packet::decode(p), Ok((_, Packet::ReplyControl(_)))))
        .unwrap();
    assert_eq!(reply_at, sent.len() - 1);
    // The records are the ones pushed, headers and all.
    got.sort_by(|a, b| a.key.cmp(&b.key));
    recs.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got.len(), recs.len());
    for (g, w) in got.iter().zip(&recs) {
        assert_eq!((&g.key, &g.data), (&w.key, &w.data));
    }
    assert!(d.pulls.is_empty());
    cleanup(dir);
}

#[test]
fn db_pull_to_this_node_feeds_a_local_push() {
    // A pull asked by a local client goes to this node: here into another
    // database's push, as a recovery pushing to itself would.
    let (mut d, dir) = daemon("pushself");
    let a = attach(&mut d, "a.tdb");
    let b = attach(&mut d, "b.tdb");
    let recs: Vec<RecData> = (0..10)
        .map(|i| record(&format!("k{i}"), 1, 1, b"v"))
        .collect();
    assert_eq!(push(&mut d, a, 5, recs), 10);
    assert_eq!(
        status(&mut d, NODE1, Op::DbFreeze, b.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        ask_db(&mut d, NODE1, Op::DbTransactionStart, transdb(b, 5)).status,
        0
    );
    assert_eq!(status(&mut d, NODE1, Op::DbPushStart, pulldb(b, 0x77)), 0);
    let client = Origin::Client(ClientId(40));
    d.packet(client, &control(Op::DbPull, 0, 3, pulldb(a, 0x77)))
        .unwrap();
    let sent = run_until(&mut d, |s| !control_replies(s).is_empty());
    assert!(pulled(&sent, 0x77).is_empty(), "nothing goes to a node");
    assert_eq!(control_replies(&sent)[0].1.status, 0);
    let r = ask_db(&mut d, NODE1, Op::DbPushConfirm, b.to_le_bytes().to_vec());
    assert_eq!(u32::from_le_bytes(r.data[..4].try_into().unwrap()), 10);
    cleanup(dir);
}

/// The (key, value) pairs a DB_PULL of db `id` sends to node 1.
fn pull_values(d: &mut Daemon, id: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    d.packet(NODE1, &control(Op::DbPull, 1, 42, pulldb(id, 0xABC)))
        .unwrap();
    let sent = run_until(d, |s| !control_replies(s).is_empty());
    let mut kv: Vec<(Vec<u8>, Vec<u8>)> = pulled(&sent, 0xABC)
        .into_iter()
        .flat_map(|(_, _, b)| b.records)
        .map(|r| (r.key.clone(), r.header().unwrap().1.to_vec()))
        .collect();
    kv.sort();
    kv
}

#[test]
fn a_push_buffer_larger_than_a_batch_is_stored_whole_in_order() {
    // 5000 records are stored in several batches; a key pushed again in a
    // later batch keeps its later value.
    let (mut d, dir) = daemon("pushbig");
    let id = attach(&mut d, "big.tdb");
    let mut recs: Vec<RecData> = (0..5000)
        .map(|i| record(&format!("k{i}"), 1, 1, b"first"))
        .collect();
    recs.insert(4500, record("k7", 1, 1, b"again"));
    assert_eq!(push(&mut d, id, 9, recs), 5001);
    let kv = pull_values(&mut d, id);
    assert_eq!(kv.len(), 5000);
    let k7 = kv.iter().find(|(k, _)| k == b"k7").unwrap();
    assert_eq!(k7.1, b"again");
    assert!(kv.iter().all(|(k, v)| k == b"k7" || v == b"first"));
    cleanup(dir);
}

#[test]
fn a_bad_record_at_the_end_of_a_large_push_buffer_stores_nothing() {
    let (mut d, dir) = daemon("pushbad");
    let id = attach(&mut d, "bad.tdb");
    let mut recs: Vec<RecData> = (0..3000)
        .map(|i| record(&format!("k{i}"), 1, 1, b"v"))
        .collect();
    // Data shorter than an ltdb header.
    recs.push(RecData {
        reqid: 0,
        key: b"short".to_vec(),
        data: b"xy".to_vec(),
    });
    assert_eq!(push(&mut d, id, 9, recs), 0);
    assert!(pull_values(&mut d, id).is_empty());
    cleanup(dir);
}

#[test]
fn freeze_all_invalidates_volatile_records_until_normal_mode() {
    let (mut d, dir) = daemon("freezeall");
    let id = attach(&mut d, "inv.tdb");
    push(&mut d, id, 77, vec![record("k", 1, 1, b"v")]);
    assert_eq!(
        ask_db(&mut d, NODE1, Op::DbTransactionCommit, transdb(id, 77)).status,
        0
    );
    assert_eq!(status(&mut d, NODE1, Op::Freeze, vec![1]), -1);
    assert_eq!(status(&mut d, NODE1, Op::Freeze, vec![]), 0);
    assert!(d.state.all_frozen && d.find_db(id).unwrap().frozen);
    // An invalidated database pulls as empty, at once.
    let r = ask(&mut d, NODE1, Op::DbPull, pulldb(id, 0xABC)).unwrap();
    assert_eq!((r.status, r.data), (0, 0u32.to_le_bytes().to_vec()));
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()),
        0
    );
    let db = d.find_db(id).unwrap();
    assert!(!d.state.all_frozen && !db.frozen && !db.invalid_records);
    cleanup(dir);
}

#[test]
fn modify_flags_keeps_its_own_and_the_transports_bits() {
    let (mut d, dir) = daemon("flags");
    let change = |pnn: u32, new_flags: u32| {
        NodeFlagChange {
            pnn: Pnn(pnn),
            new_flags,
            old_flags: 0,
        }
        .to_bytes()
    };
    assert_eq!(status(&mut d, NODE1, Op::ModifyFlags, vec![0; 8]), -1);
    assert_eq!(status(&mut d, NODE1, Op::ModifyFlags, change(7, 0)), -1);
    // Node 1 is disconnected: ignored.
    assert_eq!(
        status(&mut d, NODE1, Op::ModifyFlags, change(1, NODE_FLAGS_BANNED)),
        0
    );
    assert_eq!(d.state.node_flags[1], NODE_FLAGS_DISCONNECTED);
    // This node's own flags are not another's to set.
    assert_eq!(
        status(&mut d, NODE1, Op::ModifyFlags, change(0, NODE_FLAGS_BANNED)),
        0
    );
    assert_eq!(d.state.own_flags(), 0);
    d.state.mark_connected(Pnn(1));
    let both = NODE_FLAGS_BANNED | NODE_FLAGS_DISCONNECTED;
    assert_eq!(status(&mut d, NODE1, Op::ModifyFlags, change(1, both)), 0);
    assert_eq!(d.state.node_flags[1], NODE_FLAGS_BANNED);
    let r = ask(&mut d, NODE1, Op::GetNodeMap, vec![]).unwrap();
    let map = NodeMap::decode(&r.data).unwrap();
    assert_eq!(map.0[1].flags, NODE_FLAGS_BANNED);
    // A node that becomes healthy while this one waits for its first
    // recovery forces a recovery; in STARTUP (recovered already) not.
    d.state.runstate = RunState::Startup;
    assert_eq!(status(&mut d, NODE1, Op::ModifyFlags, change(1, 0)), 0);
    assert_eq!(d.state.node_flags[1], 0);
    assert!(!d.in_recovery());
    assert_eq!(
        status(&mut d, NODE1, Op::ModifyFlags, change(1, NODE_FLAGS_BANNED)),
        0
    );
    d.state.runstate = RunState::FirstRecovery;
    assert_eq!(status(&mut d, NODE1, Op::ModifyFlags, change(1, 0)), 0);
    assert!(d.in_recovery());
    // Gone: DISCONNECTED and UNHEALTHY, as Samba's ctdb_node_dead; back:
    // only DISCONNECTED goes.  This node's own flags are not the
    // transport's.
    d.state.mark_disconnected(Pnn(1));
    d.state.mark_disconnected(Pnn(0));
    d.state.mark_disconnected(Pnn(5));
    let gone = NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY;
    assert_eq!(d.state.node_flags, vec![0, gone]);
    d.state.mark_connected(Pnn(1));
    assert_eq!(d.state.node_flags[1], NODE_FLAGS_UNHEALTHY);
    cleanup(dir);
}

#[test]
fn stop_makes_the_node_inactive_and_continue_clears_it() {
    let (mut d, dir) = daemon("stop");
    let id = attach(&mut d, "stop.tdb");
    assert_eq!(status(&mut d, NODE1, Op::StopNode, vec![]), 0);
    assert_eq!(d.state.own_flags(), NODE_FLAGS_STOPPED);
    assert_eq!(d.state.generation, Generation::INVALID);
    assert!(d.in_recovery() && d.state.all_frozen);
    assert!(d.find_db(id).unwrap().frozen);
    assert_eq!(status(&mut d, NODE1, Op::ContinueNode, vec![]), 0);
    assert_eq!(d.state.own_flags(), 0);
    assert_eq!(status(&mut d, NODE1, Op::DisableNode, vec![]), 0);
    assert_ne!(d.state.own_flags(), 0);
    assert_eq!(status(&mut d, NODE1, Op::EnableNode, vec![]), 0);
    assert_eq!(d.state.own_flags(), 0);
    cleanup(dir);
}

#[test]
fn start_and_end_recovery_keep_the_times_and_run_state() {
    let (mut d, dir) = daemon("startend");
    d.state.runstate = RunState::FirstRecovery;
    let before = d.stats.num_recoveries;
    let t0 = d.state.last_recovery_started;
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(status(&mut d, NODE1, Op::StartRecovery, vec![]), 0);
    assert_ne!(d.state.last_recovery_started, t0);
    // Not while recovery mode is ACTIVE.
    d.state.recmode = RECOVERY_ACTIVE;
    assert_eq!(status(&mut d, NODE1, Op::EndRecovery, vec![]), -1);
    assert_eq!(d.stats.num_recoveries, before);
    assert_eq!(d.state.runstate, RunState::FirstRecovery);
    d.state.recmode = RECOVERY_NORMAL;
    d.node_connected(Pnn(1));
    d.outbox.take();
    d.packet(NODE1, &control(Op::EndRecovery, 1, 4, vec![]))
        .unwrap();
    let mut sent = d.outbox.take();
    assert_eq!(d.stats.num_recoveries, before + 1);
    // The "recovered" event ran (no event daemon here: at once); the node
    // is in STARTUP, its "startup" event due now.
    assert_eq!(d.state.runstate, RunState::Startup);
    assert!(sent.iter().any(|a| matches!(
        a,
        Action::ArmTimer {
            event: crate::timers::TimerEvent::Startup,
            ..
        }
    )));
    d.startup_timer();
    sent.extend(d.outbox.take());
    assert_eq!(d.state.runstate, RunState::Running);
    // The reply goes, then "startup" succeeds and the connected nodes hear
    // of it (STARTUP, no reply), and the first monitor is due.
    let kinds: Vec<_> = sent
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, packet } => Some((*to, Packet::decode(packet).unwrap().1)),
            _ => None,
        })
        .collect();
    let startup = kinds.iter().position(
        |k| matches!(k, (NODE1, Packet::ReqControl(c)) if c.opcode == Op::Startup && c.noreply()),
    );
    let reply = kinds
        .iter()
        .position(|k| matches!(k, (NODE1, Packet::ReplyControl(r)) if r.status == 0));
    assert!(startup.expect("STARTUP to node 1") > reply.expect("the reply"));
    assert_eq!(status(&mut d, NODE1, Op::Startup, vec![]), 0);
    assert_ne!(d.state.last_recovery_finished, t0);
    cleanup(dir);
}

#[test]
fn reclock_file_and_latency() {
    let (mut d, dir) = daemon("reclock");
    let r = ask(&mut d, NODE1, Op::GetReclockFile, vec![]).unwrap();
    assert_eq!((r.status, r.data.len()), (0, 0));
    d.state.config.cluster_lock = Some("/x/lock".into());
    let r = ask(&mut d, NODE1, Op::GetReclockFile, vec![]).unwrap();
    assert_eq!(r.data, b"/x/lock\0");
    assert_eq!(
        status(
            &mut d,
            NODE1,
            Op::RecdReclockLatency,
            0.5f64.to_le_bytes().to_vec()
        ),
        0
    );
    assert_eq!(d.stats.reclock_recd.num, 1);
    assert_eq!(
        status(&mut d, NODE1, Op::RecdReclockLatency, vec![0; 4]),
        -1
    );
    assert_eq!(status(&mut d, NODE1, Op::RecdPing, vec![]), 0);
    cleanup(dir);
}

#[test]
fn the_cluster_lock_probe_sees_a_holder_in_this_process() {
    use super::recmode::{LockProbe, ReclockProbe};
    use std::os::fd::AsRawFd;
    let (_d, dir) = daemon("probe");
    let path = dir.join("reclock");
    let p = path.to_str().unwrap();
    let mut probe = ReclockProbe::default();
    assert_eq!(probe.probe(None), LockProbe::NotConfigured);
    assert_eq!(probe.probe(Some(p)), LockProbe::Taken);
    // Taken and given back: a second probe takes it again.
    assert_eq!(probe.probe(Some(p)), LockProbe::Taken);
    assert!(matches!(
        probe.probe(Some("!/bin/true")),
        LockProbe::Unchecked(_)
    ));
    assert!(matches!(
        ReclockProbe::default().probe(Some("/nonexistent-dir/x")),
        LockProbe::Failed(_)
    ));
    // A classic fcntl lock on byte 0, as Samba's helper takes it, held by
    // this very process.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    };
    // SAFETY: a valid descriptor and a valid flock for the duration of the call.
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &lock) };
    assert_eq!(rc, 0);
    assert_eq!(probe.probe(Some(p)), LockProbe::Contended);
    // Probing again (the probe's file stays open) does not drop the lock.
    assert_eq!(probe.probe(Some(p)), LockProbe::Contended);
    // With the lock held, SET_RECMODE NORMAL goes through; without, it fails.
    let (mut d, dir2) = daemon("probe2");
    d.state.config.cluster_lock = Some(p.to_string());
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()),
        0
    );
    drop(f);
    assert_eq!(
        status(&mut d, NODE1, Op::SetRecmode, 1u32.to_le_bytes().to_vec()),
        0
    );
    let r = ask(&mut d, NODE1, Op::SetRecmode, 0u32.to_le_bytes().to_vec()).unwrap();
    assert_eq!(r.status, -1);
    assert!(r.errmsg.unwrap().contains("Took recovery lock"));
    assert!(d.in_recovery());
    cleanup(dir);
    cleanup(dir2);
}

/// A real client connection on the daemon's socket (so it is live).
fn connect(d: &mut Daemon, dir: &std::path::Path) -> (std::os::unix::net::UnixStream, ClientId) {
    let s = std::os::unix::net::UnixStream::connect(dir.join("sock")).unwrap();
    d.transport.accept_clients();
    let (c, _) = d.transport.live().last().unwrap();
    (s, c)
}

#[test]
fn client_attaches_wait_for_the_end_of_recovery() {
    let (mut d, dir) = daemon("deferattach");
    let (_sock, c) = connect(&mut d, &dir);
    let client = Origin::Client(c);
    d.state.recmode = RECOVERY_ACTIVE;
    d.packet(client, &control(Op::DbAttach, 0, 5, b"late.tdb\0".to_vec()))
        .unwrap();
    assert!(replies(&mut d).is_empty());
    assert_eq!(d.deferred_attaches.len(), 1);
    // Node 1 (a recovery) attaches at once.
    attach(&mut d, "other.tdb");
    // The recovery's own attach is refused outside recovery.
    d.state.recmode = RECOVERY_NORMAL;
    let body = ReqControl {
        opcode: Op::DbAttach,
        srvid: Srvid(0),
        client_id: 0,
        flags: CONTROL_FLAG_ATTACH_RECOVERY,
        data: b"rec.tdb\0".to_vec(),
    };
    let h = Header::new(Operation::ReqControl, Pnn::CURRENT_NODE, Pnn(0), 6);
    d.packet(client, &Packet::ReqControl(body).encode(h))
        .unwrap();
    let r = replies(&mut d);
    assert_eq!((r[0].1, r[0].2.status), (6, -1));
    // NORMAL releases the held attach: it is served as if just received.
    d.state.recmode = RECOVERY_ACTIVE;
    let normal = control(Op::SetRecmode, 1, 8, 0u32.to_le_bytes().to_vec());
    d.packet(NODE1, &normal).unwrap();
    let sent = run_until(&mut d, |s| {
        control_replies(s).iter().any(|(to, _)| *to == client)
    });
    let (_, r) = control_replies(&sent)
        .into_iter()
        .find(|(to, _)| *to == client)
        .unwrap();
    assert_eq!(r.status, 0);
    let to_node: Vec<_> = control_replies(&sent)
        .into_iter()
        .filter(|(to, _)| *to == NODE1)
        .collect();
    assert_eq!(to_node[0].1.status, 0);
    assert!(d.deferred_attaches.is_empty());
    cleanup(dir);
}

#[test]
fn a_held_attach_fails_after_its_timeout() {
    let (mut d, dir) = daemon("attachtimeout");
    let (_sock, c) = connect(&mut d, &dir);
    d.state.recmode = RECOVERY_ACTIVE;
    d.packet(
        Origin::Client(c),
        &control(Op::DbAttach, 0, 5, b"t.tdb\0".to_vec()),
    )
    .unwrap();
    let tag = d.deferred_attaches[0];
    d.outbox.take();
    d.expire(tag);
    let r = replies(&mut d);
    assert_eq!((r[0].0, r[0].2.status), (Origin::Client(c), -1));
    assert!(d.deferred_attaches.is_empty());
    cleanup(dir);
}

#[test]
fn a_ban_makes_the_node_inactive_until_it_runs_out() {
    use ctdb_protocol::types::BanState;
    let (mut d, dir) = daemon("ban");
    let ban = |pnn: u32, time: u32| {
        BanState {
            pnn: Pnn(pnn),
            time,
        }
        .to_bytes()
    };
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, ban(1, 10)), -1);
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, vec![0; 4]), -1);
    let r = ask(&mut d, NODE1, Op::GetBanState, vec![]).unwrap();
    assert_eq!(
        BanState::decode(&r.data).unwrap(),
        BanState {
            pnn: Pnn(0),
            time: 0
        }
    );
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, ban(0, 10)), 0);
    assert_eq!(d.state.own_flags(), NODE_FLAGS_BANNED);
    assert!(d.in_recovery() && d.state.all_frozen);
    assert_eq!(d.state.generation, Generation::INVALID);
    let r = ask(&mut d, NODE1, Op::GetBanState, vec![]).unwrap();
    assert_eq!(BanState::decode(&r.data).unwrap().time, 10);
    // The time runs out: the flag goes (the databases are frozen).
    let timer = d.ban.as_ref().unwrap().timer;
    d.expire(timer);
    assert_eq!(d.state.own_flags(), 0);
    assert!(d.ban.is_none());
    // Banned again, then lifted by time 0; disabled bans do nothing.
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, ban(0, 10)), 0);
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, ban(0, 0)), 0);
    assert_eq!(d.state.own_flags(), 0);
    d.state.tunables.enable_bans = 0;
    assert_eq!(status(&mut d, NODE1, Op::SetBanState, ban(0, 10)), 0);
    assert_eq!(d.state.own_flags(), 0);
    cleanup(dir);
}

#[test]
fn lmaster_is_the_keys_slot_in_the_vnn_map() {
    use crate::call::lmaster;
    // Jenkins hashes of these keys are known (db ids of Samba's names).
    let p = |v: &[u32]| v.iter().map(|&x| Pnn(x)).collect::<Vec<_>>();
    assert_eq!(lmaster(&p(&[5, 6]), b"foo.tdb\0"), Some(Pnn(5)));
    assert_eq!(lmaster(&p(&[5, 6, 7]), b"foo.tdb\0"), Some(Pnn(7)));
    assert_eq!(lmaster(&p(&[5, 6, 7]), b"bar.tdb\0"), Some(Pnn(5)));
    assert_eq!(lmaster(&[], b"foo.tdb\0"), None);
}

#[test]
fn a_push_keeps_empty_records_only_where_samba_keeps_them() {
    // vnn map [1, 0]: node 1 is lmaster of keys in slot 0, this node of
    // slot 1.  An empty record of another dmaster is kept only by its lmaster.
    let (mut d, dir) = daemon("pushkeep");
    let id = attach(&mut d, "keep.tdb");
    d.state.vnn_map = vec![Pnn(1), Pnn(0)];
    let slot = |k: &str| tdb_engine::hash::jenkins_hash(k.as_bytes()) % 2;
    let mine = (0..)
        .map(|i| format!("m{i}"))
        .find(|k| slot(k) == 1)
        .unwrap();
    let theirs = (0..)
        .map(|i| format!("t{i}"))
        .find(|k| slot(k) == 0)
        .unwrap();
    // An empty record this node does not keep, and does not have, fails
    // the store, as Samba's delete of a missing record does: the push stops
    // there (records before it stay), later buffers are ignored, and the
    // confirm counts only the buffers stored (0), with status 0.
    let recs = vec![
        record(&mine, 5, 1, b""),
        record("full", 5, 1, b"v"),
        record(&theirs, 5, 1, b""),
        record("after", 5, 1, b"v"),
    ];
    assert_eq!(
        status(&mut d, NODE1, Op::DbFreeze, id.to_le_bytes().to_vec()),
        0
    );
    assert_eq!(
        ask_db(&mut d, NODE1, Op::DbTransactionStart, transdb(id, 77)).status,
        0
    );
    assert_eq!(
        status(&mut d, NODE1, Op::DbPushStart, pulldb(id, 0xF00D)),
        0
    );
    for buf in [recs, vec![record("later", 1, 1, b"v")]] {
        let buf = RecBuffer {
            db_id: DbId(id),
            records: buf,
        };
        d.packet(NODE1, &message_from_node1(0xF00D, buf.to_bytes()))
            .unwrap();
    }
    let r = ask_db(&mut d, NODE1, Op::DbPushConfirm, id.to_le_bytes().to_vec());
    assert_eq!((r.status, r.data), (0, 0u32.to_le_bytes().to_vec()));
    d.packet(NODE1, &control(Op::DbPull, 1, 42, pulldb(id, 0xABC)))
        .unwrap();
    let sent = run_until(&mut d, |s| !control_replies(s).is_empty());
    let mut keys: Vec<Vec<u8>> = pulled(&sent, 0xABC)
        .into_iter()
        .flat_map(|(_, _, b)| b.records.into_iter().map(|r| r.key))
        .collect();
    keys.sort();
    assert_eq!(keys, vec![b"full".to_vec(), mine.into_bytes()]);
    cleanup(dir);
}

#[test]
fn initial_flags_are_samba_s() {
    use crate::daemon::NodeState;
    use ctdb_protocol::types::NODE_FLAGS_DELETED;
    let nodes = crate::nodes::parse("127.0.0.1\n#127.0.0.2\n127.0.0.3\n").unwrap();
    let flags = NodeState::initial_node_flags(&nodes, 2, NODE_FLAGS_STOPPED);
    assert_eq!(
        flags,
        vec![
            NODE_FLAGS_DISCONNECTED | NODE_FLAGS_UNHEALTHY,
            NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED,
            NODE_FLAGS_STOPPED | NODE_FLAGS_UNHEALTHY
        ]
    );
    assert_eq!(NodeState::initial_vnn_map(&nodes), vec![Pnn(0), Pnn(2)]);
}

#[test]
fn a_big_pull_streams_in_buffers_of_the_size_limit() {
    // 3000 records of ~1 KiB: many worker batches, buffers cut at 256 KiB.
    let (mut d, dir) = daemon("bigpull");
    let id = attach(&mut d, "big.tdb");
    let value = vec![b'x'; 1000];
    let recs: Vec<RecData> = (0..3000)
        .map(|i| record(&format!("key{i:05}"), 1, 1, &value))
        .collect();
    assert_eq!(push(&mut d, id, 9, recs), 3000);
    d.state.tunables.rec_buffer_size_limit = 256 * 1024;
    d.packet(NODE1, &control(Op::DbPull, 1, 42, pulldb(id, 0xABC)))
        .unwrap();
    let sent = run_until(&mut d, |s| !control_replies(s).is_empty());
    let bufs = pulled(&sent, 0xABC);
    let total: usize = bufs.iter().map(|(_, _, b)| b.records.len()).sum();
    assert_eq!(total, 3000);
    // Every buffer but the last reached the limit, and none went far past
    // it (one record more at most).
    for (_, _, b) in &bufs[..bufs.len() - 1] {
        let size = b.to_bytes().len();
        assert!((256 * 1024..256 * 1024 + 1100).contains(&size), "{size}");
    }
    assert!(bufs.len() >= 11, "{} buffers", bufs.len());
    let r = &control_replies(&sent)[0].1;
    assert_eq!(u32::from_le_bytes(r.data[..4].try_into().unwrap()), 3000);
    cleanup(dir);
}

/// START_RECOVERY from node 1 (connected): the GET_RECLOCK_FILE it sends to
/// node 1 and the reply it then gives, for node 1's answer `lock`.
fn start_recovery_with_leader_lock(local: Option<&str>, lock: Option<&str>) -> (i32, bool) {
    let (mut d, dir) = daemon("reclockcheck");
    d.state.config.cluster_lock = local.map(str::to_string);
    d.node_connected(Pnn(1));
    d.packet(NODE1, &control(Op::StartRecovery, 1, 61, vec![]))
        .unwrap();
    let asked: Vec<(Header, ReqControl)> = d
        .outbox
        .take()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send {
                to: NODE1, packet, ..
            } => match Packet::decode(&packet) {
                Ok((h, Packet::ReqControl(c))) => Some((h, c)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one question to the leader");
    assert_eq!(asked[0].1.opcode, Op::GetReclockFile);
    let data = lock.map_or(Vec::new(), |l| {
        let mut v = l.as_bytes().to_vec();
        v.push(0);
        v
    });
    let answer = Packet::ReplyControl(ReplyControl::ok(data)).encode(Header::new(
        Operation::ReplyControl,
        Pnn(0),
        Pnn(1),
        asked[0].0.reqid,
    ));
    d.packet(NODE1, &answer).unwrap();
    let r = replies(&mut d);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, 61);
    let out = (r[0].2.status, d.exit_requested);
    cleanup(dir);
    out
}

#[test]
fn start_recovery_checks_the_leaders_cluster_lock() {
    assert_eq!(start_recovery_with_leader_lock(None, None), (0, false));
    assert_eq!(
        start_recovery_with_leader_lock(Some("/l"), Some("/l")),
        (0, false)
    );
    // A different setting: refused, and this node shuts down.
    assert_eq!(
        start_recovery_with_leader_lock(Some("/l"), None),
        (-1, true)
    );
    assert_eq!(
        start_recovery_with_leader_lock(None, Some("/m")),
        (-1, true)
    );
    // From this node, or a leader seen disconnected: nobody is asked.
    let (mut d, dir) = daemon("reclocknoask");
    assert_eq!(status(&mut d, NODE1, Op::StartRecovery, vec![]), 0);
    cleanup(dir);
}
#[test]
fn a_new_client_attach_is_announced_to_connected_nodes() {
    let (mut d, dir) = daemon("announce");
    let (_sock, c) = connect(&mut d, &dir);
    d.state.mark_connected(Pnn(1));
    d.packet(
        Origin::Client(c),
        &control(Op::DbAttach, 0, 5, b"new.tdb\0".to_vec()),
    )
    .unwrap();
    let sent = run_until(&mut d, |s| !control_replies(s).is_empty());
    let announced: Vec<_> = sent
        .iter()
        .filter_map(|(to, p)| match Packet::decode(p) {
            Ok((h, Packet::ReqControl(r))) => Some((*to, h, r)),
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), 1);
    let (to, h, r) = &announced[0];
    assert_eq!((*to, h.destnode, h.srcnode), (NODE1, Pnn(1), Pnn(0)));
    assert_eq!((r.opcode, r.noreply()), (Op::DbAttach, true));
    assert_eq!(r.data, b"new.tdb\0");
    // An attach of a database this node has is not announced again.
    d.packet(
        Origin::Client(c),
        &control(Op::DbAttach, 0, 6, b"new.tdb\0".to_vec()),
    )
    .unwrap();
    let r = replies(&mut d);
    assert_eq!((r.len(), r[0].2.status), (1, 0));
    assert!(d.outbox.is_empty());
    // Any new attach is announced (a node's too); a disconnected node is
    // not told.
    let announced_for = |d: &mut Daemon, name: &[u8]| {
        d.packet(NODE1, &control(Op::DbAttach, 1, 7, name.to_vec()))
            .unwrap();
        let sent = run_until(d, |s| !control_replies(s).is_empty());
        sent.iter()
            .filter(|(_, p)| matches!(Packet::decode(p), Ok((_, Packet::ReqControl(_)))))
            .count()
    };
    assert_eq!(announced_for(&mut d, b"fromnode.tdb\0"), 1);
    d.state.mark_disconnected(Pnn(1));
    assert_eq!(announced_for(&mut d, b"quiet.tdb\0"), 0);
    cleanup(dir);
}

#[test]
fn persistent_databases_on_disk_are_attached_at_start() {
    use ctdb_protocol::types::DB_FLAGS_PERSISTENT;
    let (mut d, dir) = daemon("pstart");
    // The test daemon's persistent directory is `dir`: this node's files
    // (pnn 0) are attached, another node's and other files are not.
    for f in [
        "one.tdb.0",
        "two.tdb.0",
        "other.tdb.1",
        "junk.tdb.0x",
        "sock2",
    ] {
        std::fs::write(dir.join(f), b"").unwrap();
    }
    d.attach_persistent_at_start();
    // The opens go out to the database side.
    run_until(&mut d, |_| true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.dbs.iter().any(|db| !db.ready) || d.dbs.len() < 2 {
        assert!(Instant::now() < deadline, "databases did not open");
        std::thread::sleep(Duration::from_millis(5));
        d.drain_db_replies();
    }
    let mut names: Vec<_> = d.dbs.iter().map(|db| (db.name.clone(), db.flags)).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("one.tdb".to_string(), DB_FLAGS_PERSISTENT),
            ("two.tdb".to_string(), DB_FLAGS_PERSISTENT)
        ]
    );
    // Not twice.
    d.attach_persistent_at_start();
    assert_eq!(d.dbs.len(), 2);
    cleanup(dir);
}

#[test]
fn an_attach_announced_by_another_node_is_not_answered() {
    let (mut d, dir) = daemon("noreply");
    // The announcement another node sends: DB_ATTACH with NOREPLY, reqid 0.
    let body = ReqControl {
        opcode: Op::DbAttach,
        srvid: Srvid(0),
        client_id: 0,
        flags: ctdb_protocol::packet::CONTROL_FLAG_NOREPLY,
        data: b"told.tdb\0".to_vec(),
    };
    let h = Header::new(Operation::ReqControl, Pnn(0), Pnn(1), 0);
    d.packet(NODE1, &Packet::ReqControl(body).encode(h))
        .unwrap();
    // The open completes on the database side; nothing goes back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d
        .find_db(crate::db::db_id("told.tdb"))
        .is_none_or(|db| !db.ready)
    {
        assert!(Instant::now() < deadline, "the attach never completed");
        d.drain_db_replies();
        let sent = run_until(&mut d, |_| true);
        assert!(
            control_replies(&sent).is_empty(),
            "a NOREPLY attach was answered"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = run_until(&mut d, |_| true);
    assert!(
        control_replies(&sent).is_empty(),
        "a NOREPLY attach was answered"
    );
    cleanup(dir);
}

/// The nodes a queued RECMODE_ACTIVE_BY_CLIENT message goes to.
fn recmode_notices(d: &mut Daemon) -> Vec<Origin> {
    let mut to_nodes = Vec::new();
    for a in d.outbox.take() {
        if let Action::Send { to, packet } = a {
            if let Ok((h, Packet::ReqMessage(m))) = Packet::decode(&packet) {
                if m.srvid == Srvid::RECMODE_ACTIVE_BY_CLIENT {
                    assert_eq!(
                        h.destnode,
                        match to {
                            Origin::Node(p) => p,
                            Origin::Client(_) => panic!("notice to a client"),
                        }
                    );
                    assert_eq!(m.data, 0u32.to_le_bytes());
                    to_nodes.push(to);
                }
            }
        }
    }
    to_nodes
}

#[test]
fn a_clients_recmode_active_is_broadcast_to_the_recovery_daemons() {
    // A client's SET_RECMODE ACTIVE (`ctdb recover`) tells every other
    // connected node (and this one's own recovery daemon, locally) so that
    // the leader need not wait for its next monitoring round.
    let (mut d, dir) = crate::dispatch::tests::node_daemon("recnotice", 0, 3);
    d.state.node_flags[2] = NODE_FLAGS_DISCONNECTED;
    let client = Origin::Client(ClientId(40));
    let active = 1u32.to_le_bytes().to_vec();
    d.packet(client, &control(Op::SetRecmode, 0, 1, active.clone()))
        .unwrap();
    assert_eq!(recmode_notices(&mut d), vec![Origin::Node(Pnn(1))]);
    assert_eq!(d.state.recmode, RECOVERY_ACTIVE);
    // The same mode again changes nothing and tells nobody.
    d.packet(client, &control(Op::SetRecmode, 0, 2, active.clone()))
        .unwrap();
    assert!(recmode_notices(&mut d).is_empty());
    cleanup(dir);
    // The leader's own SET_RECMODE from another node is not repeated.
    let (mut d, dir) = crate::dispatch::tests::node_daemon("recnotice2", 0, 3);
    d.packet(NODE1, &control(Op::SetRecmode, 1, 1, active))
        .unwrap();
    assert!(recmode_notices(&mut d).is_empty());
    assert_eq!(d.state.recmode, RECOVERY_ACTIVE);
    cleanup(dir);
}

#[test]
fn a_node_packet_after_its_attach_finds_the_database_open() {
    let (mut d, dir) = crate::dispatch::tests::node_daemon("gate", 0, 2);
    d.state.recmode = ctdb_protocol::types::RECOVERY_NORMAL;
    let body = ReqControl {
        opcode: Op::DbAttach,
        srvid: Srvid(0),
        client_id: 0,
        flags: ctdb_protocol::packet::CONTROL_FLAG_NOREPLY,
        data: b"raced.tdb\0".to_vec(),
    };
    let gen = d.state.generation;
    let h = |op| Header {
        generation: gen,
        ..Header::new(op, Pnn(0), Pnn(1), 9)
    };
    d.node_packet(
        Pnn(1),
        &Packet::ReqControl(body).encode(h(Operation::ReqControl)),
    );
    // Sent right behind the attach, before the open has ended.
    let call = ctdb_protocol::packet::ReqCall {
        flags: 0,
        db_id: ctdb_protocol::DbId(crate::db::db_id("raced.tdb")),
        callid: 0,
        hopcount: 1,
        key: b"k".to_vec(),
        calldata: Vec::new(),
    };
    d.node_packet(Pnn(1), &Packet::ReqCall(call).encode(h(Operation::ReqCall)));
    assert_eq!(d.attach_gate.held_packets(), 1, "the call was not held");
    // The announcement to node 1, then the call's own next hop (an answer,
    // or the call passed on to the record's lmaster); never an error.
    let sent = run_until(&mut d, |s| s.len() >= 2);
    assert_eq!(d.attach_gate.held_packets(), 0);
    let errors: Vec<_> = sent
        .iter()
        .filter(|(_, p)| matches!(Packet::decode(p), Ok((_, Packet::ReplyError(_)))))
        .collect();
    assert!(errors.is_empty(), "the call failed: {errors:?}");
    cleanup(dir);
}
