//! The event daemon protocol against bytes captured from Debian's
//! `ctdb-event` tool (requests) and `ctdb-eventd` (replies), recorded by
//! tests/event_capture.sh into fixtures/eventd/debian-4.17.txt: every packet decodes,
//! encodes back to the same bytes, and the decoded values are the ones the
//! capture's commands produced.

use ctdb_protocol::event::{
    decode_reply, decode_request, encode_reply, encode_request, frame_length, EventCommand,
    EventReply, EventRequest, RunRequest, StatusRequest, RUN_ALL,
};

/// (direction, bytes) of every packet in the fixture file.
fn packets() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eventd/debian-4.17.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.to_string(), bytes)
        })
        .collect()
}

#[test]
fn every_captured_packet_decodes_and_encodes_to_the_same_bytes() {
    let all = packets();
    assert_eq!(all.len(), 22);
    for (dir, bytes) in &all {
        assert_eq!(frame_length(bytes).unwrap(), Some(bytes.len()));
        if dir == "c2d" {
            let (h, req) = decode_request(bytes).unwrap();
            assert_eq!(h.version, 0);
            assert_eq!(&encode_request(h.reqid, &req), bytes);
        } else {
            let (h, reply) = decode_reply(bytes).unwrap();
            assert_eq!(h.version, 0);
            assert_eq!(&encode_reply(h.reqid, &reply), bytes);
        }
    }
}

#[test]
fn captured_values_are_what_the_tool_asked_and_the_daemon_answered() {
    let all = packets();
    let req = |i: usize| decode_request(&all[i].1).unwrap().1;
    let reply = |i: usize| decode_reply(&all[i].1).unwrap().1;
    // status legacy monitor before any run: EINVAL.
    assert_eq!(
        req(0),
        EventRequest::Status(StatusRequest {
            component: "legacy".into(),
            event: "monitor".into()
        })
    );
    assert_eq!(
        reply(1),
        EventReply {
            command: EventCommand::Status,
            result: 22,
            status: None
        }
    );
    // run 10 legacy monitor a b: ENOEXEC (02.fail exits 3).
    assert_eq!(
        req(2),
        EventRequest::Run(RunRequest {
            component: "legacy".into(),
            event: "monitor".into(),
            args: Some("a b".into()),
            timeout: 10,
            flags: 0
        })
    );
    assert_eq!(reply(3).result, 8);
    // status after the failed run: summary 3, both scripts, the output.
    let status = reply(5).status.unwrap();
    assert_eq!(status.summary, 3);
    let names: Vec<_> = status.scripts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["01.ok", "02.fail"]);
    assert_eq!(status.scripts[0].output.as_deref(), Some("ok monitor a\n"));
    assert_eq!(status.scripts[1].result, 3);
    assert_eq!(
        status.scripts[1].output.as_deref(),
        Some("failing monitor a b\n")
    );
    assert!(status.scripts[1].end >= status.scripts[1].begin);
    // CTDB_EVENT_RUN_ALL sets the flag; a run without args sends none.
    let EventRequest::Run(all_run) = req(12) else {
        panic!("not a run")
    };
    assert_eq!(all_run.flags, RUN_ALL);
    let EventRequest::Run(bare) = req(14) else {
        panic!("not a run")
    };
    assert_eq!((bare.args, bare.timeout), (None, 5));
    // A component without a directory: ENOENT for run and status.
    assert_eq!(reply(19).result, 2);
    assert_eq!(reply(21).result, 2);
}
