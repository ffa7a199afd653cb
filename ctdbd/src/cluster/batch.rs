//! A batch: controls sent together to several nodes whose replies are
//! awaited together, with one deadline. A batch succeeds when every node
//! answered successfully and fails at the first error or at the deadline.

use super::{Action, ControlAnswer, Tag, Time, Timer};
use ctdb_protocol::{ControlOpcode, ControlReply, ControlRequest, DbId, Pnn, Srvid};
use std::collections::BTreeMap;
use std::fmt;

/// Hands out control tags and batch ids.
#[derive(Debug, Default)]
pub struct Tags {
    next_tag: u32,
    next_batch: u32,
    next_srvid: u64,
}

impl Tags {
    /// A tag no pending control uses (tags start at 1 and wrap past 0).
    pub fn tag(&mut self) -> Tag {
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        Tag(self.next_tag)
    }

    /// A fresh srvid in the recovery range for a pull or push (never reused
    /// while this recovery daemon runs).
    pub fn recovery_srvid(&mut self) -> Srvid {
        self.next_srvid = (self.next_srvid + 1) & 0xFFFF_FFFF_FFFF;
        Srvid(Srvid::RECOVERY.0 | self.next_srvid)
    }

    /// A fresh batch id.
    pub fn batch(&mut self) -> u32 {
        self.next_batch = self.next_batch.wrapping_add(1);
        self.next_batch
    }
}

/// One control of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The node.
    pub to: Pnn,
    /// The control.
    pub request: ControlRequest,
    /// The srvid field.
    pub srvid: Srvid,
    /// The control flags.
    pub flags: u32,
}

impl Request {
    /// A control with srvid 0 and no flags.
    pub fn new(to: Pnn, request: ControlRequest) -> Request {
        Request {
            to,
            request,
            srvid: Srvid(0),
            flags: 0,
        }
    }
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    /// The node that answered.
    pub pnn: Pnn,
    /// The database the request named, if any.
    pub db_id: Option<DbId>,
    /// The status word (the value for controls that answer in it).
    pub status: i32,
    /// The typed reply data.
    pub reply: ControlReply,
}

/// Why a batch failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// A node answered with an error status.
    Failed {
        /// The node.
        pnn: Pnn,
        /// The control.
        opcode: ControlOpcode,
        /// Its status.
        status: i32,
        /// Its error message.
        msg: String,
    },
    /// A node's reply could not be decoded.
    Undecodable {
        /// The node.
        pnn: Pnn,
        /// The control.
        opcode: ControlOpcode,
        /// The decode error.
        why: String,
    },
    /// A node did not answer before the deadline.
    TimedOut {
        /// The first node still silent.
        pnn: Pnn,
        /// The control.
        opcode: ControlOpcode,
    },
}

impl BatchError {
    /// The node the failure is blamed on.
    pub fn pnn(&self) -> Pnn {
        match self {
            BatchError::Failed { pnn, .. }
            | BatchError::Undecodable { pnn, .. }
            | BatchError::TimedOut { pnn, .. } => *pnn,
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Failed {
                pnn,
                opcode,
                status,
                msg,
            } => write!(
                f,
                "control {opcode:?} failed on node {pnn}, ret={status} {msg}"
            ),
            BatchError::Undecodable { pnn, opcode, why } => {
                write!(f, "control {opcode:?} on node {pnn}: bad reply: {why}")
            }
            BatchError::TimedOut { pnn, opcode } => {
                write!(f, "control {opcode:?} timed out on node {pnn}")
            }
        }
    }
}

/// Controls whose reply status is a value, not a success flag.
fn status_is_value(op: ControlOpcode) -> bool {
    matches!(
        op,
        ControlOpcode::GetRecmode
            | ControlOpcode::GetPnn
            | ControlOpcode::Ping
            | ControlOpcode::GetPid
    )
}

/// Controls sent together and awaited together.
#[derive(Debug, Default)]
pub struct Batch {
    id: u32,
    pending: BTreeMap<Tag, (Pnn, ControlOpcode, Option<DbId>)>,
    /// The successful replies so far, in arrival order.
    pub replies: Vec<Answered>,
    /// The first failure, if any.
    pub failure: Option<BatchError>,
}

