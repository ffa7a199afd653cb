//! Dispatch: what a whole packet means.  Its header is checked, its origin
//! decides its source node, and it goes to the control registry, the
//! message delivery or the record calls.  Replies go back to the origin.

use crate::control::{Outcome, Request};
use crate::daemon::Daemon;
use crate::forward::Route;
use crate::transport::{ClientId, Origin};
use crate::{log_err, log_notice};
use ctdb_protocol::header::HEADER_LEN;
use ctdb_protocol::packet::{
    ReplyCall, ReplyControl, ReplyDmaster, ReplyError, ReqCall, ReqControl, ReqDmaster, ReqMessage,
};
use ctdb_protocol::wire::Reader;
use ctdb_protocol::{Header, Layout, Operation, Packet, Pnn};

impl Daemon {
    /// Reads a client socket and handles each whole packet in turn; a
    /// malformed packet closes the client and drops what follows it.
    pub(crate) fn client_readable(&mut self, id: ClientId) {
        let received = self.transport.read(id);
        for pkt in received.packets {
            // Counted once when read (a call held back by a freeze is
            // replayed later through `packet` without being counted again).
            self.count_client_packet(&pkt);
            if let Err(why) = self.packet(Origin::Client(id), &pkt) {
                log_err!(
                    "Malformed packet from client pid:{}: {}, closing it",
                    self.transport.pid(id),
                    why
                );
                self.transport.close(id, "malformed packet");
                break;
            }
            self.execute_actions();
        }
    }

    fn count_client_packet(&mut self, pkt: &[u8]) {
        self.stats.client_packets_recv += 1;
        if pkt.len() >= HEADER_LEN {
            let op = u32::from_le_bytes([pkt[16], pkt[17], pkt[18], pkt[19]]);
            match Operation::from_u32(op) {
                Operation::ReqCall => self.stats.client.req_call += 1,
                Operation::ReqMessage => self.stats.client.req_message += 1,
                Operation::ReqControl => self.stats.client.req_control += 1,
                Operation::ReqTunnel => self.stats.client.req_tunnel += 1,
                _ => {}
            }
        }
    }

    /// A header for a packet this node sends (destnode and srcnode are this
    /// node, as Samba's daemon sets them for local clients).
    pub(crate) fn own_header(&self, operation: Operation, reqid: u32) -> Header {
        let me = Pnn(self.state.pnn);
        Header {
            generation: self.state.generation,
            ..Header::new(operation, me, me, reqid)
        }
    }

    /// Handles one whole packet from `origin`.  Err: the packet is
    /// malformed and the connection it came on should be closed.
    pub(crate) fn packet(&mut self, origin: Origin, pkt: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(pkt);
        let mut hdr = Header::read(&mut r).map_err(|e| e.to_string())?;
        if hdr.length as usize != pkt.len() {
            return Err(format!("length {} does not match packet", hdr.length));
        }
        // A local client's packets carry this node as their source; a node's
        // keep the sender's pnn.
        if let Origin::Client(_) = origin {
            hdr.srcnode = Pnn(self.state.pnn);
        }
        // The body's inner lengths say where its data ends; bytes after it
        // (the alignment padding) are not looked at.
        let mut body = Reader::new(r.rest());
        let err = |e: ctdb_protocol::DecodeError| e.to_string();
        match hdr.operation {
            Operation::ReqControl => {
                let c = ReqControl::read(&mut body).map_err(err)?;
                self.request_control(Request {
                    origin,
                    header: hdr,
                    control: c,
                });
            }
            Operation::ReqMessage => {
                let m = ReqMessage::read(&mut body).map_err(err)?;
                self.route_message(origin, &hdr, m);
            }
            Operation::ReplyControl if matches!(origin, Origin::Node(_)) => {
                self.stats.node.reply_control += 1;
                let r = ReplyControl::read(&mut body).map_err(err)?;
                self.answer_control(hdr.reqid, r);
            }
            Operation::ReqKeepalive if matches!(origin, Origin::Node(_)) => {
                self.request_keepalive(&hdr, pkt);
            }
            Operation::ReqCall => {
                let c = ReqCall::read(&mut body).map_err(err)?;
                self.request_call(origin, hdr, c, pkt);
            }
            Operation::ReqDmaster if origin.client().is_none() => {
                self.request_dmaster(hdr, ReqDmaster::read(&mut body).map_err(err)?);
            }
            Operation::ReplyDmaster if origin.client().is_none() => {
                self.reply_dmaster(hdr, ReplyDmaster::read(&mut body).map_err(err)?);
            }
            Operation::ReplyCall if origin.client().is_none() => {
                self.reply_call(hdr, ReplyCall::read(&mut body).map_err(err)?);
            }
            Operation::ReplyError if origin.client().is_none() => {
                self.reply_error(hdr, ReplyError::read(&mut body).map_err(err)?);
            }
            op => {
                log_err!(
                    "Packet with unsupported operation {} from client, ignored",
                    op.to_u32()
                );
            }
        }
        Ok(())
    }

