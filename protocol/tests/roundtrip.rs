//! Round trips for every typed control request and reply, every packet
//! body and the framing, and a deterministic random-input loop over every
//! opcode that decoding must survive without panicking.

use ctdb_protocol::controls::{ControlReply, ControlRequest};
use ctdb_protocol::header::{Header, HEADER_LEN, MAX_PACKET};
use ctdb_protocol::ids::{DbId, Generation, Pnn, Srvid};
use ctdb_protocol::ltdb::{
    LtdbHeader, RecBuffer, RecData, REC_FLAG_AUTOMATIC, REC_FLAG_MIGRATED_WITH_DATA,
};
use ctdb_protocol::opcode::{ControlOpcode, Operation};
use ctdb_protocol::packet::{
    frame_length, Framer, Packet, ReplyCall, ReplyControl, ReplyDmaster, ReplyError, ReqCall,
    ReqControl, ReqDmaster, ReqKeepalive, ReqMessage, ReqTunnel, FRAMER_KEPT_CAPACITY,
};
use ctdb_protocol::statistics::{
    DbStatistics, LatencyCounter, Statistics, StatisticsList, MAX_HOT_KEYS,
};
use ctdb_protocol::tunables::{Tunable, TunableList, VarList, TUNABLE_COUNT};
use ctdb_protocol::types::*;
use ctdb_protocol::wire::{CountedString, Layout, PlainText, SockAddr, Timeval};
use ctdb_protocol::DecodeError;
use std::collections::BTreeSet;

fn v4(s: &str) -> SockAddr {
    SockAddr::from(s.parse::<std::net::SocketAddr>().unwrap())
}

fn rec(reqid: u32, key: &[u8], value: &[u8]) -> RecData {
    let h = LtdbHeader {
        rsn: 9,
        dmaster: Pnn(0),
        reserved1: 0,
        flags: REC_FLAG_AUTOMATIC,
    };
    RecData::with_header(reqid, key, &h, value)
}

fn recbuf() -> RecBuffer {
    RecBuffer {
        db_id: DbId(0x8812_7240),
        records: vec![
            rec(0, b"k1", b"v1"),
            rec(0, b"", b""),
            rec(3, b"key\0", &[0xff; 40]),
        ],
    }
}

fn connection() -> Connection {
    Connection {
        src: v4("10.1.2.3:40000"),
        dst: SockAddr::from("[fe80::1%3]:445".parse::<std::net::SocketAddr>().unwrap()),
    }
}

fn addr_info() -> AddrInfo {
    AddrInfo {
        addr: v4("10.99.0.1:0"),
        mask: 24,
        iface: Some("eth0,eth1".into()),
    }
}

fn statistics() -> Statistics {
    let mut s = Statistics {
        num_clients: 3,
        recovering: 1,
        memory_used: 77,
        statistics_start_time: Timeval { sec: 10, usec: 5 },
        ..Default::default()
    };
    s.node.req_control = 8;
    s.client.req_call = 2;
    s.timeouts.traverse = 1;
    s.locks.buckets[3] = 4;
    s.locks.latency.update(0.5);
    s.hop_count_bucket[15] = 6;
    s.call_latency = LatencyCounter {
        num: 2,
        min: 0.25,
        max: 1.5,
        total: 1.75,
    };
    s
}

fn db_statistics() -> DbStatistics {
    let mut d = DbStatistics {
        num_hot_keys: MAX_HOT_KEYS as u32,
        db_ro_revokes: 2,
        ..Default::default()
    };
    d.hot_keys[0].count = 5;
    d.hot_keys[0].key = b"hot".to_vec();
    d.hot_keys[0].key_pointer = 0x5555_0000_1234;
    d.hot_keys[9].key = b"last".to_vec();
    d.locks.num_failed = 1;
    d
}

fn iface(name: &str) -> Iface {
    Iface {
        name: name.into(),
        link_state: 1,
        references: 2,
    }
}

