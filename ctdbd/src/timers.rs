//! The timer facility: typed timer events in a deadline queue.  The event
//! loop sleeps until the earliest deadline and then handles every due event
//! in deadline order.  A timer is never cancelled; its handler checks that
//! the state it was armed for still holds (a stale event is ignored).

use crate::requests::Tag;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerEvent {
    /// A volatile database's vacuum run may be due (its `VacuumTimer` says
    /// whether it still is).
    Vacuum { db_id: u32 },
    /// A tracked request's time is up.
    RequestExpired(Tag),
    /// A node-transport timer (connect, connect timeout).
    Link(crate::node_link::LinkTimer),
    /// The keepalive check of every other node (every KeepaliveInterval).
    Keepalive,
    /// A control sent to a node (by its daemon reqid) may have timed out.
    ControlTimeout(u32),
    /// Send the changed tickle lists of held addresses (every
    /// TickleUpdateInterval).
    TickleUpdate,
    /// Try the "startup" event (after the first recovery).
    Startup,
    /// Run the "monitor" event (every MonitorInterval once running).
    Monitor,
    /// The next round of announcing a taken-over address (its
    /// announcement's id).
    Announce(u64),
}

struct Entry<E> {
    at: Instant,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed, so that the heap's top is the earliest deadline (and, among
    // equal deadlines, the one armed first).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Timer events ordered by deadline; equal deadlines fire in arming order.
pub struct TimerQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> Default for TimerQueue<E> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<E> TimerQueue<E> {
    /// Arms `event` to fire at `at`.
    pub fn arm(&mut self, at: Instant, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, event });
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest event whose deadline is at or
    /// before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<E> {
        if self.heap.peek()?.at <= now {
            self.heap.pop().map(|e| e.event)
        } else {
            None
        }
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_events_come_out_in_deadline_then_arming_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.arm(t0 + Duration::from_secs(3), "c");
        q.arm(t0 + Duration::from_secs(1), "a");
        q.arm(t0 + Duration::from_secs(1), "b");
        q.arm(t0 + Duration::from_secs(9), "late");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(3);
        let mut got = Vec::new();
        while let Some(e) = q.pop_due(now) {
            got.push(e);
        }
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(9)));
    }

    #[test]
    fn nothing_is_due_before_its_deadline() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        assert_eq!(q.next_deadline(), None);
        q.arm(t0 + Duration::from_millis(5), TimerEvent::Keepalive);
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(
            q.pop_due(t0 + Duration::from_millis(5)),
            Some(TimerEvent::Keepalive)
        );
    }
}
