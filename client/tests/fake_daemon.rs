//! The connection against a scripted daemon on a unix socket: replies are
//! matched by reqid whatever their order, a cancelled request reports
//! nothing, a reply nobody waits for is ignored, messages come out as
//! events, and a daemon that closes ends every running request with
//! `Disconnected`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use ctdb_client::{ClientError, Connection, Event, Getter, RequestId};
use ctdb_protocol::packet::{Framer, ReplyControl, ReqMessage};
use ctdb_protocol::{Header, Operation, Packet, Pnn, Srvid};

/// Reads whole packets from the client until `n` arrived.
fn read_packets(s: &mut UnixStream, framer: &mut Framer, n: usize) -> Vec<(Header, Packet)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        while let Some(p) = framer.next_packet().unwrap() {
            out.push(Packet::decode(&p).unwrap());
        }
        if out.len() >= n {
            break;
        }
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "client closed early");
        framer.push(&buf[..k]);
    }
    out
}

fn reply(s: &mut UnixStream, reqid: u32, status: i32) {
    let body = Packet::ReplyControl(ReplyControl::status(status));
    let h = Header::new(Operation::ReplyControl, Pnn(0), Pnn(0), reqid);
    s.write_all(&body.encode(h)).unwrap();
}

/// Services until `done` says so (5 s at most); returns every event.
fn drive(c: &mut Connection, mut done: impl FnMut(&Connection, &[Event]) -> bool) -> Vec<Event> {
    let end = Instant::now() + Duration::from_secs(5);
    let mut events = Vec::new();
    while !done(c, &events) {
        assert!(Instant::now() < end, "timed out; events so far {events:?}");
        let (r, w) = c.poll_once(50);
        events.extend(c.service(r, w));
    }
    events
}

#[test]
fn replies_cancels_messages_and_a_closing_daemon() {
    let dir = std::env::temp_dir().join(format!("ctdb-client-fake-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ctdbd.socket");
    let listener = UnixListener::bind(&path).unwrap();

    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut framer = Framer::new();
        // The connection's own GET_PNN, then three getters.
        let got = read_packets(&mut s, &mut framer, 4);
        let reqids: Vec<u32> = got.iter().map(|(h, _)| h.reqid).collect();
        reply(&mut s, reqids[0], 2);
        // Out of order; the second getter (cancelled) answered too, and a
        // reply for a reqid nobody sent.
        reply(&mut s, reqids[3], 0);
        reply(&mut s, 0x7777, 0);
        reply(&mut s, reqids[2], 5);
        reply(&mut s, reqids[1], 1);
        let msg = Packet::ReqMessage(ReqMessage {
            srvid: Srvid(42),
            data: b"hi".to_vec(),
        });
        let h = Header::new(Operation::ReqMessage, Pnn(0), Pnn(1), 0);
        s.write_all(&msg.encode(h)).unwrap();
        // One more request arrives; the daemon closes without answering.
        read_packets(&mut s, &mut framer, 1);
    });

    let mut c = Connection::connect(&path).unwrap();
    let first = c.get(Pnn::CURRENT_NODE, Getter::Recmode);
    let cancelled = c.get(Pnn::CURRENT_NODE, Getter::Pnn);
    let third = c.get(Pnn::CURRENT_NODE, Getter::Pnn);
    assert_eq!(c.num_out_queue(), 3);
    c.cancel(cancelled);
    let events = drive(&mut c, |c, ev| {
        c.is_done(first)
            && c.is_done(third)
            && ev.iter().any(|e| matches!(e, Event::Message { .. }))
    });
    assert_eq!(c.pnn(), Some(Pnn(2)), "the connection's own GET_PNN");
    assert_eq!(c.recmode_of(first), Ok(1));
    assert_eq!(c.pnn_of(third), Ok(Pnn(0)));
    let completed: Vec<RequestId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Completed(id) => Some(*id),
            _ => None,
        })
        .collect();
    assert!(!completed.contains(&cancelled), "{events:?}");
    assert_eq!(c.result(cancelled), Err(ClientError::UnknownRequest));
    assert!(events.contains(&Event::Message {
        srvid: Srvid(42),
        data: b"hi".to_vec()
    }));
    assert_eq!(c.num_in_flight(), 0);

    let last = c.get(Pnn::CURRENT_NODE, Getter::NodeMap);
    drive(&mut c, |c, _| c.is_broken());
    server.join().unwrap();
    assert_eq!(c.result(last).err(), Some(ClientError::Disconnected));
    assert!(c.service(true, true).is_empty());
    let after = c.get(Pnn::CURRENT_NODE, Getter::Pnn);
    assert_eq!(
        c.result(after).err(),
        Some(ClientError::Disconnected),
        "a request on a broken connection ends at once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
