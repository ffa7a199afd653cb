//! The cluster decisions of the recovery daemon as pure state machines:
//! election and the cluster lock (`election`), the leader's periodic checks
//! (`monitor`), the recovery run (`recovery`), the record merge rule
//! (`merge`), the recovery database (`recdb`) and the vnn map a recovery
//! installs (`vnnmap`). Nothing here touches a socket, a clock or a thread: time
//! comes in as [`Time`], the world comes in as [`Event`]s, and what to do
//! goes out as [`Action`]s. `recoverd/` drives [`Recoverd`] over the local
//! daemon's unix socket; the simulation (`sim`, tests only) drives several
//! of them over a simulated network.

pub mod banning;
pub mod batch;
pub mod election;
pub mod ipalloc;
pub mod merge;
pub mod monitor;
pub mod recdb;
pub mod recoverd;
pub mod recovery;
pub mod takeover;
pub mod vnnmap;

#[cfg(test)]
mod sim;

pub use recoverd::{Recoverd, Settings};

use ctdb_protocol::{ControlRequest, Pnn, Srvid};

/// A point on the driver's clock, in milliseconds from an arbitrary start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// This time plus `ms` milliseconds.
    pub fn after_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// The tag of a control the recovery daemon sent; its reply carries it back
/// (on the wire it is the packet's reqid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u32);

/// The timers a state machine arms. The numbers are epochs: a timer whose
/// epoch is no longer current is ignored when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The main loop's interval (RecoverInterval).
    MainLoop,
    /// One main loop round now (this node just became leader), outside the
    /// interval.
    MonitorNow,
    /// The leader's broadcast interval (one second).
    LeaderBroadcast,
    /// No leader broadcast came for `leader timeout` seconds.
    LeaderTimeout(u32),
    /// The election period ends (ElectionTimeout after the last election
    /// message).
    ElectionEnd(u32),
    /// Send this node's election request again (it would win).
    ElectionResend(u32),
    /// A batch of controls is overdue (RecoverTimeout).
    BatchDeadline(u32),
}

/// What the cluster lock attempt answered (the helper's one character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// '0': the lock is held.
    Held,
    /// '1': another process holds it.
    Contended,
    /// '2': the helper timed out.
    Timeout,
    /// Anything else: the helper failed.
    Error,
}

impl LockOutcome {
    /// The outcome of a helper's answer byte.
    pub fn from_helper_byte(b: u8) -> LockOutcome {
        match b {
            b'0' => LockOutcome::Held,
            b'1' => LockOutcome::Contended,
            b'2' => LockOutcome::Timeout,
            _ => LockOutcome::Error,
        }
    }
}

/// The reply to one control: the status word and the raw payload, or a
/// transport failure the local daemon reported.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlAnswer {
    /// The reply's status (some controls answer with a value here).
    pub status: i32,
    /// The reply's data bytes.
    pub data: Vec<u8>,
    /// The reply's error message, if any.
    pub errmsg: Option<String>,
}

/// Something that happened, for a state machine to react to.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The driver starts the machine (it arms its first timers).
    Start,
    /// A timer armed by an [`Action::Timer`] fired.
    Timer(Timer),
    /// A message to one of the registered srvids.
    Message {
        /// The srvid it was sent to.
        srvid: Srvid,
        /// Its payload.
        data: Vec<u8>,
    },
    /// The reply to a control sent with [`Action::Control`].
    Reply {
        /// The tag of the control.
        tag: Tag,
        /// What came back.
        answer: ControlAnswer,
    },
    /// The answer to [`Action::TakeLock`].
    Lock(LockOutcome),
    /// The held cluster lock was lost (the helper exited).
    LockLost,
    /// The driver executed the actions of the previous step: streaming work
    /// may go on.
    Continue,
}

/// Something for the driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send a control to a node (through the local daemon); its reply comes
    /// back as [`Event::Reply`] with `tag`.
    Control {
        /// The tag the reply will carry.
        tag: Tag,
        /// The destination node.
        to: Pnn,
        /// The control and its payload.
        request: ControlRequest,
        /// The request's srvid field (0 for most controls).
        srvid: Srvid,
        /// The request's flags (`CONTROL_FLAG_*`).
        flags: u32,
    },
    /// Send a message to a srvid on a node (or a broadcast destination).
    Message {
        /// The destination node or broadcast.
        to: Pnn,
        /// The srvid.
        srvid: Srvid,
        /// The payload.
        data: Vec<u8>,
    },
    /// Register a srvid on the local daemon for this client.
    Register(Srvid),
    /// Deregister a srvid.
    Deregister(Srvid),
    /// Fire [`Event::Timer`] with `timer` at `at` (never cancelled: stale
    /// ones are ignored by epoch).
    Timer {
        /// When.
        at: Time,
        /// Which.
        timer: Timer,
    },
    /// Try to take the cluster lock; the answer comes as [`Event::Lock`].
    TakeLock,
    /// Release the cluster lock (or cancel a pending attempt).
    ReleaseLock,
    /// Deliver [`Event::Continue`] once these actions are executed.
    Continue,
    /// A line for the log.
    Log(Level, String),
}

/// Log levels of [`Action::Log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something unusual.
    Warning,
    /// A normal but significant event.
    Notice,
    /// Detail.
    Info,
    /// Tracing (timings of each step).
    Debug,
}

/// Appends a log action.
pub(crate) fn log(out: &mut Vec<Action>, level: Level, text: String) {
    out.push(Action::Log(level, text));
}
