//! The deterministic and non-deterministic algorithms and the "fewest
//! addresses first" step they share.

use super::Allocation;

/// The node that may take address `i` and holds the fewest addresses (the
/// lowest pnn on a tie), if any.
fn least_loaded(a: &Allocation, i: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for n in 0..a.nodes {
        if !a.can_take(n, i) {
            continue;
        }
        let load = a.coverage(n);
        if best.is_none_or(|(_, min)| load < min) {
            best = Some((n, load));
        }
    }
    best.map(|(n, _)| n)
}

/// Moves address `i` to the least loaded node that may take it; leaves it
/// where it is when no node may.
fn take_by_least_loaded(a: &mut Allocation, i: usize) {
    if let Some(n) = least_loaded(a, i) {
        a.ips[i].holder = Some(n);
    }
}

/// Gives every unassigned address, in list order, to the least loaded node
/// that may take it.
pub(super) fn allocate_unassigned(a: &mut Allocation) {
    for i in 0..a.ips.len() {
        if a.ips[i].holder.is_none() {
            take_by_least_loaded(a, i);
        }
    }
}

/// Address i of the list goes to node i mod n when that node can host it,
/// the rest to the least loaded nodes. NoIPFailback is ignored: the modulo
/// step always moves addresses back to their home node.
pub(super) fn deterministic(a: &mut Allocation) {
    if a.nodes == 0 {
        return;
    }
    let nodes = a.nodes;
    for (i, e) in a.ips.iter_mut().enumerate() {
        e.holder = Some(i % nodes);
    }
    a.unassign_unsuitable();
    allocate_unassigned(a);
}

/// Keeps what can stay, gives the rest to the least loaded nodes, then
/// (unless NoIPFailback) evens the counts out.
pub(super) fn nondeterministic(a: &mut Allocation) {
    a.unassign_unsuitable();
    allocate_unassigned(a);
    if !a.policy.no_ip_failback {
        even_out(a);
    }
}

/// The most and least loaded nodes (first found on ties) among those that
/// may take address `i`, with their loads.
fn load_spread(a: &Allocation, i: usize) -> Option<((usize, usize), (usize, usize))> {
    let mut spread: Option<((usize, usize), (usize, usize))> = None;
    for n in 0..a.nodes {
        if !a.can_take(n, i) {
            continue;
        }
        let load = a.coverage(n);
        spread = Some(match spread {
            None => ((n, load), (n, load)),
            Some((max, min)) => (
                if load > max.1 { (n, load) } else { max },
                if load < min.1 { (n, load) } else { min },
            ),
        });
    }
    spread
}

/// While some address's candidate nodes differ in load by more than one,
/// hands the most loaded node's first address to the least loaded node
/// (at most as many moves as addresses plus five).
fn even_out(a: &mut Allocation) {
    let limit = a.ips.len() + 5;
    let mut moves = 0;
    'again: loop {
        for i in 0..a.ips.len() {
            if a.ips[i].holder.is_none() {
                continue;
            }
            let Some(((maxnode, maxload), (_, minload))) = load_spread(a, i) else {
                continue;
            };
            if maxload > minload + 1 && moves < limit {
                if let Some(j) = a.ips.iter().position(|e| e.holder == Some(maxnode)) {
                    take_by_least_loaded(a, j);
                    moves += 1;
                    continue 'again;
                }
            }
        }
        break;
    }
}
