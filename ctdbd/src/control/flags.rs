//! Node flags: MODIFY_FLAGS (the leader telling this node about another
//! node's flags) and the controls that change this node's own flags
//! (STOP_NODE, CONTINUE_NODE, DISABLE_NODE, ENABLE_NODE, SET_BAN_STATE and
//! GET_BAN_STATE).  DISCONNECTED is
//! the node transport's to set; every other bit is kept here.

use super::{Outcome, Registry, Request};
use crate::daemon::Daemon;
use crate::db::Reply;
use crate::requests::{Completion, Tag};
use crate::{log_debug, log_err, log_info, log_notice, log_warn};
use ctdb_protocol::types::{
    BanState, NodeFlagChange, RunState, NODE_FLAGS_BANNED, NODE_FLAGS_DISCONNECTED,
    NODE_FLAGS_PERMANENTLY_DISABLED, NODE_FLAGS_STOPPED, RECOVERY_ACTIVE,
};
use ctdb_protocol::{ControlOpcode, Generation, Pnn};
use std::time::Duration;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::ModifyFlags, modify_flags);
    r.add(ControlOpcode::SetBanState, set_ban_state);
    r.add(ControlOpcode::GetBanState, |d, req| {
        if !req.data().is_empty() {
            return Outcome::bad_size("GET_BAN_STATE", req.data().len());
        }
        let state = d.ban.as_ref().map_or(
            BanState {
                pnn: Pnn(d.state.pnn),
                time: 0,
            },
            |b| b.state,
        );
        Outcome::value(&state)
    });
    r.add(ControlOpcode::StopNode, |d, req| {
        own_flag(d, req, "STOP_NODE", |d| {
            log_err!("Stopping node");
            let f = d.state.own_flags() | NODE_FLAGS_STOPPED;
            d.state.set_own_flags(f);
            d.become_inactive();
        })
    });
    r.add(ControlOpcode::ContinueNode, |d, req| {
        own_flag(d, req, "CONTINUE_NODE", |d| {
            log_err!("Continue node");
            let f = d.state.own_flags() & !NODE_FLAGS_STOPPED;
            d.state.set_own_flags(f);
        })
    });
    r.add(ControlOpcode::DisableNode, |d, req| {
        own_flag(d, req, "DISABLE_NODE", |d| {
            log_err!("Disable node");
            let f = d.state.own_flags() | NODE_FLAGS_PERMANENTLY_DISABLED;
            d.state.set_own_flags(f);
        })
    });
    r.add(ControlOpcode::EnableNode, |d, req| {
        own_flag(d, req, "ENABLE_NODE", |d| {
            log_err!("Enable node");
            let f = d.state.own_flags() & !NODE_FLAGS_PERMANENTLY_DISABLED;
            d.state.set_own_flags(f);
        })
    });
}

/// A control without payload that changes this node's own flags.
fn own_flag(d: &mut Daemon, req: &Request, name: &str, change: fn(&mut Daemon)) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size(name, req.data().len());
    }
    change(d);
    Outcome::status(0)
}

/// MODIFY_FLAGS: another node's flags as the leader saw them.  This node's
/// own flags and a disconnected node's are left alone, and DISCONNECTED is
/// never taken from the sender; a node that becomes healthy while this one
/// is still starting puts it into recovery.
fn modify_flags(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(change) = req.decode::<NodeFlagChange>() else {
        return Outcome::bad_size("MODIFY_FLAGS", req.data().len());
    };
    let pnn = change.pnn;
    if pnn.0 == d.state.pnn {
        log_debug!("Ignoring flag changes for current node");
        return Outcome::status(0);
    }
    let Some(old) = d.state.flags_of(pnn) else {
        log_err!("Node {} is invalid", pnn);
        return Outcome::status(-1);
    };
    if old & NODE_FLAGS_DISCONNECTED != 0 {
        log_debug!("Ignoring flag changes for disconnected node");
        return Outcome::status(0);
    }
    let new = (old & NODE_FLAGS_DISCONNECTED) | (change.new_flags & !NODE_FLAGS_DISCONNECTED);
    if new == old {
        return Outcome::status(0);
    }
    d.state.node_flags[pnn.0 as usize] = new;
    log_notice!(
        "Node {} has changed flags - 0x{:x} -> 0x{:x}",
        pnn,
        old,
        new
    );
    // Samba's node forces a recovery up to and including STARTUP.  Ours
    // only before its first recovery is over: in STARTUP it has been
    // recovered already, and every node of a starting cluster is in
    // STARTUP when the first of them becomes healthy, so Samba's rule
    // costs one recovery per node there and gains nothing.  "Over" is
    // END_RECOVERY, not the end of its event: the leader, running at
    // once, says it is healthy while this node's event may still run.
    if new == 0 && d.state.runstate < RunState::Startup && !d.state.first_recovery_ending {
        log_err!("Node {} became healthy - force recovery for startup", pnn);
        d.state.recmode = RECOVERY_ACTIVE;
    }
    Outcome::status(0)
}

