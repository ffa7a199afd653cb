//! Banning credits, as Samba's recovery daemon keeps them: the leader blames
//! the node behind each problem it sees (a node whose nodemap or vnn map
//! disagrees, one that does not answer, one that makes a recovery fail).
//! A node that collects enough credits is banned for RecoveryBanPeriod
//! (SET_BAN_STATE to that node), so that one bad node cannot keep the whole
//! cluster recovering.  Credits older than RecoveryGracePeriod are
//! forgiven when the node is blamed again, and a completed recovery
//! forgives everything.

use super::Time;
use ctdb_protocol::Pnn;
use std::collections::BTreeMap;

/// Failed recovery runs a node may cause before it is banned (Samba's
/// recovery helper bans after three failed attempts blamed on one node).
pub const RECOVERY_FAILURES: u32 = 3;

/// One node's credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Credit {
    count: u32,
    last: Time,
}

/// Credits by node.
#[derive(Debug, Default)]
pub struct BanCredits {
    credits: BTreeMap<Pnn, Credit>,
}

impl BanCredits {
    /// Adds `count` credits to `pnn`; its earlier credits are forgotten
    /// first when they are older than `grace_ms`.
    pub fn blame(&mut self, now: Time, pnn: Pnn, count: u32, grace_ms: u64) {
        let c = self.credits.entry(pnn).or_insert(Credit {
            count: 0,
            last: now,
        });
        if c.count > 0 && now.0.saturating_sub(c.last.0) > grace_ms {
            c.count = 0;
        }
        c.count = c.count.saturating_add(count);
        c.last = now;
    }

    /// The nodes with at least `limit` credits, in pnn order; their credits
    /// start again from zero.
    pub fn take_due(&mut self, limit: u32) -> Vec<(Pnn, u32)> {
        let mut due = Vec::new();
        for (pnn, c) in self.credits.iter_mut() {
            if c.count >= limit {
                due.push((*pnn, c.count));
                c.count = 0;
            }
        }
        due
    }

    /// Forgives every node (a recovery completed).
    pub fn reset(&mut self) {
        self.credits.clear();
    }

    /// The credits `pnn` has now.
    #[cfg(test)]
    pub fn of(&self, pnn: Pnn) -> u32 {
        self.credits.get(&pnn).map_or(0, |c| c.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_add_up_and_are_taken_once_due() {
        let mut b = BanCredits::default();
        for t in 0..5 {
            b.blame(Time(t * 1000), Pnn(2), 1, 120_000);
        }
        b.blame(Time(5000), Pnn(1), 1, 120_000);
        assert!(b.take_due(6).is_empty());
        b.blame(Time(6000), Pnn(2), 1, 120_000);
        assert_eq!(b.take_due(6), vec![(Pnn(2), 6)]);
        assert_eq!(b.of(Pnn(2)), 0);
        assert_eq!(b.of(Pnn(1)), 1);
    }

    #[test]
    fn old_credits_are_forgiven_after_the_grace_period() {
        let mut b = BanCredits::default();
        b.blame(Time(0), Pnn(1), 5, 1000);
        b.blame(Time(1001), Pnn(1), 1, 1000);
        assert_eq!(b.of(Pnn(1)), 1);
        b.blame(Time(1500), Pnn(1), 1, 1000);
        assert_eq!(b.of(Pnn(1)), 2);
        b.reset();
        assert_eq!(b.of(Pnn(1)), 0);
    }
}
