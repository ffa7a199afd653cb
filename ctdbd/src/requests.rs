//! The request tracker: every piece of work whose answer comes back later
//! (database work today; controls sent to other nodes later) is tracked
//! under a tag, with the continuation that finishes it.  A request may have a
//! deadline; if its answer has not come by then, the continuation runs with
//! `Completion::TimedOut` and a late answer is dropped.

use std::collections::HashMap;

/// Identifies one tracked request; tags are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u64);

/// How a tracked request ended.
#[derive(Debug, PartialEq)]
pub enum Completion<R> {
    /// Its answer arrived.
    Answered(R),
    /// Its deadline passed first.
    TimedOut,
}

/// What to do when a request ends; it gets the context (the daemon) back.
pub type Continuation<C, R> = Box<dyn FnOnce(&mut C, Completion<R>)>;

/// Tag → continuation for every request in flight.
pub struct RequestTracker<C, R> {
    waiting: HashMap<Tag, Continuation<C, R>>,
    next: u64,
}

impl<C, R> Default for RequestTracker<C, R> {
    fn default() -> Self {
        RequestTracker {
            waiting: HashMap::new(),
            next: 1,
        }
    }
}

impl<C, R> RequestTracker<C, R> {
    /// A fresh tag for work that needs no continuation.
    pub fn new_tag(&mut self) -> Tag {
        let t = Tag(self.next);
        self.next += 1;
        t
    }

    /// Tracks a request and returns its tag.
    pub fn track(&mut self, then: Continuation<C, R>) -> Tag {
        self.track_with(|_| then)
    }

    /// Tracks a request whose continuation needs its own tag.
    pub fn track_with(&mut self, make: impl FnOnce(Tag) -> Continuation<C, R>) -> Tag {
        let tag = self.new_tag();
        self.waiting.insert(tag, make(tag));
        tag
    }

    /// Runs the continuation of `tag` with its answer; an unknown (already
    /// timed out or forgotten) tag is ignored.  Returns whether it ran.
    pub fn answer(ctx: &mut C, take: impl FnOnce(&mut C) -> &mut Self, tag: Tag, r: R) -> bool {
        match take(ctx).waiting.remove(&tag) {
            Some(then) => {
                then(ctx, Completion::Answered(r));
                true
            }
            None => false,
        }
    }

    /// Runs the continuation of `tag` as timed out, if it still waits.
    pub fn expire(ctx: &mut C, take: impl FnOnce(&mut C) -> &mut Self, tag: Tag) -> bool {
        match take(ctx).waiting.remove(&tag) {
            Some(then) => {
                then(ctx, Completion::TimedOut);
                true
            }
            None => false,
        }
    }

    /// Drops every request for which `doomed` says so (their continuations
    /// do not run).
    pub fn cancel_where(&mut self, doomed: impl Fn(Tag) -> bool) {
        self.waiting.retain(|t, _| !doomed(*t));
    }

    /// Requests in flight.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Ctx {
        tracker: RequestTracker<Ctx, u32>,
        log: Vec<String>,
    }

    fn tracker(c: &mut Ctx) -> &mut RequestTracker<Ctx, u32> {
        &mut c.tracker
    }

    #[test]
    fn an_answer_runs_its_continuation_once() {
        let mut c = Ctx::default();
        let t = c.tracker.track(Box::new(|c: &mut Ctx, done| {
            c.log.push(format!("{done:?}"));
        }));
        assert!(RequestTracker::answer(&mut c, tracker, t, 7));
        assert!(!RequestTracker::answer(&mut c, tracker, t, 8));
        assert!(!RequestTracker::expire(&mut c, tracker, t));
        assert_eq!(c.log, ["Answered(7)"]);
        assert_eq!(c.tracker.len(), 0);
    }

    #[test]
    fn a_timeout_wins_over_a_late_answer() {
        let mut c = Ctx::default();
        let t = c.tracker.track(Box::new(|c: &mut Ctx, done| {
            c.log.push(format!("{done:?}"));
        }));
        let other = c.tracker.track(Box::new(|c: &mut Ctx, _| {
            c.log.push("other".into());
        }));
        assert_ne!(t, other);
        assert!(RequestTracker::expire(&mut c, tracker, t));
        assert!(!RequestTracker::answer(&mut c, tracker, t, 1));
        assert_eq!(c.log, ["TimedOut"]);
        c.tracker.cancel_where(|x| x == other);
        assert!(!RequestTracker::answer(&mut c, tracker, other, 1));
        assert_eq!(c.tracker.len(), 0);
    }

    #[test]
    fn a_continuation_may_track_more_work() {
        let mut c = Ctx::default();
        let t = c.tracker.track(Box::new(|c: &mut Ctx, _| {
            let next = c
                .tracker
                .track(Box::new(|c: &mut Ctx, _| c.log.push("second".into())));
            c.log.push(format!("first then {}", next.0));
        }));
        RequestTracker::answer(&mut c, tracker, t, 0);
        RequestTracker::answer(&mut c, tracker, Tag(2), 0);
        assert_eq!(c.log, ["first then 2", "second"]);
    }
}