/// One sample of every typed request.
fn requests() -> Vec<ControlRequest> {
    use ControlRequest as R;
    let id = DbId(0x1234_5678);
    let transdb = TransDb { db_id: id, tid: 7 };
    let trav = TraverseStart {
        db_id: id,
        reqid: 4,
        srvid: Srvid(0xCE00_0000_0000_0001),
    };
    let all = TraverseAll {
        db_id: id,
        reqid: 1,
        pnn: Pnn(2),
        client_reqid: 3,
        srvid: Srvid(9),
    };
    let pull = PullDbExt {
        db_id: id,
        lmaster: LMASTER_ANY,
        srvid: Srvid(0xF001_0000_0000_0007),
    };
    let pubip = PublicIp {
        pnn: Pnn::UNKNOWN,
        addr: v4("10.99.0.2:0"),
    };
    vec![
        R::Statistics,
        R::Ping,
        R::GetVnnMap,
        R::GetDebug,
        R::GetDbMap,
        R::GetRecmode,
        R::StatisticsReset,
        R::RegisterSrvid,
        R::DeregisterSrvid,
        R::DumpMemory,
        R::GetPid,
        R::Freeze,
        R::GetPnn,
        R::Shutdown,
        R::Startup,
        R::ListTunables,
        R::GetAllTunables,
        R::Uptime,
        R::StartRecovery,
        R::EndRecovery,
        R::ReloadNodesFile,
        R::GetCapabilities,
        R::RecdPing,
        R::GetPublicIps,
        R::GetNodeMap,
        R::GetReclockFile,
        R::StopNode,
        R::ContinueNode,
        R::GetBanState,
        R::GetIfaces,
        R::GetStatHistory,
        R::ReloadPublicIps,
        R::IpReallocated,
        R::GetRunState,
        R::GetNodesFile,
        R::TunnelRegister,
        R::TunnelDeregister,
        R::DisableNode,
        R::EnableNode,
        R::ProcessExists(4242),
        R::GetDbPath(id),
        R::SetVnnMap(VnnMap {
            generation: Generation(77),
            map: vec![Pnn(0), Pnn(1), Pnn(0)],
        }),
        R::SetDebug(4),
        R::SetRecmode(RECOVERY_ACTIVE),
        R::DbAttach("test.tdb".into()),
        R::TraverseStart(trav),
        R::TraverseAll(all),
        R::TraverseData(rec(5, b"k", b"v")),
        R::GetDbName(id),
        R::EnableSeqnum(id),
        R::UpdateSeqnum(id),
        R::TcpClient(connection()),
        R::TcpAdd(connection()),
        R::TcpRemove(connection()),
        R::SetTunable(Tunable {
            name: "RecoverInterval".into(),
            value: 2,
        }),
        R::GetTunable(CountedString("RecoverInterval".into())),
        R::ModifyFlags(NodeFlagChange {
            pnn: Pnn(1),
            new_flags: NODE_FLAGS_BANNED,
            old_flags: 0,
        }),
        R::GetTcpTickleList(v4("10.99.0.1:0")),
        R::SetTcpTickleList(TickleList {
            addr: v4("10.99.0.1:0"),
            connections: vec![connection(), connection()],
        }),
        R::DbAttachPersistent("p.tdb".into()),
        R::UpdateRecord(recbuf()),
        R::SendGratuitousArp(addr_info()),
        R::WipeDatabase(transdb),
        R::TryDeleteRecords(recbuf()),
        R::AddPublicIp(addr_info()),
        R::DelPublicIp(AddrInfo {
            iface: None,
            ..addr_info()
        }),
        R::ReleaseIp(pubip),
        R::TakeoverIp(pubip),
        R::TraverseKill(trav),
        R::RecdReclockLatency(0.125),
        R::SetLmasterRole(1),
        R::SetRecmasterRole(0),
        R::SetBanState(BanState {
            pnn: Pnn(3),
            time: 300,
        }),
        R::RegisterNotify(NotifyData {
            srvid: Srvid(0xFE00_0000_0000_0000),
            data: vec![0],
        }),
        R::DeregisterNotify(Srvid(0xFE00_0000_0000_0000)),
        R::Trans3Commit(recbuf()),
        R::GetDbSeqnum(DbIdPadded { db_id: id }),
        R::DbSetHealthy(id),
        R::DbGetHealth(id),
        R::GetPublicIpInfo(v4("10.99.0.1:0")),
        R::SetIfaceLinkState(iface("lo")),
        R::TcpAddDelayedUpdate(connection()),
        R::ScheduleForDeletion(KeyData {
            db_id: id,
            header: LtdbHeader {
                rsn: 3,
                dmaster: Pnn(0),
                reserved1: 0,
                flags: 0,
            },
            key: b"gone".to_vec(),
        }),
        R::SetDbReadonly(id),
        R::TraverseStartExt(TraverseStartExt {
            db_id: id,
            reqid: 2,
            srvid: Srvid(5),
            with_empty_records: true,
        }),
        R::GetDbStatistics(id),
        R::SetDbSticky(id),
        R::TraverseAllExt(TraverseAllExt {
            all,
            with_empty_records: true,
        }),
        R::DbDetach(id),
        R::DbFreeze(id),
        R::DbThaw(id),
        R::DbTransactionStart(transdb),
        R::DbTransactionCommit(transdb),
        R::DbTransactionCancel(id),
        R::DbPull(pull),
        R::DbPushStart(pull),
        R::DbPushConfirm(id),
        R::DbOpenFlags(id),
        R::DbAttachReplicated("r.tdb".into()),
        R::CheckPidSrvid(PidSrvid {
            pid: 99,
            srvid: Srvid(0xAE00_0000_0000_0001),
        }),
        R::VacuumFetch(recbuf()),
        R::DbVacuum(DbVacuum {
            db_id: id,
            full_vacuum_run: true,
        }),
        R::EchoData(EchoData {
            timeout: 10,
            buf: b"echo".to_vec(),
        }),
    ]
}