/// A ban in force on this node: what SET_BAN_STATE said, and the tracked
/// request whose timeout lifts it.
pub struct Ban {
    /// The node (this one) and the ban's length in seconds.
    pub state: BanState,
    /// The timer's request; answering or cancelling it ends the wait.
    pub timer: Tag,
}

/// SET_BAN_STATE: a ban of this node for `time` seconds (0 lifts it).  A
/// new ban makes the node inactive; when it runs out the BANNED flag goes,
/// unless the databases were not all frozen by then (the node is banned
/// again).  Bans of other nodes are refused.
fn set_ban_state(d: &mut Daemon, req: &Request) -> Outcome {
    let Ok(ban) = req.decode::<BanState>() else {
        return Outcome::bad_size("SET_BAN_STATE", req.data().len());
    };
    log_info!("SET BAN STATE");
    if ban.pnn.0 != d.state.pnn {
        log_warn!("SET_BAN_STATE control for PNN {} ignored", ban.pnn);
        return Outcome::status(-1);
    }
    d.ban_self(ban);
    Outcome::status(0)
}

impl Daemon {
    /// Bans (or with time 0 unbans) this node, as SET_BAN_STATE does.
    pub(crate) fn ban_self(&mut self, ban: BanState) {
        let already_banned = match self.ban.take() {
            Some(old) => {
                let timer = old.timer;
                self.requests.cancel_where(|t| t == timer);
                true
            }
            None => false,
        };
        if ban.time == 0 {
            log_err!("Unbanning this node");
            let f = self.state.own_flags() & !NODE_FLAGS_BANNED;
            self.state.set_own_flags(f);
            return;
        }
        if self.state.tunables.enable_bans == 0 {
            log_err!("Bans are disabled - ignoring ban of node {}", ban.pnn);
            return;
        }
        log_err!("Banning this node for {} seconds", ban.time);
        let f = self.state.own_flags() | NODE_FLAGS_BANNED;
        self.state.set_own_flags(f);
        let timer = self.track_with(
            |tag| Box::new(move |d: &mut Daemon, done| d.ban_over(tag, done)),
            Some(Duration::from_secs(ban.time as u64)),
        );
        self.ban = Some(Ban { state: ban, timer });
        if !already_banned {
            self.become_inactive();
        }
    }

    /// A ban's time ran out.
    fn ban_over(&mut self, timer: Tag, done: Completion<Reply>) {
        if done != Completion::TimedOut || self.ban.as_ref().map(|b| b.timer) != Some(timer) {
            return;
        }
        if !self.state.all_frozen {
            log_err!(
                "Banning timed out, but not all databases frozen yet - banning this node again."
            );
            let again = BanState {
                pnn: Pnn(self.state.pnn),
                time: self.state.tunables.recovery_ban_period,
            };
            self.ban_self(again);
            return;
        }
        log_err!("Banning timed out");
        self.ban = None;
        let f = self.state.own_flags() & !NODE_FLAGS_BANNED;
        self.state.set_own_flags(f);
    }

    /// The node leaves the cluster's work, as Samba's does when it is
    /// stopped or banned: generation INVALID (so it ignores calls and
    /// DMASTER packets), recovery mode ACTIVE, every database frozen and
    /// every public address it holds released.
    pub(crate) fn become_inactive(&mut self) {
        log_warn!("Making node INACTIVE");
        self.state.generation = Generation::INVALID;
        for db in self.dbs.iter_mut() {
            db.generation = Generation::INVALID;
        }
        if self.state.recmode != RECOVERY_ACTIVE {
            log_notice!("Recovery mode set to ACTIVE");
            self.state.recmode = RECOVERY_ACTIVE;
        }
        self.freeze_every_db();
        log_notice!("Dropping all public IP addresses");
        self.release_all_ips();
    }
}
