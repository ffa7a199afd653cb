//! Actions: what handlers ask the event loop to do to the outside world.
//! Handlers (controls, calls, messages, timers, and the cluster state
//! machines to come) never write to a socket or arm a timer themselves; they
//! queue actions, and the loop executes them after each packet, database
//! answer or timer, in the order they were queued.

use crate::db::Job;
use crate::timers::TimerEvent;
use crate::transport::Origin;
use std::time::Instant;

/// One thing for the loop to do.
pub enum Action {
    /// Send a whole packet to a client or a node.
    Send { to: Origin, packet: Vec<u8> },
    /// Arm a timer.
    ArmTimer { at: Instant, event: TimerEvent },
    /// Hand database work that needs no answer to the database side.
    Database(Job),
    /// Answer a control this daemon sent to a node (by its daemon reqid)
    /// without a reply from the node (it was not reachable).
    AnswerControl {
        reqid: u32,
        reply: ctdb_protocol::packet::ReplyControl,
    },
}

/// The queue of actions not yet executed.
#[derive(Default)]
pub struct Outbox {
    queue: Vec<Action>,
}

impl Outbox {
    /// Queues an action.
    pub fn push(&mut self, a: Action) {
        self.queue.push(a);
    }

    /// Takes every queued action, oldest first.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.queue)
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