/// One sample of every typed reply.
fn replies() -> Vec<ControlReply> {
    use ControlReply as P;
    let id = DbId(0xdead_beef);
    let nodes = NodeMap(vec![
        NodeAndFlags {
            pnn: Pnn(0),
            flags: 0,
            addr: v4("127.0.0.1:4379"),
        },
        NodeAndFlags {
            pnn: Pnn(1),
            flags: NODE_FLAGS_DISCONNECTED | NODE_FLAGS_DELETED,
            addr: SockAddr::Other([0; 28]),
        },
    ]);
    let mut tunables = TunableList::default();
    for (i, v) in tunables.0.iter_mut().enumerate() {
        *v = i as u32 * 3;
    }
    vec![
        P::Statistics(statistics()),
        P::GetDbPath("/var/lib/ctdb/volatile/x.tdb.0".into()),
        P::GetVnnMap(VnnMap {
            generation: Generation(5),
            map: vec![Pnn(0)],
        }),
        P::GetDebug(3),
        P::GetDbMap(DbMap(vec![
            DbIdEntry {
                db_id: id,
                flags: DB_FLAGS_PERSISTENT,
            },
            DbIdEntry {
                db_id: DbId(1),
                flags: 0,
            },
        ])),
        P::DbAttach(id),
        P::GetDbName("x.tdb".into()),
        P::DumpMemory(PlainText("full talloc report\n".into())),
        P::GetTunable(60),
        P::ListTunables(VarList(vec![
            "SeqnumInterval".into(),
            "ControlTimeout".into(),
        ])),
        P::GetAllTunables(tunables),
        P::GetTcpTickleList(TickleList {
            addr: v4("10.99.0.1:0"),
            connections: vec![connection()],
        }),
        P::DbAttachPersistent(id),
        P::Uptime(Uptime {
            current_time: Timeval { sec: 100, usec: 1 },
            ctdbd_start_time: Timeval { sec: 50, usec: 2 },
            last_recovery_started: Timeval { sec: 60, usec: 3 },
            last_recovery_finished: Timeval { sec: 61, usec: 4 },
        }),
        P::TryDeleteRecords(recbuf()),
        P::GetCapabilities(CAP_DEFAULT),
        P::GetPublicIps(PublicIpList(vec![
            PublicIp {
                pnn: Pnn::UNKNOWN,
                addr: v4("10.99.0.2:0"),
            },
            PublicIp {
                pnn: Pnn(0),
                addr: v4("10.99.0.1:0"),
            },
        ])),
        P::GetNodeMap(nodes.clone()),
        P::GetReclockFile(Some("/run/lock".into())),
        P::GetBanState(BanState {
            pnn: Pnn(0),
            time: 0,
        }),
        P::GetDbSeqnum(0x1_0000_0002),
        P::DbGetHealth(Some("corrupt".into())),
        P::GetPublicIpInfo(PublicIpInfo {
            ip: PublicIp {
                pnn: Pnn::UNKNOWN,
                addr: v4("10.99.0.1:0"),
            },
            active_idx: u32::MAX,
            ifaces: IfaceList(vec![iface("lo"), iface("seventeen-chars-x")]),
        }),
        P::GetIfaces(IfaceList(vec![iface("eth0")])),
        P::GetStatHistory(StatisticsList(vec![statistics(), Statistics::default()])),
        P::GetDbStatistics(db_statistics()),
        P::GetRunState(RunState::Running),
        P::GetNodesFile(nodes),
        P::DbPull(12),
        P::DbPushConfirm(13),
        P::DbOpenFlags(0x1041),
        P::DbAttachReplicated(id),
        P::EchoData(EchoData {
            timeout: 0,
            buf: vec![1, 2, 3],
        }),
    ]
}

