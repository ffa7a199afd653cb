//! One takeover run of the leader, the control sequence of Samba's
//! takeover helper: the tunables and node map from the local node,
//! GET_PUBLIC_IPS from every connected node (all known addresses), again
//! with the available-only flag from the active nodes that know some, the
//! allocation (`ipalloc`), RELEASE_IP of each address to every connected
//! node that knows it but is not to hold it (redundant ones tell those
//! nodes the new holder), TAKEOVER_IP to each new holder, IPREALLOCATED to
//! every connected node. With no address to host it goes straight to
//! IPREALLOCATED; with failover disabled it sends only that.

use super::batch::{Batch, BatchError, Request, Tags};
use super::ipalloc::{self, Algorithm, NodeReport, Placement, Policy};
use super::monitor;
use super::{log, Action, ControlAnswer, Level, Tag, Time};
use ctdb_protocol::packet::CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE;
use ctdb_protocol::types::{NodeMap, PublicIp};
use ctdb_protocol::wire::SockAddr;
use ctdb_protocol::{ControlReply, ControlRequest, Pnn};

/// What a takeover run needs to know before it starts.
#[derive(Clone, Debug)]
pub struct TakeoverSettings {
    /// The leader (the node whose daemon the run talks through).
    pub leader: Pnn,
    /// `[failover] disabled`: only IPREALLOCATED is sent.
    pub failover_disabled: bool,
    /// Nodes LCP2 may move addresses onto although they hold some.
    pub force_rebalance: Vec<Pnn>,
}

/// The stages, each one batch of controls.
enum Stage {
    Setup,
    Known,
    Available,
    Release,
    Take,
    Reallocated,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum TakeoverEnd {
    /// Every stage succeeded.
    Done,
    /// A stage failed; the node to blame, if one is.
    Failed {
        /// The error.
        why: String,
        /// The node whose control failed.
        culprit: Option<Pnn>,
    },
}

/// A takeover run under way.
pub struct TakeoverRun {
    s: TakeoverSettings,
    stage: Stage,
    batch: Batch,
    /// TakeoverTimeout in ms (from the tunables; 9 s until known).
    timeout_ms: u64,
    policy: Policy,
    nodemap: NodeMap,
    reports: Vec<NodeReport>,
    placements: Vec<Placement>,
}

fn pnn_index(p: Pnn) -> usize {
    p.0 as usize
}

impl TakeoverRun {
    /// Starts a run: asks the leader's daemon for its tunables and node map.
    pub fn start(
        now: Time,
        tags: &mut Tags,
        s: TakeoverSettings,
        out: &mut Vec<Action>,
    ) -> TakeoverRun {
        log(out, Level::Notice, "Takeover run starting".into());
        let timeout_ms = 9000;
        let reqs = vec![
            Request::new(s.leader, ControlRequest::GetAllTunables),
            Request::new(s.leader, ControlRequest::GetNodeMap),
        ];
        TakeoverRun {
            batch: Batch::send(tags, now, timeout_ms, reqs, out),
            s,
            stage: Stage::Setup,
            timeout_ms,
            policy: Policy::default(),
            nodemap: NodeMap(Vec::new()),
            reports: Vec::new(),
            placements: Vec::new(),
        }
    }

    /// A reply came; the end of the run when it ended.
    pub fn on_reply(
        &mut self,
        now: Time,
        tags: &mut Tags,
        tag: Tag,
        a: &ControlAnswer,
        out: &mut Vec<Action>,
    ) -> Option<TakeoverEnd> {
        if self.batch.answer(tag, a) && self.batch.is_complete() {
            return self.stage_done(now, tags, out);
        }
        None
    }

    /// A batch deadline fired; the end of the run when it ended.
    pub fn on_deadline(
        &mut self,
        now: Time,
        tags: &mut Tags,
        id: u32,
        out: &mut Vec<Action>,
    ) -> Option<TakeoverEnd> {
        if self.batch.deadline(id) {
            return self.stage_done(now, tags, out);
        }
        None
    }

    fn failed(stage: &str, e: &BatchError) -> TakeoverEnd {
        TakeoverEnd::Failed {
            why: format!("{stage}: {e}"),
            culprit: Some(e.pnn()),
        }
    }

