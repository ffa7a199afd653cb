//! Byte fixtures captured from Debian's ctdb tool (and raw-client probes)
//! talking to Debian's ctdbd 4.17 (tests/capture.sh records them), and
//! between the two nodes of a Debian ctdbd cluster (cluster-nodes.txt,
//! tests/cluster_capture.sh): every packet decodes into typed values and
//! encodes back to the same bytes.
//!
//! Control payloads are decoded with the opcode of their request (paired by
//! connection and reqid); messages to the srvid of a traverse, a DB_PULL or
//! a DB_PUSH_START are decoded as the records they carry, messages to the
//! well-known srvids (leader broadcasts, takeover runs...) by their srvid.
//!
//! Every field byte must match.  Padding is compared masked (found by
//! encoding with two padding fills), and the padding bytes a sender left
//! non-zero are counted per layout: the only ones Samba 4.17 leaves unset
//! are the 4 bytes after the count of GET_STAT_HISTORY's
//! `ctdb_statistics_list` (Debian's ctdbd sends stale heap bytes there), and
//! the test fails if any other layout shows unset padding.  Samba's daemon
//! also sizes some packets by their C struct (a 1-byte `data[1]` tail, then
//! alignment), so a packet may be up to 8 bytes longer than its 8-byte
//! aligned body (a REPLY_CALL without data is 48 bytes where 40 suffice);
//! those bytes must be zeros.

use ctdb_protocol::controls::{ControlReply, ControlRequest};
use ctdb_protocol::header::HEADER_LEN;
use ctdb_protocol::ids::Srvid;
use ctdb_protocol::ltdb::{RecBuffer, RecData};
use ctdb_protocol::messages::Message;
use ctdb_protocol::opcode::ControlOpcode;
use ctdb_protocol::packet::Packet;
use ctdb_protocol::wire::{Layout, Writer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What the messages to a srvid carry.
#[derive(Clone, Copy, Debug)]
enum MessageKind {
    Record,
    RecordBuffer,
}

#[derive(Default)]
struct Tally {
    packets: usize,
    oversized: usize,
    malformed: usize,
    operations: BTreeMap<String, usize>,
    unset_padding: BTreeMap<String, usize>,
    requests: BTreeMap<String, usize>,
    typed_replies: BTreeMap<String, usize>,
    messages: usize,
}

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    format!(
        "lengths {} / {}, first difference at {:?}",
        a.len(),
        b.len(),
        at
    )
}