#[test]
fn every_typed_request_round_trips() {
    let samples = requests();
    let mut covered = BTreeSet::new();
    for req in &samples {
        let op = req.opcode();
        let bytes = req.to_bytes();
        let back = ControlRequest::decode(op, &bytes)
            .unwrap_or_else(|e| panic!("{op}: {e} decoding {bytes:02x?}"));
        assert_eq!(&back, req, "{op}");
        assert_eq!(back.to_bytes(), bytes, "{op}");
        covered.insert(op.to_u32());
        // A payload cut anywhere is refused (an empty optional string
        // aside), and one byte too many is refused too.
        for cut in 1..bytes.len() {
            assert!(
                ControlRequest::decode(op, &bytes[..cut]).is_err(),
                "{op}: prefix of {cut} bytes accepted"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(
            ControlRequest::decode(op, &long).is_err(),
            "{op}: trailing byte accepted"
        );
    }
    // Every opcode that has a typed layout has a sample above.
    for op in ControlOpcode::ALL {
        let typed = !matches!(
            ControlRequest::decode(*op, &[]),
            Ok(ControlRequest::Other { .. })
        );
        assert_eq!(typed, covered.contains(&op.to_u32()), "{op}");
    }
    assert!(samples.len() > 100, "{} samples", samples.len());
}

#[test]
fn every_typed_reply_round_trips() {
    let samples = replies();
    let mut covered = BTreeSet::new();
    for rep in &samples {
        let op = rep.opcode().expect("typed reply");
        let bytes = rep.to_bytes();
        let back = ControlReply::decode(op, &bytes)
            .unwrap_or_else(|e| panic!("{op}: {e} decoding {bytes:02x?}"));
        assert_eq!(&back, rep, "{op}");
        assert_eq!(back.to_bytes(), bytes, "{op}");
        covered.insert(op.to_u32());
        if op == ControlOpcode::DumpMemory {
            // Unterminated text: every prefix is text too.
            continue;
        }
        for cut in 1..bytes.len() {
            assert!(
                ControlReply::decode(op, &bytes[..cut]).is_err(),
                "{op}: prefix of {cut} bytes accepted"
            );
        }
    }
    for op in ControlOpcode::ALL {
        let typed = ControlReply::decode(*op, &[]).map_or(true, |r| r.opcode().is_some());
        assert_eq!(typed, covered.contains(&op.to_u32()), "{op}");
    }
    // Untyped replies keep their bytes.
    assert_eq!(
        ControlReply::decode(ControlOpcode::Ping, &[]),
        Ok(ControlReply::Empty)
    );
    assert_eq!(
        ControlReply::decode(ControlOpcode::Unknown(9999), &[1, 2]),
        Ok(ControlReply::Other(vec![1, 2]))
    );
}

#[test]
fn unknown_and_obsolete_controls_survive_as_raw_data() {
    for op in [ControlOpcode::Unknown(9999), ControlOpcode::PullDb] {
        let r = ControlRequest::decode(op, &[1, 2, 3]).unwrap();
        assert_eq!(
            r,
            ControlRequest::Other {
                opcode: op,
                data: vec![1, 2, 3]
            }
        );
        assert_eq!(r.opcode(), op);
        assert_eq!(r.to_bytes(), vec![1, 2, 3]);
    }
}

#[test]
fn request_layouts_have_samba_sizes() {
    let sizes: &[(ControlRequest, usize)] = &[
        (ControlRequest::TcpClient(connection()), 56),
        (
            ControlRequest::GetDbSeqnum(DbIdPadded { db_id: DbId(1) }),
            8,
        ),
        (
            ControlRequest::TraverseStartExt(TraverseStartExt::default()),
            24,
        ),
        (ControlRequest::TraverseStart(TraverseStart::default()), 16),
        (
            ControlRequest::TraverseAllExt(TraverseAllExt::default()),
            32,
        ),
        (ControlRequest::CheckPidSrvid(PidSrvid::default()), 12),
        (ControlRequest::DbVacuum(DbVacuum::default()), 5),
        (ControlRequest::GetPublicIpInfo(v4("1.2.3.4:5")), 28),
        (ControlRequest::DbAttach("ab".into()), 3),
    ];
    for (req, len) in sizes {
        assert_eq!(req.to_bytes().len(), *len, "{}", req.opcode());
    }
    assert_eq!(iface("x").to_bytes().len(), 24);
    assert_eq!(
        ControlReply::GetAllTunables(TunableList::default())
            .to_bytes()
            .len(),
        4 * TUNABLE_COUNT
    );
    let v4_bytes = v4("127.0.0.1:4379").to_bytes();
    assert_eq!(&v4_bytes[..8], &[2, 0, 0x11, 0x1b, 127, 0, 0, 1]);
    assert!(v4_bytes[8..].iter().all(|b| *b == 0));
    let ks = KeyData {
        db_id: DbId(1),
        header: LtdbHeader::default(),
        key: b"k".to_vec(),
    }
    .to_bytes();
    assert_eq!(ks.len(), 4 + 4 + 24 + 4 + 1);
}

fn header(reqid: u32) -> Header {
    Header {
        length: 0,
        generation: Generation(99),
        operation: Operation::ReqCall,
        destnode: Pnn::CURRENT_NODE,
        srcnode: Pnn(0),
        reqid,
    }
}

fn packets() -> Vec<Packet> {
    vec![
        Packet::ReqCall(ReqCall {
            flags: 1,
            db_id: DbId(0x8812_7240),
            callid: 0xFF00_0002,
            hopcount: 0,
            key: b"k1".to_vec(),
            calldata: vec![],
        }),
        Packet::ReplyCall(ReplyCall {
            status: 0,
            data: b"data".to_vec(),
        }),
        Packet::ReqDmaster(ReqDmaster {
            db_id: DbId(3),
            rsn: 17,
            dmaster: Pnn(1),
            key: b"key".to_vec(),
            data: vec![7; 30],
            record_flags: Some(REC_FLAG_MIGRATED_WITH_DATA),
        }),
        Packet::ReplyDmaster(ReplyDmaster {
            db_id: DbId(3),
            rsn: 18,
            key: b"key".to_vec(),
            data: vec![],
            record_flags: Some(0),
        }),
        Packet::ReqDmaster(ReqDmaster {
            db_id: DbId(3),
            rsn: 19,
            dmaster: Pnn(0),
            key: b"k".to_vec(),
            data: vec![1],
            record_flags: None,
        }),
        Packet::ReplyError(ReplyError {
            status: -1,
            msg: b"no\0".to_vec(),
        }),
        Packet::ReqMessage(ReqMessage {
            srvid: Srvid::LEADER,
            data: 0u32.to_le_bytes().to_vec(),
        }),
        Packet::ReqControl(ReqControl {
            opcode: ControlOpcode::GetTunable,
            srvid: Srvid(0),
            client_id: 0,
            flags: 0,
            data: ControlRequest::GetTunable(CountedString("X".into())).to_bytes(),
        }),
        Packet::ReplyControl(ReplyControl::ok(vec![1, 2, 3, 4])),
        Packet::ReplyControl(ReplyControl::error(-1, "unknown control")),
        Packet::ReplyControl(ReplyControl::status(5)),
        Packet::ReqKeepalive(ReqKeepalive {
            version: 1,
            uptime: 50,
        }),
        Packet::ReqTunnel(ReqTunnel {
            tunnel_id: 0xffff_ffff_0000_0000,
            flags: 1,
            data: b"tun".to_vec(),
        }),
    ]
}

#[test]
fn every_packet_round_trips_padded_to_eight() {
    for (i, p) in packets().into_iter().enumerate() {
        let bytes = p.encode(header(i as u32));
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(frame_length(&bytes), Ok(Some(bytes.len())));
        let (h, back) = Packet::decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(h.length as usize, bytes.len());
        assert_eq!(h.operation, p.operation());
        assert_eq!(h.reqid, i as u32);
        assert_eq!(h.generation, Generation(99));
        assert_eq!(back.encode(h), bytes);
        for cut in HEADER_LEN..bytes.len() {
            assert_eq!(frame_length(&bytes[..cut]), Ok(None));
        }
    }
}

#[test]
fn reply_control_layout() {
    let p = Packet::ReplyControl(ReplyControl::ok(vec![1, 2, 3, 4]));
    let b = p.encode(header(7));
    assert_eq!(b.len(), 48);
    assert_eq!(
        &b[32..48],
        &[0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
    );
    let e = ReplyControl::error(-1, "nope").to_bytes();
    assert_eq!(
        e,
        [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 5, 0, 0, 0, b'n', b'o', b'p', b'e', 0]
    );
}

/// A burst of many packets read in one chunk comes out packet by packet,
/// each in a vector of its own size (not one holding the whole burst's
/// allocation), with a partial packet at the end kept for later.
#[test]
fn a_burst_splits_into_exactly_sized_packets() {
    let one = packets()[5].encode(header(3));
    let mut burst = Vec::new();
    for _ in 0..3000 {
        burst.extend_from_slice(&one);
    }
    burst.extend_from_slice(&one[..7]);
    let mut f = Framer::new();
    f.push(&burst);
    for i in 0..3000 {
        let p = f
            .next_packet()
            .unwrap()
            .unwrap_or_else(|| panic!("packet {i}"));
        assert_eq!(p, one);
        assert!(
            p.capacity() < 2 * one.len(),
            "packet {i} holds {}",
            p.capacity()
        );
    }
    assert_eq!(f.next_packet(), Ok(None));
    assert_eq!(f.buffered(), 7);
    f.push(&one[7..]);
    assert_eq!(f.next_packet(), Ok(Some(one.clone())));
    assert_eq!(f.buffered(), 0);
}

/// A reader that hands out its bytes at most `step` at a time.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Packets read from a stream come out whole whatever the read sizes; a
/// packet longer than a read chunk comes out in a buffer of its own size.
#[test]
fn reads_split_into_packets_and_large_ones_come_whole() {
    let small = packets()[0].encode(header(1));
    let large = Packet::ReqMessage(ReqMessage {
        srvid: Srvid(7),
        data: (0..300_000u32).map(|i| i as u8).collect(),
    })
    .encode(header(2));
    let mut stream = Vec::new();
    for p in [&small, &large, &small, &large, &large, &small] {
        stream.extend_from_slice(p);
    }
    for step in [1, 7, 4096, 70_000, 1 << 20] {
        let mut r = Trickle {
            bytes: stream.clone(),
            at: 0,
            step,
        };
        let mut f = Framer::new();
        let mut got = Vec::new();
        while f.read_from(&mut r).unwrap() > 0 {
            while let Some(p) = f.next_packet().unwrap() {
                got.push(p);
            }
        }
        assert_eq!(got.len(), 6, "step {step}");
        for (p, want) in got
            .iter()
            .zip([&small, &large, &small, &large, &large, &small])
        {
            assert_eq!(p, want, "step {step}");
            assert!(
                p.capacity() < 2 * p.len().max(64),
                "step {step}: capacity {}",
                p.capacity()
            );
        }
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn framing_refuses_bad_streams_and_splits_good_ones() {
    let a = packets()[0].encode(header(1));
    let b = packets()[5].encode(header(2));
    let mut f = Framer::new();
    f.push(&a[..10]);
    assert_eq!(f.next_packet(), Ok(None));
    f.push(&a[10..]);
    f.push(&b);
    assert_eq!(f.next_packet(), Ok(Some(a.clone())));
    assert_eq!(f.next_packet(), Ok(Some(b.clone())));
    assert_eq!(f.next_packet(), Ok(None));
    assert_eq!(f.buffered(), 0);

    assert_eq!(frame_length(&[]), Ok(None));
    assert_eq!(frame_length(&[40, 0]), Ok(None));
    assert_eq!(
        frame_length(&8u32.to_le_bytes()),
        Err(DecodeError::BadLength(8))
    );
    let huge = (MAX_PACKET as u32 + 1).to_le_bytes();
    assert!(matches!(
        frame_length(&huge),
        Err(DecodeError::BadLength(_))
    ));
    let mut bad = a.clone();
    bad[4] = 0;
    assert!(matches!(frame_length(&bad), Err(DecodeError::BadMagic(_))));
    assert!(matches!(
        Packet::decode(&bad),
        Err(DecodeError::BadMagic(_))
    ));
    let mut bad = a.clone();
    bad[8] = 2;
    assert_eq!(frame_length(&bad), Err(DecodeError::BadVersion(2)));
    let mut bad = a.clone();
    bad[16] = 6;
    assert_eq!(Packet::decode(&bad), Err(DecodeError::UnknownOperation(6)));
    // Up to 15 bytes past the body are Samba's struct-sized padding; 16 are not.
    let mut padded = a.clone();
    padded.extend_from_slice(&[0; 8]);
    padded[0] = padded.len() as u8;
    assert_eq!(Packet::decode(&padded).unwrap().1, packets()[0]);
    let mut long = a.clone();
    long.extend_from_slice(&[0; 16]);
    assert!(matches!(
        Packet::decode(&long),
        Err(DecodeError::LengthMismatch { .. })
    ));
    long[0] = long.len() as u8;
    assert!(matches!(
        Packet::decode(&long),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

/// A burst of packets read in one go: each packet comes out sized to
/// itself (not holding the stream buffer's capacity, which made a 3000-record
/// catdb cost its collector hundreds of MiB), in order, and the framer gives
/// back the burst's space once it is drained.
#[test]
fn framed_packets_own_only_their_bytes_and_a_burst_is_given_back() {
    let pkts: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| packets()[(i % 4) as usize].encode(header(i)))
        .collect();
    let stream: Vec<u8> = pkts.concat();
    let mut f = Framer::new();
    for chunk in stream.chunks(65536) {
        f.push(chunk);
    }
    // A packet cut in two stays buffered across the burst's end.
    let tail = packets()[1].encode(header(9999));
    f.push(&tail[..20]);
    assert!(f.capacity() >= stream.len());
    let mut held = 0;
    for want in &pkts {
        let got = f.next_packet().unwrap().unwrap();
        assert_eq!(&got, want);
        assert_eq!(got.capacity(), got.len(), "a packet owns only its bytes");
        held += got.capacity();
    }
    assert_eq!(held, stream.len());
    assert_eq!(f.next_packet(), Ok(None));
    assert_eq!(f.buffered(), 20);
    f.push(&tail[20..]);
    assert_eq!(f.next_packet(), Ok(Some(tail)));
    assert_eq!(f.buffered(), 0);
    assert!(
        f.capacity() <= FRAMER_KEPT_CAPACITY,
        "a drained framer keeps {} bytes",
        f.capacity()
    );
}

/// xorshift64*: a fixed sequence, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Random bytes of random lengths, plus mutations of valid encodings
/// (small length fields make the random ones reach deeper).
fn random_inputs(rng: &mut Rng, valid: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for _ in 0..40 {
        let n = (rng.next() % 96) as usize;
        v.push(rng.bytes(n));
    }
    for _ in 0..40 {
        let mut m = valid.to_vec();
        if !m.is_empty() {
            let flips = 1 + rng.next() % 4;
            for _ in 0..flips {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
        }
        let keep = (rng.next() as usize) % (m.len() + 2);
        m.truncate(keep);
        v.push(m);
    }
    v
}

#[test]
fn random_bytes_never_panic_and_what_decodes_re_encodes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let reqs = requests();
    let reps = replies();
    let mut ops: Vec<ControlOpcode> = ControlOpcode::ALL.to_vec();
    ops.extend([0u32, 2, 12, 159, 9999, u32::MAX].map(ControlOpcode::from_u32));
    let mut decoded = 0usize;
    for op in ops {
        let valid_req = reqs
            .iter()
            .find(|r| r.opcode() == op)
            .map(ControlRequest::to_bytes)
            .unwrap_or_default();
        let valid_rep = reps
            .iter()
            .find(|r| r.opcode() == Some(op))
            .map(ControlReply::to_bytes)
            .unwrap_or_default();
        for input in random_inputs(&mut rng, &valid_req) {
            if let Ok(r) = ControlRequest::decode(op, &input) {
                decoded += 1;
                let again = r.to_bytes();
                let r2 = ControlRequest::decode(op, &again).expect("re-decode");
                assert_eq!(r2.to_bytes(), again, "{op}");
            }
        }
        for input in random_inputs(&mut rng, &valid_rep) {
            if let Ok(r) = ControlReply::decode(op, &input) {
                decoded += 1;
                let again = r.to_bytes();
                let r2 = ControlReply::decode(op, &again).expect("re-decode");
                assert_eq!(r2.to_bytes(), again, "{op}");
            }
        }
    }
    // Whole packets: random bodies behind valid headers of every operation.
    for (i, p) in packets().into_iter().enumerate() {
        let valid = p.encode(header(i as u32));
        for input in random_inputs(&mut rng, &valid) {
            let _ = frame_length(&input);
            if let Ok((h, p)) = Packet::decode(&input) {
                decoded += 1;
                let again = p.encode(h);
                assert_eq!(Packet::decode(&again).unwrap().1, p);
            }
        }
        for n in [0usize, 3, 20, 100] {
            let mut body = rng.bytes(n);
            let mut h = header(0);
            h.operation = p.operation();
            let mut pkt = Vec::new();
            h.encode(&mut pkt);
            pkt.append(&mut body);
            let len = pkt.len() as u32;
            pkt[..4].copy_from_slice(&len.to_le_bytes());
            let _ = Packet::decode(&pkt);
        }
    }
    assert!(decoded > 100, "only {decoded} random inputs decoded");
}

#[test]
fn absurd_length_fields_do_not_allocate() {
    // A record buffer claiming 4 billion records and a blob claiming 4 GiB:
    // both fail on the bytes actually present.
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(RecBuffer::decode(&b).is_err());
    let mut m = Vec::new();
    m.extend_from_slice(&7u64.to_le_bytes());
    m.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ReqMessage::decode(&m),
        Err(DecodeError::Truncated { .. })
    ));
    // The first hot key's size word says 4 GiB; only the fixed part is there.
    let mut s = vec![0u8; 464];
    s[240..248].copy_from_slice(&u64::from(u32::MAX).to_le_bytes());
    assert!(matches!(
        ControlReply::decode(ControlOpcode::GetDbStatistics, &s),
        Err(DecodeError::Truncated { .. })
    ));
    s[240..248].copy_from_slice(&0u64.to_le_bytes());
    assert!(ControlReply::decode(ControlOpcode::GetDbStatistics, &s).is_ok());
}

fn messages() -> Vec<ctdb_protocol::messages::Message> {
    use ctdb_protocol::messages::{DisableMessage, ElectionMessage, Message as M, SrvidMessage};
    let flags = NodeFlagChange {
        pnn: Pnn(1),
        new_flags: NODE_FLAGS_DISABLED,
        old_flags: 0,
    };
    let reply_to = SrvidMessage {
        pnn: Pnn(0),
        srvid: Srvid(0xCE00_0000_0000_0042),
    };
    let disable = DisableMessage {
        pnn: Pnn(0),
        srvid: Srvid(7),
        timeout: 60,
    };
    vec![
        M::Banning(Pnn(2)),
        M::Election(ElectionMessage {
            num_connected: 3,
            priority_time: Timeval { sec: 1000, usec: 1 },
            pnn: Pnn(1),
            node_flags: 0,
        }),
        M::Leader(Pnn(0)),
        M::Reconfigure,
        M::ReleaseIp("10.99.0.1".into()),
        M::TakeIp("10.99.0.2".into()),
        M::SetNodeFlags(flags),
        M::RecdUpdateIp(PublicIp {
            pnn: Pnn(1),
            addr: v4("10.99.0.1:0"),
        }),
        M::VacuumFetch(recbuf()),
        M::DetachDatabase(DbId(5)),
        M::MemDump(reply_to),
        M::GetLog,
        M::ClearLog,
        M::PushNodeFlags(flags),
        M::ReloadNodes,
        M::TakeoverRun(reply_to),
        M::RebalanceNode(Pnn(1)),
        M::DisableTakeoverRuns(disable),
        M::DisableRecoveries(disable),
        M::DisableIpCheck(30),
    ]
}

#[test]
fn every_typed_message_round_trips_and_survives_garbage() {
    use ctdb_protocol::messages::Message;
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let samples = messages();
    let srvids: BTreeSet<u64> = samples.iter().map(|m| m.srvid().unwrap().0).collect();
    assert_eq!(srvids.len(), samples.len(), "one sample per srvid");
    for m in &samples {
        let srvid = m.srvid().unwrap();
        let bytes = m.to_bytes();
        assert_eq!(Message::decode(srvid, &bytes).as_ref(), Ok(m), "{srvid}");
        for cut in 1..bytes.len() {
            assert!(
                Message::decode(srvid, &bytes[..cut]).is_err(),
                "{srvid} cut {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(1);
        assert!(Message::decode(srvid, &long).is_err(), "{srvid} long");
        for input in random_inputs(&mut rng, &bytes) {
            if let Ok(d) = Message::decode(srvid, &input) {
                assert_eq!(Message::decode(srvid, &d.to_bytes()), Ok(d));
            }
        }
    }
    assert_eq!(
        Message::decode(Srvid(0xAE00_0000_0000_0001), b"anything"),
        Ok(Message::Other(b"anything".to_vec()))
    );
    assert_eq!(
        ctdb_protocol::messages::ElectionMessage::default()
            .to_bytes()
            .len(),
        32
    );
}

#[test]
fn standalone_layouts_round_trip() {
    let pull = PullDb {
        db_id: DbId(7),
        lmaster: LMASTER_ANY,
    };
    assert_eq!(pull.to_bytes().len(), 8);
    assert_eq!(PullDb::decode(&pull.to_bytes()), Ok(pull));
    let h = Header {
        length: 64,
        generation: Generation(5),
        operation: Operation::Unknown(77),
        destnode: Pnn::BROADCAST_CONNECTED,
        srcnode: Pnn(1),
        reqid: 9,
    };
    let b = h.to_bytes();
    assert_eq!(b.len(), HEADER_LEN);
    assert_eq!(&b[4..12], &[0x42, 0x44, 0x54, 0x43, 1, 0, 0, 0]);
    assert_eq!(Header::decode(&b), Ok(h));
    assert!(Pnn::BROADCAST_CONNECTED.is_broadcast());
    assert!(!Pnn(0).is_broadcast());
    for rs in 0..7u32 {
        let r = RunState::try_from(rs).unwrap();
        assert_eq!(RunState::decode(&r.to_bytes()), Ok(r));
    }
    assert_eq!(RunState::Running.name(), "RUNNING");
    assert!(RunState::try_from(7).is_err());
}
