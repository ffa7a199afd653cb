//! Forwarding: where a client's control or message for another node, or for
//! a broadcast destination, goes, and how the replies to controls this
//! daemon sent come back (Samba's ctdb_daemon_send_control,
//! daemon_request_control_from_client, ctdb_daemon_send_message and
//! ctdb_queue_packet's broadcasts).
//!
//! Every control this daemon sends to a node (for a client, or for its own
//! code through `Daemon::send_control`) gets a daemon reqid and waits in
//! `RemoteControls` until its REPLY_CONTROL comes, its time is up
//! ("ctdb_control timed out") or its node dies ("node is disconnected").
//! A packet to this node's own pnn goes through the local dispatch, as
//! Samba queues packets to itself.

use crate::actions::Action;
use crate::control::Request;
use crate::daemon::Daemon;
use crate::timers::TimerEvent;
use crate::transport::Origin;
use crate::{log_err, log_warn};
use ctdb_protocol::controls::ControlRequest;
use ctdb_protocol::packet::{ReplyControl, ReqControl, ReqMessage, CONTROL_FLAG_NOREPLY};
use ctdb_protocol::types::{NODE_FLAGS_DELETED, NODE_FLAGS_DISCONNECTED, NODE_FLAGS_INACTIVE};
use ctdb_protocol::{Header, Operation, Packet, Pnn, Srvid};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where a packet with a given destination node goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node handles it.
    Local,
    /// Another node of the nodes file.
    Node(Pnn),
    /// Each of these nodes (this one included when listed).
    Broadcast(Vec<Pnn>),
    /// No such node (out of range, deleted, or a destination Samba does not
    /// route).
    Invalid,
}

/// The route of a packet for `dest`, seen from `own`, given every node's
/// flags (indexed by pnn; a deleted node has NODE_FLAGS_DELETED).
/// CTDB_BROADCAST_ALL goes to every node that is not deleted, _ACTIVE to
/// every node that is not inactive (deleted, disconnected, banned or
/// stopped), _CONNECTED to every node that is neither deleted nor
/// disconnected, as in Samba's ctdb_queue_packet.
pub fn route(dest: Pnn, own: Pnn, flags: &[u32]) -> Route {
    let pick = |bad: u32| {
        let nodes = (0..flags.len() as u32)
            .filter(|&p| flags[p as usize] & bad == 0)
            .map(Pnn)
            .collect();
        Route::Broadcast(nodes)
    };
    match dest {
        Pnn::CURRENT_NODE => Route::Local,
        d if d == own => Route::Local,
        Pnn::BROADCAST_ALL => pick(NODE_FLAGS_DELETED),
        Pnn::BROADCAST_ACTIVE => pick(NODE_FLAGS_INACTIVE),
        Pnn::BROADCAST_CONNECTED => pick(NODE_FLAGS_DELETED | NODE_FLAGS_DISCONNECTED),
        d => match flags.get(d.0 as usize) {
            Some(f) if f & NODE_FLAGS_DELETED == 0 => Route::Node(d),
            _ => Route::Invalid,
        },
    }
}

/// What runs when a control sent to a node is answered, has timed out or
/// failed: Samba's callback arguments (status, data, error message) as the
/// reply.
pub type ControlContinuation = Box<dyn FnOnce(&mut Daemon, ReplyControl)>;

/// A control sent to a node whose reply is awaited.
struct Pending {
    pnn: Pnn,
    deadline: Option<Instant>,
    then: ControlContinuation,
}

/// The controls in flight to nodes, by daemon reqid.
pub struct RemoteControls {
    pending: HashMap<u32, Pending>,
    next_reqid: u32,
}

impl Default for RemoteControls {
    fn default() -> Self {
        // Samba starts its reqids close to INT_MAX so they wrap early.
        RemoteControls {
            pending: HashMap::new(),
            next_reqid: i32::MAX as u32 - 200,
        }
    }
}

