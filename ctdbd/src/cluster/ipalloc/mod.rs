//! Public address allocation: which node hosts which public address after a
//! takeover run. A pure, deterministic function of what every node reported
//! (the addresses it knows with the holder it believes in, and the ones it
//! could host now) and of the tunables IPAllocAlgorithm, NoIPTakeover and
//! NoIPFailback. Three algorithms as in Samba: LCP2 (the default, which
//! spreads addresses sharing long prefixes over different nodes),
//! deterministic (address i goes to node i mod n) and non-deterministic
//! (fewest addresses first). The result lists the addresses in Samba's
//! order: the highest address first (IPv6 above IPv4).

mod basic;
mod lcp2;

#[cfg(test)]
mod tests;

use ctdb_protocol::Pnn;
use std::net::IpAddr;

/// The allocation algorithm (tunable IPAllocAlgorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// 0: address i of the sorted list goes to node i mod n if it can.
    Deterministic,
    /// 1: unassigned addresses go to the node with the fewest.
    NonDeterministic,
    /// 2: longest common prefix squared: keeps similar addresses apart.
    Lcp2,
}

impl Algorithm {
    /// The algorithm a value of IPAllocAlgorithm selects (LCP2 for unknown
    /// values, as in Samba).
    pub fn from_tunable(value: u32) -> Algorithm {
        match value {
            0 => Algorithm::Deterministic,
            1 => Algorithm::NonDeterministic,
            _ => Algorithm::Lcp2,
        }
    }
}

/// The tunables that steer an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// IPAllocAlgorithm.
    pub algorithm: Algorithm,
    /// NoIPTakeover: no node takes an address it does not hold already.
    pub no_ip_takeover: bool,
    /// NoIPFailback: held addresses never move to rebalance.
    pub no_ip_failback: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            algorithm: Algorithm::Lcp2,
            no_ip_takeover: false,
            no_ip_failback: false,
        }
    }
}

/// What one node answered to GET_PUBLIC_IPS: all addresses it knows, each
/// with the node it believes holds it, and (asked again with the
/// available-only flag) those it could host now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// Known addresses and their believed holders ([`Pnn::UNKNOWN`] if none).
    pub known: Vec<(IpAddr, Pnn)>,
    /// Addresses this node can host now (empty when it is inactive,
    /// disabled or not running).
    pub available: Vec<IpAddr>,
}

/// One public address after the allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The address.
    pub addr: IpAddr,
    /// The node that is to host it, `None` if no node can.
    pub holder: Option<Pnn>,
    /// `known_on[n]`: node n has the address in its public_addresses.
    pub known_on: Vec<bool>,
    /// `available_on[n]`: node n could host the address now.
    pub available_on: Vec<bool>,
}

/// The sort key Samba uses for addresses: four 32 bit words, an IPv4
/// address in the last one, compared word by word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AddrKey([u32; 4]);

impl AddrKey {
    /// The key of an address.
    pub(crate) fn of(addr: IpAddr) -> AddrKey {
        match addr {
            IpAddr::V4(a) => AddrKey([0, 0, 0, u32::from(a)]),
            IpAddr::V6(a) => {
                let o = a.octets();
                let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                AddrKey([w(0), w(4), w(8), w(12)])
            }
        }
    }

    /// Samba's "distance" of two addresses: the leading zero bits of each
    /// word of their XOR, summed over all four words (32 for equal words).
    pub(crate) fn distance(self, other: AddrKey) -> u32 {
        (0..4)
            .map(|i| (self.0[i] ^ other.0[i]).leading_zeros())
            .sum()
    }
}

/// The allocation in progress: the merged address list (Samba's order)
/// with each address's holder as a node index.
pub(crate) struct Allocation {
    pub(crate) nodes: usize,
    pub(crate) policy: Policy,
    pub(crate) ips: Vec<Entry>,
}

/// One address of the merged list.
pub(crate) struct Entry {
    pub(crate) addr: IpAddr,
    pub(crate) key: AddrKey,
    pub(crate) holder: Option<usize>,
    pub(crate) known_on: Vec<bool>,
    pub(crate) available_on: Vec<bool>,
}

