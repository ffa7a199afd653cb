//! LCP2: each node's "imbalance" is the sum, over pairs of addresses it
//! holds, of the square of their common prefix length. Unassigned
//! addresses go where they add the least; then addresses move from the
//! most imbalanced nodes to nodes that held nothing (or were forced to
//! rebalance) while that lowers the total. Arithmetic wraps at 32 bits as
//! Samba's does, so results match it bit for bit.

use super::Allocation;
use ctdb_protocol::Pnn;

/// Sum of squared distances between address `i` and the other addresses
/// node `n` holds among `from..` of the list.
fn distance_sum(a: &Allocation, i: usize, n: usize, from: usize) -> u32 {
    let key = a.ips[i].key;
    a.ips[from..]
        .iter()
        .enumerate()
        .filter(|(j, e)| e.holder == Some(n) && from + j != i)
        .map(|(_, e)| {
            let d = key.distance(e.key);
            d.wrapping_mul(d)
        })
        .fold(0u32, u32::wrapping_add)
}

/// The imbalance of node `n`: each held address against the held ones
/// after it in the list.
fn imbalance(a: &Allocation, n: usize) -> u32 {
    (0..a.ips.len())
        .filter(|&i| a.ips[i].holder == Some(n))
        .map(|i| distance_sum(a, i, n, i + 1))
        .fold(0u32, u32::wrapping_add)
}

/// Runs LCP2 on `a`.
pub(super) fn allocate(a: &mut Allocation, force_rebalance: &[Pnn]) {
    a.unassign_unsuitable();
    let mut imbalances: Vec<u32> = (0..a.nodes).map(|n| imbalance(a, n)).collect();
    // Nodes holding nothing were unhealthy before: only they may receive
    // addresses when rebalancing (and the forced ones).
    let mut candidates = vec![true; a.nodes];
    for e in &a.ips {
        if let Some(n) = e.holder {
            candidates[n] = false;
        }
    }
    for p in force_rebalance {
        if let Some(c) = candidates.get_mut(p.0 as usize) {
            *c = true;
        }
    }
    allocate_unassigned(a, &mut imbalances);
    if a.policy.no_ip_failback || !candidates.contains(&true) {
        return;
    }
    failback(a, &mut imbalances, &candidates);
}

/// Repeatedly gives the (unassigned address, node) pair that adds the
/// least to the node's imbalance (first found on ties) until every address
/// is placed or none can be.
fn allocate_unassigned(a: &mut Allocation, imbalances: &mut [u32]) {
    loop {
        let mut best: Option<(usize, usize, u32)> = None;
        for i in 0..a.ips.len() {
            if a.ips[i].holder.is_some() {
                continue;
            }
            for n in 0..a.nodes {
                if !a.can_take(n, i) {
                    continue;
                }
                let added = distance_sum(a, i, n, 0);
                if best.is_none_or(|(_, _, min)| added < min) {
                    best = Some((i, n, added));
                }
            }
        }
        let Some((i, n, added)) = best else {
            return;
        };
        a.ips[i].holder = Some(n);
        imbalances[n] = imbalances[n].wrapping_add(added);
        if a.ips.iter().all(|e| e.holder.is_some()) {
            return;
        }
    }
}

/// Moves one address at a time off the most imbalanced node that has a
/// move improving things, until no node has one.
fn failback(a: &mut Allocation, imbalances: &mut [u32], candidates: &[bool]) {
    loop {
        let mut order: Vec<(usize, u32)> = imbalances.iter().copied().enumerate().collect();
        // Highest imbalance first; equal ones stay in pnn order.
        order.sort_by_key(|x| std::cmp::Reverse(x.1));
        let moved = order
            .into_iter()
            .take_while(|&(_, imbalance)| imbalance != 0)
            .any(|(n, _)| move_one_from(a, n, imbalances, candidates));
        if !moved {
            return;
        }
    }
}

/// The best move of one of `src`'s addresses to a candidate node: one that
/// leaves the destination below the source's current imbalance, costs the
/// destination less than it costs the source, and minimises the pair's
/// summed imbalance. Returns whether a move was made.
fn move_one_from(
    a: &mut Allocation,
    src: usize,
    imbalances: &mut [u32],
    candidates: &[bool],
) -> bool {
    // (address, new source imbalance, destination, new destination imbalance)
    let mut best: Option<(usize, u32, usize, u32)> = None;
    for i in 0..a.ips.len() {
        if a.ips[i].holder != Some(src) {
            continue;
        }
        let src_sum = distance_sum(a, i, src, 0);
        let src_imbl = imbalances[src].wrapping_sub(src_sum);
        for dst in 0..a.nodes {
            if !candidates[dst] || !a.can_take(dst, i) {
                continue;
            }
            let dst_sum = distance_sum(a, i, dst, 0);
            let dst_imbl = imbalances[dst].wrapping_add(dst_sum);
            let better = best
                .is_none_or(|(_, bs, _, bd)| src_imbl.wrapping_add(dst_imbl) < bs.wrapping_add(bd));
            if dst_imbl < imbalances[src] && dst_sum < src_sum && better {
                best = Some((i, src_imbl, dst, dst_imbl));
            }
        }
    }
    let Some((i, src_imbl, dst, dst_imbl)) = best else {
        return false;
    };
    imbalances[src] = src_imbl;
    imbalances[dst] = dst_imbl;
    a.ips[i].holder = Some(dst);
    true
}