/// Compares captured bytes with a re-encoding, padding masked: `write` is
/// run with padding written as 0x00 and as 0xff, and the bytes where the two
/// differ are padding.  Every other byte must match.  Returns the number of
/// padding bytes the sender left non-zero, which `t` records under `what`.
fn compare_masked(
    what: &str,
    captured: &[u8],
    t: &mut Tally,
    write: impl Fn(&mut Writer<'_>),
) -> Result<(), String> {
    let mut zeros = Vec::new();
    write(&mut Writer::with_padding_fill(&mut zeros, 0x00));
    let mut ones = Vec::new();
    write(&mut Writer::with_padding_fill(&mut ones, 0xff));
    if zeros.len() != captured.len() {
        return Err(format!("{what}: {}", first_difference(&zeros, captured)));
    }
    let mut unset = 0;
    for (i, c) in captured.iter().enumerate() {
        if zeros[i] != ones[i] {
            unset += usize::from(*c != 0);
        } else if zeros[i] != *c {
            return Err(format!("{what}: byte {i} differs ({} / {c})", zeros[i]));
        }
    }
    if unset > 0 {
        *t.unset_padding.entry(what.to_string()).or_default() += unset;
    }
    Ok(())
}

fn check_message(
    srvid: Srvid,
    data: &[u8],
    kinds: &HashMap<u64, MessageKind>,
    t: &mut Tally,
) -> Result<(), String> {
    match kinds.get(&srvid.0) {
        Some(MessageKind::Record) => {
            let r = RecData::decode(data).map_err(|e| format!("record message: {e}"))?;
            compare_masked("ctdb_rec_data message", data, t, |w| r.write(w))?;
        }
        Some(MessageKind::RecordBuffer) => {
            let b = RecBuffer::decode(data).map_err(|e| format!("record buffer message: {e}"))?;
            compare_masked("ctdb_rec_buffer message", data, t, |w| b.write(w))?;
        }
        None => match Message::decode(srvid, data) {
            Ok(Message::Other(_)) => return Ok(()),
            Ok(m) => compare_masked(&format!("message to {srvid}"), data, t, |w| m.write(w))?,
            Err(e) => return Err(format!("message to {srvid}: {e}")),
        },
    }
    t.messages += 1;
    Ok(())
}

fn check_request(req: &ControlRequest, data: &[u8], t: &mut Tally) -> Result<(), String> {
    let op = req.opcode();
    if matches!(req, ControlRequest::Other { .. }) {
        return Err(format!("{op}: no typed request layout"));
    }
    compare_masked(&format!("{} request", op.name()), data, t, |w| req.write(w))
}

/// What the messages to a request's srvid carry, if it starts a traverse or
/// a record transfer.
fn message_kind(req: &ControlRequest) -> Option<(u64, MessageKind)> {
    match req {
        ControlRequest::TraverseStart(t) => Some((t.srvid.0, MessageKind::Record)),
        ControlRequest::TraverseStartExt(t) => Some((t.srvid.0, MessageKind::Record)),
        ControlRequest::DbPull(p) | ControlRequest::DbPushStart(p) => {
            Some((p.srvid.0, MessageKind::RecordBuffer))
        }
        _ => None,
    }
}

/// One captured packet.
struct Captured {
    at: String,
    dir: String,
    conn: String,
    bytes: Vec<u8>,
    header: ctdb_protocol::Header,
    packet: Packet,
}

impl Captured {
    /// Pairs a control reply with its request: on a client connection by
    /// connection and reqid; between nodes (where a reply travels on the
    /// other node's connection) by the requesting node and reqid.
    fn pairing_key(&self) -> (String, u32) {
        let requester = match (&self.packet, self.dir.as_str()) {
            (_, "c2d" | "d2c") => self.conn.clone(),
            (Packet::ReplyControl(_), _) => format!("pnn {}", self.header.destnode),
            _ => format!("pnn {}", self.header.srcnode),
        };
        (requester, self.header.reqid)
    }
}

fn parse_file(path: &Path) -> Vec<Captured> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        let (dir, conn, bytes) = (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
            hex(parts.next().unwrap()),
        );
        let at = format!("{name}:{}", n + 1);
        let (header, packet) = Packet::decode(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
        out.push(Captured {
            at,
            dir,
            conn,
            bytes,
            header,
            packet,
        });
    }
    out
}

/// The header and body re-encode (padding masked); what follows the body
/// is zeros, at most 8 bytes past the 8-byte alignment.
fn check_packet(c: &Captured, t: &mut Tally) {
    let (at, bytes, packet) = (&c.at, &c.bytes, &c.packet);
    let mut body = Vec::new();
    packet.encode_body(&mut body);
    let end = HEADER_LEN + body.len();
    assert!(bytes.len() >= end, "{at}: packet shorter than its body");
    let mut head = Vec::new();
    c.header.encode(&mut head);
    assert_eq!(head, bytes[..HEADER_LEN], "{at}: header re-encoded");
    compare_masked(
        &format!("{:?} packet body", packet.operation()),
        &bytes[HEADER_LEN..end],
        t,
        |w| packet.write_body(w),
    )
    .unwrap_or_else(|e| panic!("{at}: {e}"));
    let aligned = packet.encode(c.header).len();
    let extra = bytes.len().saturating_sub(aligned);
    assert!(
        extra <= 8 && bytes[end..].iter().all(|b| *b == 0),
        "{at}: {extra} bytes past the aligned body, or not zeros"
    );
    if extra > 0 {
        t.oversized += 1;
    }
    t.packets += 1;
    *t.operations
        .entry(format!("{:?}", packet.operation()))
        .or_default() += 1;
}