    fn request_control(&mut self, req: Request) {
        // A client's control for another node or a broadcast is forwarded;
        // a node's control is for this node (Samba does not route them on).
        let local = match req.origin {
            Origin::Node(_) => true,
            Origin::Client(_) => self.route_of(req.header.destnode) == Route::Local,
        };
        if !local {
            return self.forward_control(req);
        }
        if let Origin::Client(_) = req.origin {
            // Samba's daemon queues a client's control to itself.
            self.stats.node_packets_sent += 1;
        }
        self.stats.node.req_control += 1;
        let outcome = self.control(&req);
        match outcome {
            Outcome::Reply(st, data, msg) => {
                if !req.noreply() {
                    let to = req.reply_to();
                    self.answer_request(to, st, &data, msg.as_deref());
                }
            }
            Outcome::Later => {}
            Outcome::Exit => {
                log_notice!("Received SHUTDOWN command.");
                self.exit_requested = true;
                self.shutdown_by_control = true;
            }
        }
    }

    /// Sends a REPLY_CONTROL.  Data goes only with status 0 and the error
    /// message only with another status, as Samba sends them.
    pub(crate) fn reply(
        &mut self,
        to: Origin,
        reqid: u32,
        status: i32,
        data: &[u8],
        errmsg: Option<&str>,
    ) {
        self.stats.node_packets_sent += 1;
        self.stats.node.reply_control += 1;
        let body = if status == 0 {
            ReplyControl::ok(data.to_vec())
        } else {
            ReplyControl {
                status,
                data: Vec::new(),
                errmsg: errmsg.map(str::to_string),
            }
        };
        let h = self.own_header(Operation::ReplyControl, reqid);
        self.send(to, Packet::ReplyControl(body).encode(h));
    }

    /// Answers a control request, unless its sender asked for no reply.
    pub(crate) fn answer_request(
        &mut self,
        to: crate::daemon::ReplyTo,
        status: i32,
        data: &[u8],
        errmsg: Option<&str>,
    ) {
        if !to.noreply {
            self.reply(to.origin, to.reqid, status, data, errmsg);
        }
    }

