//! Keepalives, as Samba's ctdb_keepalive.c: every KeepaliveInterval seconds
//! each other node is checked.  A connected node from which nothing arrived
//! for KeepaliveLimit checks in a row is dead; otherwise it is sent a
//! CTDB_REQ_KEEPALIVE (carrying our version and uptime).  A node marked
//! disconnected from which packets arrived is connected again.  A peer
//! whose keepalive says it runs another CTDB version that has been up
//! longer makes this node shut down, unless AllowMixedVersions is set.

use crate::daemon::Daemon;
use crate::timers::TimerEvent;
use crate::{log_debug, log_err, log_notice};
use ctdb_protocol::header::HEADER_LEN;
use ctdb_protocol::packet::ReqKeepalive;
use ctdb_protocol::{Header, Operation, Packet, Pnn};
use std::time::{Duration, Instant};

/// The version word keepalives carry: Samba's major << 16 | minor (4.17).
pub const KEEPALIVE_VERSION: u32 = (4 << 16) | 17;

/// What the transport counts per node between two checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    /// Packets received from the node since the last check.
    pub rx_cnt: u32,
    /// Packets sent to the node since the last check.
    pub tx_cnt: u32,
    /// Checks in a row that found nothing received.
    pub dead_count: u32,
}

impl Liveness {
    /// Counts a packet from the node.
    pub fn received(&mut self) {
        self.rx_cnt = self.rx_cnt.saturating_add(1);
    }

    /// Counts a packet to the node.
    pub fn sent(&mut self) {
        self.tx_cnt = self.tx_cnt.saturating_add(1);
    }
}

/// What one check decided for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It was marked disconnected but packets came: connected again.
    Revived,
    /// Nothing came for `limit` checks: it is dead.
    Dead,
    /// Still alive: send it a keepalive.
    SendKeepalive,
    /// Disconnected and silent: nothing to do.
    Nothing,
}

/// One keepalive check of one node (Samba's ctdb_check_for_dead_nodes for
/// that node), updating its counters.
pub fn check(connected: bool, l: &mut Liveness, limit: u32) -> Verdict {
    if !connected {
        return if l.rx_cnt != 0 {
            Verdict::Revived
        } else {
            Verdict::Nothing
        };
    }
    if l.rx_cnt == 0 {
        l.dead_count += 1;
    } else {
        l.dead_count = 0;
    }
    l.rx_cnt = 0;
    if l.dead_count >= limit {
        return Verdict::Dead;
    }
    l.tx_cnt = 0;
    Verdict::SendKeepalive
}

/// Whether a peer's keepalive means the cluster runs mixed versions this
/// node must not run with: another version, and the peer up longer (or as
/// long, with a higher version), as Samba decides.
pub fn version_conflict(mine: ReqKeepalive, theirs: ReqKeepalive) -> bool {
    theirs.version != mine.version
        && (theirs.uptime > mine.uptime
            || (theirs.uptime == mine.uptime && theirs.version > mine.version))
}

impl Daemon {
    /// Arms the first keepalive check, KeepaliveInterval from now.
    pub(crate) fn start_keepalive(&mut self, now: Instant) {
        log_notice!("Keepalive monitoring has been started");
        if self.state.tunables.allow_mixed_versions == 1 {
            log_notice!("CTDB cluster with mixed versions configured");
        }
        self.arm_timer(now + self.keepalive_interval(), TimerEvent::Keepalive);
    }

    fn keepalive_interval(&self) -> Duration {
        Duration::from_secs(self.state.tunables.keepalive_interval.max(1).into())
    }

    /// This node's keepalive body.
    fn own_keepalive(&self) -> ReqKeepalive {
        let now = ctdb_protocol::wire::Timeval::now().sec;
        let uptime = u32::try_from(now - self.state.start_time.sec).unwrap_or(0);
        ReqKeepalive {
            version: KEEPALIVE_VERSION,
            uptime,
        }
    }

    /// Checks every other node, sends the keepalives and re-arms itself.
    pub(crate) fn keepalive_timer(&mut self, now: Instant) {
        let limit = self.state.tunables.keepalive_limit;
        for pnn in self.links.others() {
            let Some(p) = self.links.peer_mut(pnn) else {
                continue;
            };
            let connected = p.connected;
            match check(connected, &mut p.liveness, limit) {
                Verdict::Revived => self.node_connected(pnn),
                Verdict::Dead => {
                    log_notice!("dead count reached for node {}", pnn.0);
                    self.node_dead(pnn);
                }
                Verdict::SendKeepalive => {
                    log_debug!("sending keepalive to {}", pnn.0);
                    self.send_keepalive(pnn);
                }
                Verdict::Nothing => {}
            }
        }
        self.arm_timer(now + self.keepalive_interval(), TimerEvent::Keepalive);
    }

    fn send_keepalive(&mut self, pnn: Pnn) {
        let h = Header {
            destnode: pnn,
            ..self.own_header(Operation::ReqKeepalive, 0)
        };
        let pkt = Packet::ReqKeepalive(self.own_keepalive()).encode(h);
        self.stats.keepalive_packets_sent += 1;
        self.send(crate::transport::Origin::Node(pnn), pkt);
    }

