//! Byte fixtures captured from Debian's ctdb tool (and raw-client probes)
//! talking to Debian's ctdbd 4.17 (tests/capture.sh records them): every
//! packet decodes into typed values and encodes back to the same bytes.
//!
//! Control payloads are decoded with the opcode of their request (paired by
//! connection and reqid); messages to the srvid of a traverse, a DB_PULL or
//! a DB_PUSH_START are decoded as the records they carry, messages to the
//! well-known srvids (leader broadcasts, takeover runs...) by their srvid.
//!
//! Samba 4.17 zero-fills its packet buffers and pushes struct padding as
//! zeros, so every field and padding byte must match.  The one difference
//! allowed: Samba's daemon sizes some packets by their C struct (a 1-byte
//! `data[1]` tail, then alignment), so a packet may be up to 8 bytes longer
//! than the 8-byte-aligned body needs (a REPLY_CALL without data is 48
//! bytes where 40 suffice).  Those extra bytes must be zeros, and the
//! length word is compared against the captured length.

use ctdb_protocol::controls::{ControlReply, ControlRequest};
use ctdb_protocol::ids::Srvid;
use ctdb_protocol::ltdb::{RecBuffer, RecData};
use ctdb_protocol::messages::Message;
use ctdb_protocol::opcode::ControlOpcode;
use ctdb_protocol::packet::Packet;
use ctdb_protocol::wire::Layout;
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

fn check_message(srvid: Srvid, data: &[u8], kinds: &HashMap<u64, MessageKind>, t: &mut Tally) {
    let re_encoded = match kinds.get(&srvid.0) {
        Some(MessageKind::Record) => RecData::decode(data).map(|r| r.to_bytes()),
        Some(MessageKind::RecordBuffer) => RecBuffer::decode(data).map(|r| r.to_bytes()),
        None => match Message::decode(srvid, data) {
            Ok(Message::Other(_)) => return,
            m => m.map(|m| m.to_bytes()),
        },
    };
    let bytes = re_encoded.unwrap_or_else(|e| panic!("message to {srvid}: {e}"));
    assert_eq!(bytes, data, "message to {srvid}");
    t.messages += 1;
}

fn check_request(req: &ControlRequest, data: &[u8], kinds: &mut HashMap<u64, MessageKind>) {
    let op = req.opcode();
    assert!(
        !matches!(req, ControlRequest::Other { .. }),
        "{op}: no typed request layout"
    );
    assert_eq!(req.to_bytes(), data, "{op} request re-encoded");
    match req {
        ControlRequest::TraverseStart(t) => {
            kinds.insert(t.srvid.0, MessageKind::Record);
        }
        ControlRequest::TraverseStartExt(t) => {
            kinds.insert(t.srvid.0, MessageKind::Record);
        }
        ControlRequest::DbPull(p) | ControlRequest::DbPushStart(p) => {
            kinds.insert(p.srvid.0, MessageKind::RecordBuffer);
        }
        _ => {}
    }
}

fn check_file(path: &Path, t: &mut Tally) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut pending: HashMap<(String, u32), ControlOpcode> = HashMap::new();
    let mut kinds: HashMap<u64, MessageKind> = HashMap::new();
    let mut refused: HashMap<(String, u32), String> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        let (dir, conn, bytes) = (
            parts.next().unwrap(),
            parts.next().unwrap().to_string(),
            hex(parts.next().unwrap()),
        );
        let at = format!("{name}:{}", n + 1);
        let (header, packet) = Packet::decode(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
        let again = packet.encode(header);
        let extra = bytes.len().saturating_sub(again.len());
        assert!(
            extra <= 8
                && bytes[again.len().min(bytes.len())..]
                    .iter()
                    .all(|b| *b == 0),
            "{at}: {extra} bytes past the body, or not zeros"
        );
        assert!(
            again[4..] == bytes[4..again.len().min(bytes.len())]
                && header.length as usize == bytes.len(),
            "{at}: re-encoded packet differs: {}",
            first_difference(&again, &bytes)
        );
        if extra > 0 {
            t.oversized += 1;
        }
        t.packets += 1;
        match &packet {
            Packet::ReqControl(c) => {
                assert_eq!(dir, "c2d", "{at}");
                let req = match c.request() {
                    Ok(req) => req,
                    // The raw probes send some payloads malformed on
                    // purpose; Samba must have refused each of them too.
                    Err(e) if name.starts_with("probe-") => {
                        refused.insert((conn, header.reqid), format!("{at}: {} {e}", c.opcode));
                        continue;
                    }
                    Err(e) => panic!("{at}: {} {e}", c.opcode),
                };
                check_request(&req, &c.data, &mut kinds);
                *t.requests.entry(c.opcode.name().to_string()).or_default() += 1;
                pending.insert((conn, header.reqid), c.opcode);
            }
            Packet::ReplyControl(r) => {
                if let Some(why) = refused.remove(&(conn.clone(), header.reqid)) {
                    assert_ne!(r.status, 0, "Samba accepted what we refuse: {why}");
                    t.malformed += 1;
                    continue;
                }
                let op = pending
                    .remove(&(conn, header.reqid))
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
                assert_eq!(reply.to_bytes(), r.data, "{at}: {op} reply re-encoded");
                if reply.opcode().is_some() {
                    *t.typed_replies.entry(op.name().to_string()).or_default() += 1;
                }
            }
            Packet::ReqMessage(m) => check_message(m.srvid, &m.data, &kinds, t),
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
         {} malformed probe requests refused by both",
        t.packets,
        files.len(),
        t.oversized,
        t.messages,
        t.malformed
    );
    // The controls the daemon handles that the battery exercises.
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
    ]
    .into_iter()
    .collect();
    let seen: BTreeSet<&str> = t.requests.keys().map(String::as_str).collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "no fixture for {missing:?}; saw {seen:?}"
    );
    assert!(t.messages > 10, "{} typed messages", t.messages);
    assert!(t.typed_replies.len() > 20, "{:?}", t.typed_replies);
}