    /// Drops the clients that closed; their notifications go out and their
    /// registrations and waits are forgotten.
    pub(crate) fn reap_closed(&mut self) {
        for id in self.transport.reap() {
            // Samba sends a client's notifications (to every connected
            // node: here, this one) when the client structure is freed.
            for (srvid, data) in self.registrations.drop_client(id) {
                log_err!("Sending client notify message for srvid:{}", srvid);
                self.deliver_message(srvid, &data);
            }
            for w in self.attach_waiters.values_mut() {
                w.retain(|x| x.origin != Origin::Client(id));
            }
            self.traverses_client_gone(id);
            self.client_connections_gone(id);
            self.commits_client_gone(Origin::Client(id));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::actions::Action;
    use crate::config::{Config, Paths};
    use crate::daemon::NodeState;
    use crate::tunables::Tunables;
    use ctdb_protocol::types::{RunState, CAP_RECMASTER};
    use ctdb_protocol::wire::Timeval;
    use ctdb_protocol::{ControlOpcode, Generation, Srvid};
    use std::path::PathBuf;

    /// A daemon on a socket in a fresh directory; nothing connects to it:
    /// the tests hand packets to `packet` and read the actions it queues.
    pub(crate) fn daemon(tag: &str) -> (Daemon, PathBuf) {
        let (mut d, dir) = unconnected_daemon(tag, 0, 2);
        // Node 1 is not connected: only this node serves.
        d.state.node_flags[1] = ctdb_protocol::types::NODE_FLAGS_DISCONNECTED;
        d.state.vnn_map = vec![Pnn(0)];
        (d, dir)
    }

    /// `daemon` as node `pnn` of a cluster of `count` nodes (127.0.0.1 up),
    /// every one in the vnn map and active.
    pub(crate) fn node_daemon(tag: &str, pnn: u32, count: u32) -> (Daemon, PathBuf) {
        let (mut d, dir) = unconnected_daemon(tag, pnn, count);
        for p in (0..count).filter(|&p| p != pnn) {
            d.node_connected(Pnn(p));
        }
        (d, dir)
    }

    /// `node_daemon` before the transport has connected any other node.
    fn unconnected_daemon(tag: &str, pnn: u32, count: u32) -> (Daemon, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("ctdbd-disp-{}-{}-{}", tag, pnn, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
        let config = Config {
            log_location: "file:/dev/null".into(),
            log_level: 0,
            node_address: None,
            cluster_lock: None,
            leader_timeout: 5,
            leader_capability: true,
            volatile_dir: dir.clone(),
            persistent_dir: dir.clone(),
            state_dir: dir.clone(),
            tdb_mutexes: false,
            failover_disabled: true,
            lmaster_capability: true,
            start_as_stopped: false,
            start_as_disabled: false,
            script_log_level: 0,
        };
        let now = Timeval::now();
        let nodes: String = (1..=count).map(|i| format!("127.0.0.{i}\n")).collect();
        let state = NodeState {
            pnn,
            nodes: crate::nodes::parse(&nodes).unwrap(),
            generation: Generation(77),
            vnn_map: (0..count).map(Pnn).collect(),
            recmode: 0,
            all_frozen: false,
            runstate: RunState::Running,
            start_time: now,
            last_recovery_started: now,
            last_recovery_finished: now,
            first_recovery_ending: false,
            tunables: Tunables::default(),
            capabilities: CAP_RECMASTER,
            node_flags: vec![0; count as usize],
            config,
            paths: Paths {
                etcdir: dir.clone(),
                rundir: dir.clone(),
                vardir: dir.clone(),
                test_mode: true,
            },
            public: crate::public_addresses::PublicAddresses::new(ctdb_protocol::Pnn(pnn)),
        };
        (Daemon::new(listener, None, state).unwrap(), dir)
    }

    /// A REQ_CONTROL packet to this node from `srcnode`.
    pub(crate) fn control(op: ControlOpcode, srcnode: u32, reqid: u32, data: Vec<u8>) -> Vec<u8> {
        let body = ReqControl {
            opcode: op,
            srvid: Srvid(0),
            client_id: 0,
            flags: 0,
            data,
        };
        let h = Header::new(
            Operation::ReqControl,
            Pnn::CURRENT_NODE,
            Pnn(srcnode),
            reqid,
        );
        Packet::ReqControl(body).encode(h)
    }

    /// The REPLY_CONTROLs queued, with where they go.
    pub(crate) fn replies(d: &mut Daemon) -> Vec<(Origin, u32, ReplyControl)> {
        let mut out = Vec::new();
        for a in d.outbox.take() {
            if let Action::Send { to, packet } = a {
                if let Ok((h, Packet::ReplyControl(r))) = Packet::decode(&packet) {
                    out.push((to, h.reqid, r));
                }
            }
        }
        out
    }

    #[test]
    fn replies_are_queued_actions_addressed_to_the_origin() {
        let (mut d, dir) = daemon("origin");
        let client = Origin::Client(ClientId(40));
        d.packet(client, &control(ControlOpcode::GetPnn, 9, 5, vec![]))
            .unwrap();
        let node = Origin::Node(Pnn(1));
        d.packet(node, &control(ControlOpcode::Ping, 1, 6, vec![]))
            .unwrap();
        let got = replies(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[0].1, got[0].2.status), (client, 5, 0));
        assert_eq!((got[1].0, got[1].1), (node, 6));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_node_packet_keeps_its_source_node() {
        // UPDATE_SEQNUM from this node is ignored (status 0); from another
        // node it names a database, unknown here (status -1).  A client's
        // srcnode is overwritten with this node's, a node's is not.
        let (mut d, dir) = daemon("srcnode");
        let db = 0x1234_5678u32.to_le_bytes().to_vec();
        let pkt = control(ControlOpcode::UpdateSeqnum, 1, 7, db);
        d.packet(Origin::Client(ClientId(40)), &pkt).unwrap();
        d.packet(Origin::Node(Pnn(1)), &pkt).unwrap();
        let got = replies(&mut d);
        assert_eq!(got[0].2.status, 0);
        assert_eq!(got[1].0, Origin::Node(Pnn(1)));
        assert_eq!(got[1].2.status, -1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_controls_fail_and_malformed_packets_are_refused() {
        let (mut d, dir) = daemon("unknown");
        let c = Origin::Client(ClientId(40));
        d.packet(c, &control(ControlOpcode::from_u32(9999), 0, 8, vec![]))
            .unwrap();
        let got = replies(&mut d);
        assert_eq!(got[0].2.status, -1);
        assert_eq!(got[0].2.errmsg.as_deref(), Some("unknown control"));
        let mut bad = control(ControlOpcode::Ping, 0, 9, vec![]);
        bad[4] ^= 0xff;
        assert!(d.packet(c, &bad).is_err());
        let short = control(ControlOpcode::Ping, 0, 9, vec![]);
        assert!(d.packet(c, &short[..short.len() - 8]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// LIST_TUNABLES answers with the bytes Debian's ctdbd sent in the
    /// captured `ctdb listvars` (protocol/tests/fixtures/listvars.txt).
    #[test]
    fn list_tunables_matches_debians_capture() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../protocol/tests/fixtures/listvars.txt"
        );
        let text = std::fs::read_to_string(fixture).unwrap();
        let debian = text
            .lines()
            .filter_map(|l| l.strip_prefix("d2c 1 "))
            .map(|hex| {
                (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect::<Vec<u8>>()
            })
            .filter_map(|pkt| match Packet::decode(&pkt) {
                Ok((_, Packet::ReplyControl(r))) => Some(r.data),
                _ => None,
            })
            .find(|data| data.windows(15).any(|w| w == b"SeqnumInterval:"))
            .expect("the LIST_TUNABLES reply in the fixture");
        let (mut d, dir) = daemon("listvars");
        let c = Origin::Client(ClientId(40));
        d.packet(c, &control(ControlOpcode::ListTunables, 0, 3, vec![]))
            .unwrap();
        let ours = replies(&mut d);
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].2.status, 0);
        assert_eq!(ours[0].2.data, debian);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