impl Batch {
    /// Sends `requests` (queuing their actions) and arms the deadline
    /// `timeout_ms` from `now`. An empty batch is complete at once.
    pub fn send(
        tags: &mut Tags,
        now: Time,
        timeout_ms: u64,
        requests: Vec<Request>,
        out: &mut Vec<Action>,
    ) -> Batch {
        let id = tags.batch();
        let mut pending = BTreeMap::new();
        for r in requests {
            let tag = tags.tag();
            pending.insert(tag, (r.to, r.request.opcode(), r.request.db_id()));
            out.push(Action::Control {
                tag,
                to: r.to,
                request: r.request,
                srvid: r.srvid,
                flags: r.flags,
            });
        }
        if !pending.is_empty() {
            out.push(Action::Timer {
                at: now.after_ms(timeout_ms),
                timer: Timer::BatchDeadline(id),
            });
        }
        Batch {
            id,
            pending,
            replies: Vec::new(),
            failure: None,
        }
    }

    /// Takes the reply to `tag` if it belongs to this batch.
    pub fn answer(&mut self, tag: Tag, answer: &ControlAnswer) -> bool {
        let Some((pnn, opcode, db_id)) = self.pending.remove(&tag) else {
            return false;
        };
        if self.failure.is_some() {
            return true;
        }
        if answer.status != 0 && !status_is_value(opcode) {
            self.failure = Some(BatchError::Failed {
                pnn,
                opcode,
                status: answer.status,
                msg: answer.errmsg.clone().unwrap_or_default(),
            });
            return true;
        }
        match ControlReply::decode(opcode, &answer.data) {
            Ok(reply) => self.replies.push(Answered {
                pnn,
                db_id,
                status: answer.status,
                reply,
            }),
            Err(e) => {
                self.failure = Some(BatchError::Undecodable {
                    pnn,
                    opcode,
                    why: e.to_string(),
                })
            }
        }
        true
    }

    /// The deadline of batch `id` passed: fails this batch if it is that
    /// batch and still waits. True when it was this batch's deadline.
    pub fn deadline(&mut self, id: u32) -> bool {
        if id != self.id {
            return false;
        }
        if self.failure.is_none() {
            if let Some((_, (pnn, opcode, _))) = self.pending.iter().next() {
                self.failure = Some(BatchError::TimedOut {
                    pnn: *pnn,
                    opcode: *opcode,
                });
            }
        }
        true
    }

    /// True once every reply came or the batch failed.
    pub fn is_complete(&self) -> bool {
        self.failure.is_some() || self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(data: Vec<u8>) -> ControlAnswer {
        ControlAnswer {
            status: 0,
            data,
            errmsg: None,
        }
    }

    fn sent_tags(out: &[Action]) -> Vec<Tag> {
        out.iter()
            .filter_map(|a| match a {
                Action::Control { tag, .. } => Some(*tag),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn completes_when_all_answer_and_fails_on_error_or_deadline() {
        let mut tags = Tags::default();
        let mut out = Vec::new();
        let reqs = vec![
            Request::new(Pnn(0), ControlRequest::GetRecmode),
            Request::new(Pnn(1), ControlRequest::GetRecmode),
        ];
        let mut b = Batch::send(&mut tags, Time(0), 100, reqs.clone(), &mut out);
        let t = sent_tags(&out);
        assert_eq!(t.len(), 2);
        assert!(out.contains(&Action::Timer {
            at: Time(100),
            timer: Timer::BatchDeadline(1)
        }));
        // GET_RECMODE answers in the status: 1 is not a failure.
        assert!(b.answer(
            t[0],
            &ControlAnswer {
                status: 1,
                ..ok(vec![])
            }
        ));
        assert!(!b.is_complete());
        assert!(!b.answer(Tag(999), &ok(vec![])));
        assert!(b.answer(t[1], &ok(vec![])));
        assert!(b.is_complete() && b.failure.is_none());
        assert_eq!(b.replies[0].status, 1);

        let mut out = Vec::new();
        let mut b = Batch::send(&mut tags, Time(0), 100, reqs.clone(), &mut out);
        assert!(!b.deadline(1));
        assert!(b.deadline(2));
        assert!(matches!(b.failure, Some(BatchError::TimedOut { .. })));

        let mut out = Vec::new();
        let reqs = vec![Request::new(Pnn(2), ControlRequest::StartRecovery)];
        let mut b = Batch::send(&mut tags, Time(0), 100, reqs, &mut out);
        let t = sent_tags(&out);
        b.answer(
            t[0],
            &ControlAnswer {
                status: -1,
                data: vec![],
                errmsg: Some("no".into()),
            },
        );
        assert!(matches!(
            b.failure,
            Some(BatchError::Failed { status: -1, .. })
        ));
    }
}