    /// A CTDB_REQ_KEEPALIVE from a node: its version is checked as Samba
    /// does; a conflict shuts this node down.
    pub(crate) fn request_keepalive(&mut self, hdr: &Header, pkt: &[u8]) {
        self.stats.keepalive_packets_recv += 1;
        if self.state.tunables.allow_mixed_versions == 1 {
            return;
        }
        let theirs = match Packet::decode(pkt) {
            Ok((_, Packet::ReqKeepalive(k))) if pkt.len() > HEADER_LEN => k,
            _ => {
                log_err!("Keepalive version missing from node {}", hdr.srcnode.0);
                return self.mixed_versions();
            }
        };
        let mine = self.own_keepalive();
        if version_conflict(mine, theirs) {
            log_err!(
                "Keepalive version mismatch 0x{:08x} != 0x{:08x} from node {}",
                mine.version,
                theirs.version,
                hdr.srcnode.0
            );
            self.mixed_versions();
        }
    }

    fn mixed_versions(&mut self) {
        log_err!("CTDB Cluster with mixed versions, cannot continue");
        self.exit_requested = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `checks` keepalive checks on a connected node, with packets
    /// arriving before the checks listed in `rx_before`; returns the
    /// verdicts.
    fn run(checks: usize, rx_before: &[usize], limit: u32) -> Vec<Verdict> {
        let mut l = Liveness::default();
        let mut connected = true;
        let mut out = Vec::new();
        for i in 0..checks {
            if rx_before.contains(&i) {
                l.received();
            }
            let v = check(connected, &mut l, limit);
            if v == Verdict::Dead {
                connected = false;
                l = Liveness::default();
            }
            out.push(v);
        }
        out
    }

    #[test]
    fn a_silent_node_is_dead_after_limit_checks() {
        use Verdict::*;
        assert_eq!(
            run(4, &[], 3),
            [SendKeepalive, SendKeepalive, Dead, Nothing]
        );
    }

    #[test]
    fn a_packet_resets_the_count() {
        use Verdict::*;
        // Packets before check 1 and 3: never two silent checks in a row.
        assert_eq!(run(5, &[1, 3], 2), [SendKeepalive; 5]);
        // Silent at 0 and 1 with limit 2: dead at check 1.
        assert_eq!(run(2, &[2], 2), [SendKeepalive, Dead]);
    }

    #[test]
    fn a_disconnected_node_that_speaks_is_revived() {
        let mut l = Liveness::default();
        assert_eq!(check(false, &mut l, 3), Verdict::Nothing);
        l.received();
        assert_eq!(check(false, &mut l, 3), Verdict::Revived);
    }

    #[test]
    fn mixed_versions_conflict_only_against_an_older_running_peer() {
        let k = |version, uptime| ReqKeepalive { version, uptime };
        let me = k(KEEPALIVE_VERSION, 100);
        assert!(!version_conflict(me, k(KEEPALIVE_VERSION, 500)));
        assert!(version_conflict(me, k(0x0004_0010, 101)));
        assert!(!version_conflict(me, k(0x0004_0010, 99)));
        assert!(version_conflict(me, k(0x0004_0012, 100)));
        assert!(!version_conflict(me, k(0x0004_0010, 100)));
    }

    /// The daemon's check, on a fake clock: keepalives to a connected node
    /// each interval, the node dead after KeepaliveLimit silent checks, one
    /// packet from it resetting the count.
    #[test]
    fn the_daemon_sends_keepalives_and_declares_a_silent_node_dead() {
        use crate::actions::Action;
        use crate::transport::Origin;
        let (mut d, dir) = crate::dispatch::tests::daemon("keepalive");
        d.state.tunables.keepalive_interval = 2;
        d.state.tunables.keepalive_limit = 3;
        d.node_connected(Pnn(1));
        let t0 = Instant::now();
        let tick = |d: &mut Daemon, i: u64| {
            let now = t0 + Duration::from_secs(2 * i);
            d.keepalive_timer(now);
            let mut keepalives = 0;
            let mut rearmed = false;
            for a in d.outbox.take() {
                match a {
                    Action::Send { to, packet } => {
                        assert_eq!(to, Origin::Node(Pnn(1)));
                        let (h, p) = Packet::decode(&packet).unwrap();
                        assert_eq!(h.destnode, Pnn(1));
                        assert!(
                            matches!(p, Packet::ReqKeepalive(k) if k.version == KEEPALIVE_VERSION)
                        );
                        keepalives += 1;
                    }
                    Action::ArmTimer {
                        at,
                        event: TimerEvent::Keepalive,
                    } => {
                        assert_eq!(at, now + Duration::from_secs(2));
                        rearmed = true;
                    }
                    _ => {}
                }
            }
            assert!(rearmed);
            keepalives
        };
        assert_eq!(tick(&mut d, 1), 1);
        assert_eq!(tick(&mut d, 2), 1);
        d.links.peer_mut(Pnn(1)).unwrap().liveness.received();
        assert_eq!(tick(&mut d, 3), 1);
        assert_eq!(tick(&mut d, 4), 1);
        assert!(d.links.is_connected(Pnn(1)));
        assert_eq!(tick(&mut d, 5), 1);
        assert!(d.links.is_connected(Pnn(1)));
        assert_eq!(tick(&mut d, 6), 0, "third silent check: dead, no keepalive");
        assert!(!d.links.is_connected(Pnn(1)));
        assert_eq!(d.stats.keepalive_packets_sent, 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn samba_417_sends_this_version_word() {
        assert_eq!(KEEPALIVE_VERSION, 0x0004_0011);
    }
}