impl RemoteControls {
    /// A reqid not used by any control in flight (never 0).
    pub fn new_reqid(&mut self) -> u32 {
        loop {
            let r = self.next_reqid;
            self.next_reqid = self.next_reqid.wrapping_add(1);
            if r != 0 && !self.pending.contains_key(&r) {
                return r;
            }
        }
    }

    /// Controls in flight.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

/// The reply a control gets when it fails without an answer.
pub fn failure(msg: &str) -> ReplyControl {
    ReplyControl {
        status: -1,
        data: Vec::new(),
        errmsg: Some(msg.to_string()),
    }
}

impl Daemon {
    /// Every node's flags as the routing sees them, by pnn.
    fn route_flags(&self) -> Vec<u32> {
        (0..self.state.nodes.len() as u32)
            .map(|p| self.link_flags(p))
            .collect()
    }

    /// The route of a packet for `dest`.
    pub(crate) fn route_of(&self, dest: Pnn) -> Route {
        route(dest, Pnn(self.state.pnn), &self.route_flags())
    }

    /// A daemon reqid for a packet this daemon sends and awaits an answer
    /// to (controls here; calls may use the same space).
    pub(crate) fn new_reqid(&mut self) -> u32 {
        self.remote.new_reqid()
    }

    /// Sends a control to `to` (a pnn, this node's included) and runs `then`
    /// with its reply, or with status -1 and "ctdb_control timed out" after
    /// `timeout` (None: the ControlTimeout tunable; zero: never), "node is
    /// disconnected" when the node dies first, or "ctdb_control to
    /// disconnected node" at once (from the loop, not from inside this
    /// call) when it is not connected.
    #[allow(dead_code)] // the API for the cluster-wide commit and traverse
    pub(crate) fn send_control(
        &mut self,
        to: Pnn,
        request: ControlRequest,
        timeout: Option<Duration>,
        then: ControlContinuation,
    ) {
        let body = ReqControl {
            opcode: request.opcode(),
            srvid: Srvid(0),
            client_id: 0,
            flags: 0,
            data: request.to_bytes(),
        };
        self.send_req_control(to, body, timeout, then);
    }

    /// `send_control` for a control body built by the caller (srvid,
    /// client id and flags as given; NOREPLY must not be set).
    pub(crate) fn send_req_control(
        &mut self,
        to: Pnn,
        body: ReqControl,
        timeout: Option<Duration>,
        then: ControlContinuation,
    ) {
        let reqid = self.new_reqid();
        let reachable = matches!(self.route_of(to), Route::Local | Route::Node(_))
            && (to.0 == self.state.pnn || self.links.is_connected(to));
        let deadline = match timeout {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(Instant::now() + t),
            None => match self.state.tunables.control_timeout {
                0 => None,
                s => Some(Instant::now() + Duration::from_secs(s.into())),
            },
        };
        let pnn = if to == Pnn::CURRENT_NODE {
            Pnn(self.state.pnn)
        } else {
            to
        };
        self.remote.pending.insert(
            reqid,
            Pending {
                pnn,
                deadline,
                then,
            },
        );
        if !reachable {
            let reply = failure("ctdb_control to disconnected node");
            self.outbox.push(Action::AnswerControl { reqid, reply });
            return;
        }
        if let Some(at) = deadline {
            self.arm_timer(at, TimerEvent::ControlTimeout(reqid));
        }
        let h = Header {
            destnode: pnn,
            ..self.own_header(Operation::ReqControl, reqid)
        };
        self.send(Origin::Node(pnn), Packet::ReqControl(body).encode(h));
    }

    /// Sends a control nobody waits for (NOREPLY set) to a pnn or a
    /// broadcast destination.
    pub(crate) fn send_control_noreply(&mut self, to: Pnn, mut body: ReqControl) {
        body.flags |= CONTROL_FLAG_NOREPLY;
        let reqid = self.new_reqid();
        let h = self.own_header(Operation::ReqControl, reqid);
        let pkt = Packet::ReqControl(body).encode(h);
        match self.route_of(to) {
            Route::Local => self.send(Origin::Node(Pnn(self.state.pnn)), pkt),
            Route::Node(p) => self.send(Origin::Node(p), pkt),
            Route::Broadcast(nodes) => {
                for p in nodes {
                    self.send(Origin::Node(p), pkt.clone());
                }
            }
            Route::Invalid => log_err!("cant send to node {} that does not exist", to.0),
        }
    }