impl Allocation {
    /// Merges the reports: every address any node knows, once, the highest
    /// first. A holder is believed only from the node that says it holds
    /// the address itself (the highest such node if several do).
    fn merge(reports: &[NodeReport], policy: Policy) -> Allocation {
        let nodes = reports.len();
        let mut merged: std::collections::BTreeMap<AddrKey, (IpAddr, Option<usize>)> =
            Default::default();
        for (n, report) in reports.iter().enumerate() {
            for &(addr, pnn) in &report.known {
                let claim = (pnn.0 as usize == n).then_some(n);
                let slot = merged.entry(AddrKey::of(addr)).or_insert((addr, None));
                slot.0 = addr;
                if claim.is_some() {
                    slot.1 = claim;
                }
            }
        }
        let ips = merged
            .into_iter()
            .rev()
            .map(|(key, (addr, holder))| Entry {
                addr,
                key,
                holder,
                known_on: reports.iter().map(|r| r.knows(addr)).collect(),
                available_on: reports.iter().map(|r| r.can_host(addr)).collect(),
            })
            .collect();
        Allocation { nodes, policy, ips }
    }

    /// Node `n` could host address `i` now.
    pub(crate) fn can_host(&self, n: usize, i: usize) -> bool {
        self.ips[i].available_on[n]
    }

    /// Node `n` may take address `i` (NoIPTakeover forbids any takeover).
    pub(crate) fn can_take(&self, n: usize, i: usize) -> bool {
        !self.policy.no_ip_takeover && self.can_host(n, i)
    }

    /// How many addresses node `n` holds.
    pub(crate) fn coverage(&self, n: usize) -> usize {
        self.ips.iter().filter(|e| e.holder == Some(n)).count()
    }

    /// Drops every holder that cannot host its address any more.
    pub(crate) fn unassign_unsuitable(&mut self) {
        for i in 0..self.ips.len() {
            if let Some(n) = self.ips[i].holder {
                if !self.can_host(n, i) {
                    self.ips[i].holder = None;
                }
            }
        }
    }

    fn run(&mut self, force_rebalance: &[Pnn]) {
        match self.policy.algorithm {
            Algorithm::Lcp2 => lcp2::allocate(self, force_rebalance),
            Algorithm::Deterministic => basic::deterministic(self),
            Algorithm::NonDeterministic => basic::nondeterministic(self),
        }
    }
}

impl NodeReport {
    fn knows(&self, addr: IpAddr) -> bool {
        self.available.contains(&addr) || self.known.iter().any(|(a, _)| *a == addr)
    }

    fn can_host(&self, addr: IpAddr) -> bool {
        self.available.contains(&addr)
    }
}

/// Allocates the public addresses of the cluster. `reports[n]` is node n's
/// answer (empty for nodes not asked); `force_rebalance` names nodes LCP2
/// may move addresses onto although they already hold some (nodes that
/// just got new addresses). The result holds every known address once, the
/// highest first; no address has more than one holder and every holder can
/// host its address.
pub fn allocate(reports: &[NodeReport], policy: Policy, force_rebalance: &[Pnn]) -> Vec<Placement> {
    let mut alloc = Allocation::merge(reports, policy);
    alloc.run(force_rebalance);
    alloc
        .ips
        .into_iter()
        .map(|e| Placement {
            addr: e.addr,
            holder: e.holder.map(|n| Pnn(n as u32)),
            known_on: e.known_on,
            available_on: e.available_on,
        })
        .collect()
}

/// Samba's check before an allocation: false when there is nothing to do
/// (no node knows an address, or none is hosted and no node can host one),
/// then the takeover run goes straight to IPREALLOCATED.
pub fn can_host_ips(reports: &[NodeReport]) -> bool {
    let mut have_ips = false;
    for (n, report) in reports.iter().enumerate() {
        if !report.known.is_empty() {
            have_ips = true;
            if report.known.iter().any(|(_, p)| p.0 as usize == n) {
                return true;
            }
        }
    }
    have_ips && reports.iter().any(|r| !r.available.is_empty())
}