    fn stage_done(
        &mut self,
        now: Time,
        tags: &mut Tags,
        out: &mut Vec<Action>,
    ) -> Option<TakeoverEnd> {
        if let Some(e) = self.batch.failure.clone() {
            let name = match self.stage {
                Stage::Setup => "Takeover run setup",
                Stage::Known => "Failed to fetch known public IPs",
                Stage::Available => "Failed to fetch available public IPs",
                Stage::Release => "RELEASE_IP",
                Stage::Take => "TAKEOVER_IP",
                Stage::Reallocated => "IPREALLOCATED",
            };
            return Some(Self::failed(name, &e));
        }
        let replies = std::mem::take(&mut self.batch.replies);
        match self.stage {
            Stage::Setup => {
                for r in replies {
                    match r.reply {
                        ControlReply::GetAllTunables(t) => self.apply_tunables(&t),
                        ControlReply::GetNodeMap(m) => self.nodemap = m,
                        _ => {}
                    }
                }
                if self.s.failover_disabled {
                    self.send_reallocated(now, tags, out);
                } else {
                    self.send_known(now, tags, out);
                }
            }
            Stage::Known | Stage::Available => {
                let available = matches!(self.stage, Stage::Available);
                for r in replies {
                    if let ControlReply::GetPublicIps(list) = r.reply {
                        self.record_ips(r.pnn, &list.0, available);
                    }
                }
                if available {
                    self.allocate_and_release(now, tags, out);
                } else {
                    self.send_available(now, tags, out);
                }
            }
            Stage::Release => self.send_take(now, tags, out),
            Stage::Take => self.send_reallocated(now, tags, out),
            Stage::Reallocated => return Some(TakeoverEnd::Done),
        }
        // A stage with nothing to send is complete at once.
        if self.batch.is_complete() {
            return self.stage_done(now, tags, out);
        }
        None
    }

    fn apply_tunables(&mut self, t: &ctdb_protocol::tunables::TunableList) {
        let get = |n: &str| t.get(n).unwrap_or(0);
        self.policy = Policy {
            algorithm: Algorithm::from_tunable(t.get("IPAllocAlgorithm").unwrap_or(2)),
            no_ip_takeover: get("NoIPTakeover") != 0,
            no_ip_failback: get("NoIPFailback") != 0,
        };
        self.timeout_ms = u64::from(t.get("TakeoverTimeout").unwrap_or(9).max(1)) * 1000;
    }

    fn record_ips(&mut self, pnn: Pnn, ips: &[PublicIp], available: bool) {
        let Some(report) = self.reports.get_mut(pnn_index(pnn)) else {
            return;
        };
        let addrs = ips
            .iter()
            .filter_map(|ip| Some((ip.addr.to_socket_addr()?.ip(), ip.pnn)));
        if available {
            report.available = addrs.map(|(a, _)| a).collect();
        } else {
            report.known = addrs.collect();
        }
    }

    fn send(
        &mut self,
        now: Time,
        tags: &mut Tags,
        stage: Stage,
        timeout_ms: u64,
        reqs: Vec<Request>,
        out: &mut Vec<Action>,
    ) {
        self.stage = stage;
        self.batch = Batch::send(tags, now, timeout_ms, reqs, out);
    }

    fn send_known(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) {
        let size = self
            .nodemap
            .0
            .iter()
            .map(|n| pnn_index(n.pnn) + 1)
            .max()
            .unwrap_or(0);
        self.reports = vec![NodeReport::default(); size];
        let reqs = monitor::connected_nodes(&self.nodemap)
            .into_iter()
            .map(|p| Request::new(p, ControlRequest::GetPublicIps))
            .collect();
        self.send(now, tags, Stage::Known, self.timeout_ms, reqs, out);
    }

    fn send_available(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) {
        let reqs = monitor::active_nodes(&self.nodemap)
            .into_iter()
            .filter(|p| {
                self.reports
                    .get(pnn_index(*p))
                    .is_some_and(|r| !r.known.is_empty())
            })
            .map(|p| Request {
                flags: CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE,
                ..Request::new(p, ControlRequest::GetPublicIps)
            })
            .collect();
        self.send(now, tags, Stage::Available, self.timeout_ms, reqs, out);
    }