fn check_file(path: &Path, t: &mut Tally) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let captured = parse_file(path);
    // First pass: the opcode of every request and the srvids that carry
    // records (a reply or a message may come before its request in the
    // file when it travels on another connection).
    let mut opcodes: HashMap<(String, u32), ControlOpcode> = HashMap::new();
    let mut kinds: HashMap<u64, MessageKind> = HashMap::new();
    let mut refused: HashMap<(String, u32), String> = HashMap::new();
    for c in &captured {
        let Packet::ReqControl(rc) = &c.packet else {
            continue;
        };
        assert_ne!(c.dir, "d2c", "{}: request from the daemon", c.at);
        match rc.request() {
            Ok(req) => {
                check_request(&req, &rc.data, t).unwrap_or_else(|e| panic!("{}: {e}", c.at));
                kinds.extend(message_kind(&req));
                *t.requests.entry(rc.opcode.name().to_string()).or_default() += 1;
                opcodes.insert(c.pairing_key(), rc.opcode);
            }
            // The raw probes send some payloads malformed on purpose;
            // Samba must have refused each of them too.
            Err(e) if name.starts_with("probe-") => {
                refused.insert(c.pairing_key(), format!("{}: {} {e}", c.at, rc.opcode));
            }
            Err(e) => panic!("{}: {} {e}", c.at, rc.opcode),
        }
    }
    for c in &captured {
        check_packet(c, t);
        let at = &c.at;
        match &c.packet {
            Packet::ReplyControl(r) => {
                if let Some(why) = refused.remove(&c.pairing_key()) {
                    assert_ne!(r.status, 0, "Samba accepted what we refuse: {why}");
                    t.malformed += 1;
                    continue;
                }
                let op = *opcodes
                    .get(&c.pairing_key())
                    .unwrap_or_else(|| panic!("{at}: reply without request"));
                if r.status != 0 && r.data.is_empty() {
                    continue;
                }
                let reply = r
                    .reply(op)
                    .unwrap_or_else(|e| panic!("{at}: {op} reply {e}"));
                assert!(
                    !matches!(reply, ControlReply::Other(_)),
                    "{at}: {op} reply data without a typed layout"
                );
                compare_masked(&format!("{} reply", op.name()), &r.data, t, |w| {
                    reply.write(w)
                })
                .unwrap_or_else(|e| panic!("{at}: {e}"));
                if reply.opcode().is_some() {
                    *t.typed_replies.entry(op.name().to_string()).or_default() += 1;
                }
            }
            Packet::ReqMessage(m) => {
                check_message(m.srvid, &m.data, &kinds, t).unwrap_or_else(|e| panic!("{at}: {e}"))
            }
            _ => {}
        }
    }
}