    /// Runs the continuation of control `reqid` with `reply`; an unknown
    /// reqid (timed out, cancelled) is logged and dropped.
    pub(crate) fn answer_control(&mut self, reqid: u32, reply: ReplyControl) {
        match self.remote.pending.remove(&reqid) {
            Some(p) => (p.then)(self, reply),
            None => log_err!(
                "pnn {} Invalid reqid {} in ctdb_reply_control",
                self.state.pnn,
                reqid
            ),
        }
    }

    /// The time of control `reqid` may be up.
    pub(crate) fn control_timer(&mut self, reqid: u32, now: Instant) {
        let due = self
            .remote
            .pending
            .get(&reqid)
            .is_some_and(|p| p.deadline.is_some_and(|d| d <= now));
        if due {
            self.stats.timeouts.control += 1;
            self.answer_control(reqid, failure("ctdb_control timed out"));
        }
    }

    /// Fails every control waiting for a reply from `pnn`.
    pub(crate) fn cancel_controls_to(&mut self, pnn: Pnn) {
        let mut doomed: Vec<u32> = self
            .remote
            .pending
            .iter()
            .filter(|(_, p)| p.pnn == pnn)
            .map(|(r, _)| *r)
            .collect();
        doomed.sort_unstable();
        for reqid in doomed {
            self.answer_control(reqid, failure("node is disconnected"));
        }
    }

    /// A client's control for another node or a broadcast destination (Samba's
    /// daemon_request_control_from_client): forwarded with a daemon reqid,
    /// the reply relayed to the client under its own reqid.  A broadcast
    /// must be NOREPLY (otherwise it is refused, unanswered, as in Samba).
    pub(crate) fn forward_control(&mut self, req: Request) {
        let dest = req.header.destnode;
        let mut body = req.control;
        if let Some(c) = req.origin.client() {
            body.client_id = c.0 as u32;
        }
        let noreply = body.noreply();
        match self.route_of(dest) {
            Route::Broadcast(_) if !noreply => {
                log_err!("Attempt to broadcast control without NOREPLY");
            }
            Route::Broadcast(_) => self.send_control_noreply(dest, body),
            _ if noreply => {
                if self.links.is_connected(dest) {
                    self.send_control_noreply(dest, body);
                }
            }
            _ => {
                let to = req.origin;
                let reqid = req.header.reqid;
                let relay: ControlContinuation = Box::new(move |d: &mut Daemon, r| {
                    d.relay_reply(to, reqid, r);
                });
                self.send_req_control(dest, body, None, relay);
            }
        }
    }

    /// Sends a REPLY_CONTROL exactly as received (status, data and error
    /// message) to `to` under `reqid`.
    pub(crate) fn relay_reply(&mut self, to: Origin, reqid: u32, r: ReplyControl) {
        let h = self.own_header(Operation::ReplyControl, reqid);
        self.send(to, Packet::ReplyControl(r).encode(h));
    }

    /// A REQ_MESSAGE from a client or a node (Samba's
    /// daemon_request_message_from_client and ctdb_request_message): for
    /// this node it is delivered to the registered clients; a client's
    /// message for another node or a broadcast goes over the transport
    /// (a broadcast reaches this node's clients too).
    pub(crate) fn route_message(&mut self, origin: Origin, hdr: &Header, m: ReqMessage) {
        if let Origin::Node(_) = origin {
            return self.local_message(m);
        }
        match self.route_of(hdr.destnode) {
            Route::Local => {
                // Counted as before the node transport existed, so that
                // one node's statistics stay as they were.
                self.stats.node_packets_sent += 1;
                self.local_message(m)
            }
            Route::Node(p) => self.send_message(p, m),
            Route::Broadcast(nodes) => {
                // One encoding for all: the loop puts each node's pnn in
                // its copy's header as it sends it.
                let Some((&last, rest)) = nodes.split_last() else {
                    return;
                };
                let h = Header {
                    destnode: last,
                    ..self.own_header(Operation::ReqMessage, 0)
                };
                let packet = Packet::ReqMessage(m).encode(h);
                for p in rest {
                    self.send(Origin::Node(*p), packet.clone());
                }
                self.send(Origin::Node(last), packet);
            }
            Route::Invalid => log_warn!(
                "cant send to node {} that does not exist (message for srvid 0x{:x})",
                hdr.destnode.0,
                m.srvid.0
            ),
        }
    }