    fn allocate_and_release(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) {
        if !ipalloc::can_host_ips(&self.reports) {
            log(
                out,
                Level::Notice,
                "No nodes available to host public IPs yet".into(),
            );
            self.send_reallocated(now, tags, out);
            return;
        }
        self.placements = ipalloc::allocate(&self.reports, self.policy, &self.s.force_rebalance);
        let connected = monitor::connected_nodes(&self.nodemap);
        let mut reqs = Vec::new();
        for p in &self.placements {
            let holder = p.holder.unwrap_or(Pnn::UNKNOWN);
            let pip = PublicIp {
                pnn: holder,
                addr: SockAddr::from(p.addr),
            };
            for &n in &connected {
                let knows = p.known_on.get(pnn_index(n)).copied().unwrap_or(false);
                if knows && n != holder {
                    reqs.push(Request::new(n, ControlRequest::ReleaseIp(pip)));
                }
            }
        }
        self.send(now, tags, Stage::Release, 3 * self.timeout_ms, reqs, out);
    }

    fn send_take(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) {
        let reqs = self
            .placements
            .iter()
            .filter_map(|p| {
                let holder = p.holder?;
                let pip = PublicIp {
                    pnn: holder,
                    addr: SockAddr::from(p.addr),
                };
                Some(Request::new(holder, ControlRequest::TakeoverIp(pip)))
            })
            .collect();
        self.send(now, tags, Stage::Take, 3 * self.timeout_ms, reqs, out);
    }

    fn send_reallocated(&mut self, now: Time, tags: &mut Tags, out: &mut Vec<Action>) {
        let reqs = monitor::connected_nodes(&self.nodemap)
            .into_iter()
            .map(|p| Request::new(p, ControlRequest::IpReallocated))
            .collect();
        self.send(
            now,
            tags,
            Stage::Reallocated,
            3 * self.timeout_ms,
            reqs,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::tunables::TunableList;
    use ctdb_protocol::types::{NodeAndFlags, PublicIpList, NODE_FLAGS_DISCONNECTED};
    use std::net::IpAddr;

    fn ok(reply: ControlReply) -> ControlAnswer {
        ControlAnswer {
            status: 0,
            data: reply.to_bytes(),
            errmsg: None,
        }
    }

    fn nodemap(flags: &[u32]) -> NodeMap {
        NodeMap(
            flags
                .iter()
                .enumerate()
                .map(|(i, f)| NodeAndFlags {
                    pnn: Pnn(i as u32),
                    flags: *f,
                    addr: SockAddr::from("127.0.0.1".parse::<IpAddr>().unwrap()),
                })
                .collect(),
        )
    }

    fn ips(held: &[(&str, u32)]) -> PublicIpList {
        PublicIpList(
            held.iter()
                .map(|(a, p)| PublicIp {
                    pnn: Pnn(*p),
                    addr: SockAddr::from(a.parse::<IpAddr>().unwrap()),
                })
                .collect(),
        )
    }

    /// The controls sent by `out`: (tag, node, request, flags).
    fn sent(out: &[Action]) -> Vec<(Tag, Pnn, ControlRequest, u32)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Control {
                    tag,
                    to,
                    request,
                    flags,
                    ..
                } => Some((*tag, *to, request.clone(), *flags)),
                _ => None,
            })
            .collect()
    }

    /// Answers every control of `out` with `answer` and returns the
    /// controls sent next and the end, if reached.
    fn answer_all(
        run: &mut TakeoverRun,
        tags: &mut Tags,
        out: &[Action],
        answer: &dyn Fn(Pnn, &ControlRequest, u32) -> ControlAnswer,
    ) -> (Vec<Action>, Option<TakeoverEnd>) {
        let mut next = Vec::new();
        let mut end = None;
        for (tag, to, req, flags) in sent(out) {
            let a = answer(to, &req, flags);
            if let Some(e) = run.on_reply(Time(0), tags, tag, &a, &mut next) {
                end = Some(e);
            }
        }
        (next, end)
    }

    /// Three nodes, node 2 disconnected; both addresses known everywhere,
    /// 192.0.2.1 on node 0, 192.0.2.2 on node 2 (gone).
    fn cluster(to: Pnn, req: &ControlRequest, flags: u32) -> ControlAnswer {
        let all = [("192.0.2.2", u32::MAX), ("192.0.2.1", u32::MAX)];
        match req {
            ControlRequest::GetAllTunables => {
                let mut t = TunableList::default();
                assert!(t.set("IPAllocAlgorithm", 2) && t.set("TakeoverTimeout", 9));
                ok(ControlReply::GetAllTunables(t))
            }
            ControlRequest::GetNodeMap => ok(ControlReply::GetNodeMap(nodemap(&[
                0,
                0,
                NODE_FLAGS_DISCONNECTED,
            ]))),
            ControlRequest::GetPublicIps if to == Pnn(0) && flags == 0 => {
                ok(ControlReply::GetPublicIps(ips(&[
                    ("192.0.2.2", 2),
                    ("192.0.2.1", 0),
                ])))
            }
            ControlRequest::GetPublicIps => ok(ControlReply::GetPublicIps(ips(&all))),
            _ => ok(ControlReply::Empty),
        }
    }