#[test]
fn debian_fixtures_decode_and_re_encode_byte_for_byte() {
    let files = fixture_files();
    assert!(files.len() >= 50, "only {} fixture files", files.len());
    let mut t = Tally::default();
    for f in &files {
        check_file(f, &mut t);
    }
    assert!(t.packets > 1000, "{} packets", t.packets);
    eprintln!(
        "{} packets in {} files, {} longer than their aligned body, {} typed messages, \
         {} malformed probe requests refused by both, {} controls, operations {:?}",
        t.packets,
        files.len(),
        t.oversized,
        t.messages,
        t.malformed,
        t.requests.len(),
        t.operations
    );
    // The controls the battery exercises: most of those the daemon handles
    // today, and the node-state controls the cluster work needs.
    let expected: BTreeSet<&str> = [
        "PROCESS_EXISTS",
        "STATISTICS",
        "PING",
        "GETDBPATH",
        "GETVNNMAP",
        "GET_DEBUG",
        "SET_DEBUG",
        "GET_DBMAP",
        "GET_RECMODE",
        "STATISTICS_RESET",
        "DB_ATTACH",
        "DB_ATTACH_PERSISTENT",
        "DB_ATTACH_REPLICATED",
        "TRAVERSE_START_EXT",
        "REGISTER_SRVID",
        "DEREGISTER_SRVID",
        "GET_DBNAME",
        "GET_PID",
        "GET_PNN",
        "SET_TUNABLE",
        "GET_TUNABLE",
        "LIST_TUNABLES",
        "UPTIME",
        "GET_CAPABILITIES",
        "GET_PUBLIC_IPS",
        "GET_NODEMAP",
        "TRANS3_COMMIT",
        "GET_DB_SEQNUM",
        "DB_GET_HEALTH",
        "GET_PUBLIC_IP_INFO",
        "GET_IFACES",
        "SET_DB_READONLY",
        "GET_DB_STATISTICS",
        "SET_DB_STICKY",
        "GET_RUNSTATE",
        "DB_DETACH",
        "DB_FREEZE",
        "DB_THAW",
        "DB_TRANSACTION_START",
        "DB_TRANSACTION_COMMIT",
        "WIPE_DATABASE",
        "DB_PUSH_START",
        "DB_PUSH_CONFIRM",
        "DB_OPEN_FLAGS",
        "CHECK_PID_SRVID",
        "ENABLE_SEQNUM",
        "TCP_CLIENT",
        "REGISTER_NOTIFY",
        "DEREGISTER_NOTIFY",
        "UPDATE_SEQNUM",
        "SCHEDULE_FOR_DELETION",
        "DB_SET_HEALTHY",
        "GET_NODES_FILE",
        "SHUTDOWN",
        // Node state and cluster controls.
        "SET_RECMODE",
        "GET_STAT_HISTORY",
        "SET_IFACE_LINK_STATE",
        "TCP_ADD_DELAYED_UPDATE",
        "TCP_REMOVE",
        "GET_TCP_TICKLE_LIST",
        "SET_LMASTERROLE",
        "SET_RECMASTERROLE",
        "SET_BAN_STATE",
        "DISABLE_NODE",
        "ENABLE_NODE",
        "STOP_NODE",
        "CONTINUE_NODE",
        "GET_RECLOCK_FILE",
        "DUMP_MEMORY",
        // Between the nodes of the two-node cluster (cluster_capture.sh).
        "SETVNNMAP",
        "DB_PULL",
        "TRAVERSE_ALL",
        "TRAVERSE_DATA",
        "MODIFY_FLAGS",
        "START_RECOVERY",
        "END_RECOVERY",
        "UPDATE_RECORD",
        "IPREALLOCATED",
        "STARTUP",
    ]
    .into_iter()
    .collect();
    let seen: BTreeSet<&str> = t.requests.keys().map(String::as_str).collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "no fixture for {missing:?}; saw {seen:?}"
    );
    eprintln!(
        "padding bytes left non-zero by the sender: {:?}",
        t.unset_padding
    );
    for layout in t.unset_padding.keys() {
        assert_eq!(
            layout, "GET_STAT_HISTORY reply",
            "unset padding in {layout}"
        );
    }
    assert!(t.messages > 10, "{} typed messages", t.messages);
    for op in [
        "ReqCall",
        "ReplyCall",
        "ReqDmaster",
        "ReplyDmaster",
        "ReqKeepalive",
    ] {
        assert!(
            t.operations.contains_key(op),
            "no {op} in {:?}",
            t.operations
        );
    }
    assert!(t.typed_replies.len() > 20, "{:?}", t.typed_replies);
}

#[test]
fn masked_comparison_masks_padding_only() {
    use ctdb_protocol::statistics::{Statistics, StatisticsList};
    let list = StatisticsList(vec![Statistics {
        num_clients: 2,
        ..Default::default()
    }]);
    let good = list.to_bytes();
    let mut t = Tally::default();
    assert_eq!(
        compare_masked("x", &good, &mut t, |w| list.write(w)),
        Ok(())
    );
    assert!(t.unset_padding.is_empty());
    // Bytes 4..8 are the padding after the count; byte 8 is num_clients.
    let mut stale = good.clone();
    stale[5] = 0x74;
    assert_eq!(
        compare_masked("x", &stale, &mut t, |w| list.write(w)),
        Ok(())
    );
    assert_eq!(t.unset_padding.get("x"), Some(&1));
    let mut wrong = good.clone();
    wrong[8] = 3;
    assert!(compare_masked("x", &wrong, &mut t, |w| list.write(w)).is_err());
    assert!(compare_masked("x", &good[1..], &mut t, |w| list.write(w)).is_err());
}