    /// Sends a message to a pnn (this node's included).
    pub(crate) fn send_message(&mut self, to: Pnn, m: ReqMessage) {
        let h = Header {
            destnode: to,
            ..self.own_header(Operation::ReqMessage, 0)
        };
        self.send(Origin::Node(to), Packet::ReqMessage(m).encode(h));
    }

    fn local_message(&mut self, m: ReqMessage) {
        self.stats.node.req_message += 1;
        if let Some(data) = self.push_message(m.srvid.0, m.data) {
            self.deliver_message(m.srvid.0, &data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::tests::daemon;
    use crate::transport::ClientId;
    use ctdb_protocol::types::{NODE_FLAGS_BANNED, NODE_FLAGS_STOPPED};
    use ctdb_protocol::ControlOpcode;

    const CLIENT: Origin = Origin::Client(ClientId(40));

    /// A client's REQ_CONTROL for `dest`.
    fn client_control(op: ControlOpcode, dest: Pnn, reqid: u32, flags: u32) -> Vec<u8> {
        let body = ReqControl {
            opcode: op,
            srvid: Srvid(0),
            client_id: 0,
            flags,
            data: vec![1, 2, 3],
        };
        Packet::ReqControl(body).encode(Header::new(Operation::ReqControl, dest, Pnn(0), reqid))
    }

    /// Runs the queued AnswerControl actions and returns the packets queued
    /// for sending, decoded, with where they go.
    fn sent(d: &mut Daemon) -> Vec<(Origin, Header, Packet)> {
        let mut out = Vec::new();
        while !d.outbox.is_empty() {
            for a in d.outbox.take() {
                match a {
                    Action::Send { to, packet } => {
                        let (h, p) = Packet::decode(&packet).unwrap();
                        out.push((to, h, p));
                    }
                    Action::AnswerControl { reqid, reply } => d.answer_control(reqid, reply),
                    _ => {}
                }
            }
        }
        out
    }

    fn reply_packet(reqid: u32, r: ReplyControl) -> Vec<u8> {
        Packet::ReplyControl(r).encode(Header::new(Operation::ReplyControl, Pnn(0), Pnn(1), reqid))
    }

    #[test]
    fn a_client_control_is_forwarded_and_its_reply_relayed() {
        let (mut d, dir) = daemon("fwd-reply");
        d.node_connected(Pnn(1));
        let pkt = client_control(ControlOpcode::GetPid, Pnn(1), 77, 0);
        d.packet(CLIENT, &pkt).unwrap();
        let out = sent(&mut d);
        assert_eq!(out.len(), 1);
        let (to, h, p) = &out[0];
        assert_eq!(*to, Origin::Node(Pnn(1)));
        assert_eq!((h.destnode, h.srcnode), (Pnn(1), Pnn(0)));
        assert_ne!(h.reqid, 77, "the node sees a daemon reqid");
        let Packet::ReqControl(c) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            (c.opcode, &c.data[..]),
            (ControlOpcode::GetPid, &[1, 2, 3][..])
        );
        let answer = ReplyControl {
            status: 4242,
            data: vec![9],
            errmsg: Some("why".into()),
        };
        d.packet(Origin::Node(Pnn(1)), &reply_packet(h.reqid, answer.clone()))
            .unwrap();
        let back = sent(&mut d);
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].0, back[0].1.reqid), (CLIENT, 77));
        assert_eq!(back[0].2, Packet::ReplyControl(answer));
        // A second reply with the same reqid is dropped.
        d.packet(
            Origin::Node(Pnn(1)),
            &reply_packet(h.reqid, failure("late")),
        )
        .unwrap();
        assert!(sent(&mut d).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn only_reply(out: &[(Origin, Header, Packet)]) -> (Origin, u32, ReplyControl) {
        assert_eq!(out.len(), 1, "{out:?}");
        match &out[0] {
            (to, h, Packet::ReplyControl(r)) => (*to, h.reqid, r.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn controls_to_unreachable_nodes_fail_as_in_samba() {
        let (mut d, dir) = daemon("fwd-unreach");
        // Node 1 is not connected; node 7 does not exist.
        for (dest, reqid) in [(Pnn(1), 5), (Pnn(7), 6)] {
            d.packet(CLIENT, &client_control(ControlOpcode::Ping, dest, reqid, 0))
                .unwrap();
            let (to, r, reply) = only_reply(&sent(&mut d));
            assert_eq!((to, r), (CLIENT, reqid));
            assert_eq!(reply, failure("ctdb_control to disconnected node"));
        }
        assert_eq!(d.remote.len(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_node_death_fails_its_pending_controls() {
        let (mut d, dir) = daemon("fwd-dead");
        d.node_connected(Pnn(1));
        d.packet(CLIENT, &client_control(ControlOpcode::Ping, Pnn(1), 8, 0))
            .unwrap();
        assert_eq!(sent(&mut d).len(), 1);
        d.node_dead(Pnn(1));
        assert!(!d.links.is_connected(Pnn(1)));
        let (to, r, reply) = only_reply(&sent(&mut d));
        assert_eq!((to, r), (CLIENT, 8));
        assert_eq!(reply, failure("node is disconnected"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_silent_node_times_the_control_out() {
        let (mut d, dir) = daemon("fwd-timeout");
        d.node_connected(Pnn(1));
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let g = got.clone();
        d.send_control(
            Pnn(1),
            ControlRequest::Ping,
            Some(Duration::from_secs(3)),
            Box::new(move |_, r| g.borrow_mut().push(r)),
        );
        let armed: Vec<_> = d
            .outbox
            .take()
            .into_iter()
            .filter_map(|a| match a {
                Action::ArmTimer {
                    event: TimerEvent::ControlTimeout(reqid),
                    at,
                } => Some((reqid, at)),
                _ => None,
            })
            .collect();
        assert_eq!(armed.len(), 1);
        let (reqid, at) = armed[0];
        d.control_timer(reqid, at - Duration::from_millis(1));
        assert!(got.borrow().is_empty(), "not due yet");
        d.control_timer(reqid, at);
        assert_eq!(*got.borrow(), [failure("ctdb_control timed out")]);
        assert_eq!(d.stats.timeouts.control, 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn send_control_to_this_node_goes_through_the_local_dispatch() {
        let (mut d, dir) = daemon("fwd-self");
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let g = got.clone();
        d.send_control(
            Pnn(0),
            ControlRequest::GetPnn,
            None,
            Box::new(move |_, r| g.borrow_mut().push(r)),
        );
        // The loop hands a packet for this node's pnn to its dispatch: the
        // request, then the reply it queued.
        for _ in 0..2 {
            for a in d.outbox.take() {
                if let Action::Send { to, packet } = a {
                    assert_eq!(to, Origin::Node(Pnn(0)));
                    d.packet(to, &packet).unwrap();
                }
            }
        }
        assert!(d.outbox.is_empty());
        assert_eq!(*got.borrow(), [ReplyControl::status(0)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn broadcast_controls_need_noreply_and_reach_every_target() {
        let (mut d, dir) = daemon("fwd-bcast");
        d.node_connected(Pnn(1));
        let pkt = client_control(ControlOpcode::Ping, Pnn::BROADCAST_ALL, 3, 0);
        d.packet(CLIENT, &pkt).unwrap();
        assert!(sent(&mut d).is_empty(), "refused, unanswered");
        let pkt = client_control(
            ControlOpcode::Ping,
            Pnn::BROADCAST_CONNECTED,
            4,
            CONTROL_FLAG_NOREPLY,
        );
        d.packet(CLIENT, &pkt).unwrap();
        let to: Vec<Origin> = sent(&mut d).into_iter().map(|(to, _, _)| to).collect();
        assert_eq!(to, [Origin::Node(Pnn(0)), Origin::Node(Pnn(1))]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn messages_go_to_their_node_or_to_every_node() {
        let (mut d, dir) = daemon("fwd-msg");
        let msg = |dest| {
            let m = ReqMessage {
                srvid: Srvid(0xAE),
                data: b"hi".to_vec(),
            };
            Packet::ReqMessage(m).encode(Header::new(Operation::ReqMessage, dest, Pnn(0), 0))
        };
        d.packet(CLIENT, &msg(Pnn(1))).unwrap();
        let out = sent(&mut d);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].0, out[0].1.destnode),
            (Origin::Node(Pnn(1)), Pnn(1))
        );
        d.packet(CLIENT, &msg(Pnn::BROADCAST_ALL)).unwrap();
        let to: Vec<Origin> = sent(&mut d).into_iter().map(|(to, _, _)| to).collect();
        assert_eq!(to, [Origin::Node(Pnn(0)), Origin::Node(Pnn(1))]);
        // Only connected nodes for _CONNECTED (node 1 is not).
        d.packet(CLIENT, &msg(Pnn::BROADCAST_CONNECTED)).unwrap();
        let to: Vec<Origin> = sent(&mut d).into_iter().map(|(to, _, _)| to).collect();
        assert_eq!(to, [Origin::Node(Pnn(0))]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    const D: u32 = NODE_FLAGS_DISCONNECTED;

    fn nodes(v: &[u32]) -> Vec<Pnn> {
        v.iter().copied().map(Pnn).collect()
    }

    #[test]
    fn unicast_routes() {
        let flags = [0, D, NODE_FLAGS_DELETED, 0];
        let own = Pnn(0);
        assert_eq!(route(Pnn::CURRENT_NODE, own, &flags), Route::Local);
        assert_eq!(route(Pnn(0), own, &flags), Route::Local);
        // A disconnected node is still routed to (the transport drops it).
        assert_eq!(route(Pnn(1), own, &flags), Route::Node(Pnn(1)));
        assert_eq!(route(Pnn(2), own, &flags), Route::Invalid);
        assert_eq!(route(Pnn(3), own, &flags), Route::Node(Pnn(3)));
        assert_eq!(route(Pnn(4), own, &flags), Route::Invalid);
        assert_eq!(route(Pnn::MULTICAST, own, &flags), Route::Invalid);
    }

    #[test]
    fn broadcast_target_sets() {
        let flags = [
            0,
            D,
            NODE_FLAGS_DELETED,
            NODE_FLAGS_BANNED,
            NODE_FLAGS_STOPPED,
            0,
        ];
        let own = Pnn(5);
        assert_eq!(
            route(Pnn::BROADCAST_ALL, own, &flags),
            Route::Broadcast(nodes(&[0, 1, 3, 4, 5]))
        );
        assert_eq!(
            route(Pnn::BROADCAST_CONNECTED, own, &flags),
            Route::Broadcast(nodes(&[0, 3, 4, 5]))
        );
        assert_eq!(
            route(Pnn::BROADCAST_ACTIVE, own, &flags),
            Route::Broadcast(nodes(&[0, 5]))
        );
    }

    #[test]
    fn reqids_skip_zero_and_those_in_flight() {
        let mut r = RemoteControls {
            pending: HashMap::new(),
            next_reqid: u32::MAX,
        };
        assert_eq!(r.new_reqid(), u32::MAX);
        assert_eq!(r.new_reqid(), 1);
        r.pending.insert(
            2,
            Pending {
                pnn: Pnn(1),
                deadline: None,
                then: Box::new(|_, _| {}),
            },
        );
        assert_eq!(r.new_reqid(), 3);
        assert_eq!(r.len(), 1);
    }
}