    #[test]
    fn a_run_sends_samba_s_control_sequence() {
        let mut tags = Tags::default();
        let mut out = Vec::new();
        let s = TakeoverSettings {
            leader: Pnn(0),
            failover_disabled: false,
            force_rebalance: vec![],
        };
        let mut run = TakeoverRun::start(Time(0), &mut tags, s, &mut out);
        let setup: Vec<_> = sent(&out).into_iter().map(|c| (c.1, c.2)).collect();
        assert_eq!(
            setup,
            [
                (Pnn(0), ControlRequest::GetAllTunables),
                (Pnn(0), ControlRequest::GetNodeMap)
            ]
        );
        let (out, _) = answer_all(&mut run, &mut tags, &out, &cluster);
        // Known addresses from the connected nodes.
        let known: Vec<_> = sent(&out).into_iter().map(|c| (c.1, c.2, c.3)).collect();
        assert_eq!(
            known,
            [
                (Pnn(0), ControlRequest::GetPublicIps, 0),
                (Pnn(1), ControlRequest::GetPublicIps, 0)
            ]
        );
        let (out, _) = answer_all(&mut run, &mut tags, &out, &cluster);
        let avail: Vec<_> = sent(&out).into_iter().map(|c| c.3).collect();
        assert_eq!(avail, [CONTROL_FLAG_PUBLIC_IP_ONLY_AVAILABLE; 2]);
        let (out, _) = answer_all(&mut run, &mut tags, &out, &cluster);
        // 192.0.2.1 stays on 0; 192.0.2.2 goes to 1: each connected node
        // not holding an address is told where it goes.
        let release: Vec<_> = sent(&out).into_iter().map(|c| (c.1, c.2)).collect();
        let rel = |p: u32, a: &str, to: u32| {
            (
                Pnn(p),
                ControlRequest::ReleaseIp(PublicIp {
                    pnn: Pnn(to),
                    addr: SockAddr::from(a.parse::<IpAddr>().unwrap()),
                }),
            )
        };
        assert_eq!(release, [rel(0, "192.0.2.2", 1), rel(1, "192.0.2.1", 0)]);
        let (out, _) = answer_all(&mut run, &mut tags, &out, &cluster);
        let take: Vec<_> = sent(&out).into_iter().map(|c| c.1).collect();
        assert_eq!(take, [Pnn(1), Pnn(0)]);
        assert!(sent(&out)
            .iter()
            .all(|c| matches!(c.2, ControlRequest::TakeoverIp(p) if p.pnn == c.1)));
        let (out, end) = answer_all(&mut run, &mut tags, &out, &cluster);
        assert_eq!(end, None);
        let realloc: Vec<_> = sent(&out).into_iter().map(|c| (c.1, c.2)).collect();
        assert_eq!(
            realloc,
            [
                (Pnn(0), ControlRequest::IpReallocated),
                (Pnn(1), ControlRequest::IpReallocated)
            ]
        );
        let (_, end) = answer_all(&mut run, &mut tags, &out, &cluster);
        assert_eq!(end, Some(TakeoverEnd::Done));
    }

    #[test]
    fn failover_disabled_sends_only_ipreallocated_and_failures_name_the_node() {
        let mut tags = Tags::default();
        let mut out = Vec::new();
        let s = TakeoverSettings {
            leader: Pnn(0),
            failover_disabled: true,
            force_rebalance: vec![],
        };
        let mut run = TakeoverRun::start(Time(0), &mut tags, s, &mut out);
        let (out, _) = answer_all(&mut run, &mut tags, &out, &cluster);
        assert!(sent(&out)
            .iter()
            .all(|c| c.2 == ControlRequest::IpReallocated));
        let failing = |to: Pnn, _: &ControlRequest, _: u32| ControlAnswer {
            status: if to == Pnn(1) { -1 } else { 0 },
            data: Vec::new(),
            errmsg: None,
        };
        let (_, end) = answer_all(&mut run, &mut tags, &out, &failing);
        assert!(matches!(
            end,
            Some(TakeoverEnd::Failed {
                culprit: Some(Pnn(1)),
                ..
            })
        ));
    }
}
