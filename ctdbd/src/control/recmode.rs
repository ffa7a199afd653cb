//! The node's recovery state as a recovery run sets it: SET_RECMODE,
//! SETVNNMAP, START_RECOVERY, END_RECOVERY, the whole-node FREEZE, the
//! cluster lock's name (GET_RECLOCK_FILE) and the recovery daemon's pings.
//! GET_RECMODE and GETVNNMAP are in `node_state`.
//!
//! As in Samba, the daemon keeps what the recovery daemon tells it: a node
//! starts in recovery mode ACTIVE with generation INVALID, SETVNNMAP (only
//! while ACTIVE) sets the generation and map, each database's recovery
//! commit (DB_TRANSACTION_COMMIT) stamps it with that generation, and
//! SET_RECMODE NORMAL is refused until every database carries the vnn
//! map's generation.

use super::{Outcome, Registry, Request};
use crate::daemon::{Daemon, ReplyTo};
use crate::eventscript::{Event, EventStatus};
use crate::forward::Route;
use crate::transport::Origin;
use crate::{log_err, log_info, log_notice, log_warn};
use ctdb_protocol::packet::ReplyControl;
use ctdb_protocol::types::{
    RunState, VnnMap, NODE_FLAGS_DISCONNECTED, RECOVERY_ACTIVE, RECOVERY_NORMAL,
};
use ctdb_protocol::wire::{Reader, Timeval};
use ctdb_protocol::{ControlOpcode, ControlRequest, Layout, Pnn, Srvid};
use std::os::fd::AsFd;

/// Registers this concern's controls.
pub fn register(r: &mut Registry) {
    r.add(ControlOpcode::SetRecmode, set_recmode);
    r.add(ControlOpcode::SetVnnMap, set_vnn_map);
    r.add(ControlOpcode::StartRecovery, start_recovery);
    r.add(ControlOpcode::EndRecovery, end_recovery);
    r.add(ControlOpcode::Freeze, freeze_all);
    r.add(ControlOpcode::GetReclockFile, reclock_file);
    r.add(ControlOpcode::RecdPing, |_, req| {
        if !req.data().is_empty() {
            return Outcome::bad_size("RECD_PING", req.data().len());
        }
        Outcome::status(0)
    });
    r.add(ControlOpcode::RecdReclockLatency, reclock_latency);
    // Another node started: it learns the tickle list of every address
    // held here at once, as in Samba.
    r.add(ControlOpcode::Startup, |d, req| {
        if !req.data().is_empty() {
            return Outcome::bad_size("STARTUP", req.data().len());
        }
        d.send_tickle_lists(true);
        Outcome::status(0)
    });
}

/// The name Samba logs for a recovery mode.
fn mode_name(mode: u32) -> &'static str {
    if mode == RECOVERY_NORMAL {
        "NORMAL"
    } else {
        "ACTIVE"
    }
}

/// SET_RECMODE: ACTIVE at once; NORMAL only when every database carries
/// the vnn map's generation, after thawing a whole-node freeze and checking
/// that this daemon cannot take the cluster lock (its holder is the leader).
fn set_recmode(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 4 {
        return Outcome::bad_size("SET_RECMODE", req.data().len());
    }
    let Ok(mode) = Reader::new(req.data()).u32("recmode") else {
        return Outcome::status(-1);
    };
    if mode == d.state.recmode {
        log_info!("Recovery mode already set to {}", mode_name(mode));
        return Outcome::status(0);
    }
    log_notice!("Recovery mode set to {}", mode_name(mode));
    if mode == RECOVERY_ACTIVE {
        d.state.recmode = RECOVERY_ACTIVE;
        if matches!(req.origin, Origin::Client(_)) {
            tell_recovery_daemons(d);
        }
        return Outcome::status(0);
    }
    let generation = d.state.generation;
    if let Some(db) = d
        .dbs
        .iter()
        .find(|db| db.ready && db.generation != generation)
    {
        log_err!(
            "Inconsistent DB generation {} for {}",
            db.generation,
            db.name
        );
        log_err!("Recovery mode set to ACTIVE");
        return Outcome::status(-1);
    }
    if d.state.all_frozen {
        d.thaw_all();
    }
    let setting = d.state.config.cluster_lock.clone();
    match d.reclock_probe.probe(setting.as_deref()) {
        LockProbe::NotConfigured | LockProbe::Contended => {}
        LockProbe::Unchecked(why) => {
            log_warn!("Cluster lock not checked ({why}), allowing recmode set anyway");
        }
        LockProbe::Taken => {
            log_err!(
                "ERROR: Daemon able to take recovery lock on \"{}\" during recovery",
                setting.as_deref().unwrap_or("")
            );
            return Outcome::fail(
                "Took recovery lock from daemon during recovery - probably a cluster filesystem lock coherence problem",
            );
        }
        LockProbe::Failed(why) => {
            log_err!("Unexpected error when testing recovery lock: {why}");
            return Outcome::fail("Unexpected error when testing recovery lock");
        }
    }
    d.state.recmode = RECOVERY_NORMAL;
    d.on_recovery_ended();
    Outcome::status(0)
}

/// Broadcasts RECMODE_ACTIVE_BY_CLIENT (this node's pnn) to every connected
/// node, this one included, so that the leader's recovery daemon, wherever
/// it is, runs its monitoring round now (`ctdb recover` then takes one
/// round trip instead of up to a RecoverInterval).  Samba has no such
/// message: its leader notices at its next poll.
fn tell_recovery_daemons(d: &mut Daemon) {
    let pnn = Pnn(d.state.pnn);
    if let Route::Broadcast(nodes) = d.route_of(Pnn::BROADCAST_CONNECTED) {
        for to in nodes {
            d.send_message_to(
                to,
                Srvid::RECMODE_ACTIVE_BY_CLIENT,
                pnn.0.to_le_bytes().to_vec(),
            );
        }
    }
}

/// SETVNNMAP: the new generation and map, refused outside recovery.  Like
/// Samba's, it does not check the payload's size beyond its own layout.
fn set_vnn_map(d: &mut Daemon, req: &Request) -> Outcome {
    if d.state.recmode != RECOVERY_ACTIVE {
        log_err!("Attempt to set vnnmap when not in recovery");
        return Outcome::status(-1);
    }
    let Ok(map) = VnnMap::read(&mut Reader::new(req.data())) else {
        log_err!("Invalid vnnmap in SETVNNMAP ({} bytes)", req.data().len());
        return Outcome::status(-1);
    };
    d.state.generation = map.generation;
    d.state.vnn_map = map.map;
    Outcome::status(0)
}

/// START_RECOVERY: notes when the recovery started, then, as Samba, asks
/// the node that sent it (the leader) for its cluster lock setting: a
/// different one from this node's means a misconfigured cluster, and this
/// node shuts down.  A leader this node sees disconnected is not asked.
/// Samba's "startrecovery" event would run then; we have no event scripts.
fn start_recovery(d: &mut Daemon, req: &Request) -> Outcome {
    log_err!("Recovery has started");
    d.state.last_recovery_started = Timeval::now();
    let leader = req.header.srcnode;
    let disconnected = d
        .state
        .flags_of(leader)
        .is_none_or(|f| f & NODE_FLAGS_DISCONNECTED != 0);
    let to = req.reply_to();
    if leader.0 == d.state.pnn || disconnected {
        run_start_recovery_event(d, to);
        return Outcome::Later;
    }
    let then = Box::new(move |d: &mut Daemon, r: ReplyControl| {
        let (status, errmsg) = d.compare_reclock(r);
        if status != 0 {
            d.answer_request(to, status, &[], errmsg.as_deref());
            return;
        }
        run_start_recovery_event(d, to);
    });
    d.send_control(leader, ControlRequest::GetReclockFile, None, then);
    Outcome::Later
}

/// The "startrecovery" event; START_RECOVERY is answered with its status.
fn run_start_recovery_event(d: &mut Daemon, to: ReplyTo) {
    let done = Box::new(move |d: &mut Daemon, status: EventStatus| {
        if !status.ok() {
            log_err!("startrecovery event script failed (status {})", status.0);
        }
        d.answer_request(to, status.0, &[], None);
    });
    if let Err(e) = d.run_event(Event::StartRecovery, "", done) {
        log_err!("{}", e);
        log_err!("Unable to run startrecovery event");
        d.answer_request(to, -1, &[], None);
    }
}

/// END_RECOVERY (sent after SET_RECMODE NORMAL): runs the "recovered"
/// event and answers with its status; then the recovery is counted, its
/// end noted, and a node in its first recovery goes on to STARTUP.  In
/// recovery mode ACTIVE it fails, as Samba's does: "recovered" may not run
/// during a recovery.
fn end_recovery(d: &mut Daemon, req: &Request) -> Outcome {
    log_err!("Recovery has finished");
    if d.state.runstate == RunState::FirstRecovery {
        d.state.first_recovery_ending = true;
    }
    // Commits a recovery cut short get their answer (status 2).
    d.finish_trans3_commits();
    let to = req.reply_to();
    let done = Box::new(move |d: &mut Daemon, status: EventStatus| {
        d.stats.num_recoveries += 1;
        if !status.ok() {
            log_err!("recovered event script failed (status {})", status.0);
        }
        d.answer_request(to, status.0, &[], None);
        d.state.last_recovery_finished = Timeval::now();
        if d.state.runstate == RunState::FirstRecovery {
            d.first_recovery_done();
        }
    });
    if let Err(e) = d.run_event(Event::Recovered, "", done) {
        log_err!("{}", e);
        log_err!("Failed to end recovery");
        return Outcome::status(-1);
    }
    Outcome::Later
}

/// FREEZE: the whole-node freeze (`freeze_every_db`).
fn freeze_all(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("FREEZE", req.data().len());
    }
    d.freeze_every_db();
    Outcome::status(0)
}

/// GET_RECLOCK_FILE: the cluster lock setting with its NUL, or nothing.
fn reclock_file(d: &mut Daemon, req: &Request) -> Outcome {
    if !req.data().is_empty() {
        return Outcome::bad_size("GET_RECLOCK_FILE", req.data().len());
    }
    match &d.state.config.cluster_lock {
        Some(lock) => Outcome::value(lock),
        None => Outcome::ok(Vec::new()),
    }
}

/// RECD_RECLOCK_LATENCY: the recovery daemon's time to take the cluster
/// lock, in seconds, added to the statistics.
fn reclock_latency(d: &mut Daemon, req: &Request) -> Outcome {
    if req.data().len() != 8 {
        return Outcome::bad_size("RECD_RECLOCK_LATENCY", req.data().len());
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(req.data());
    d.stats.reclock_recd.update(f64::from_le_bytes(b));
    Outcome::status(0)
}

/// What trying the cluster lock from the daemon found.
#[derive(Debug, PartialEq, Eq)]
pub enum LockProbe {
    /// No cluster lock is configured.
    NotConfigured,
    /// Someone else holds it: the leader, as it should be.
    Contended,
    /// The daemon could take it: nobody holds it.
    Taken,
    /// A `!helper` lock: Samba runs the helper; we do not, and allow the
    /// change as Samba does when its check times out.
    Unchecked(&'static str),
    /// The lock file could not be opened or locked.
    Failed(String),
}

/// The file the daemon probes the cluster lock through.  It stays open:
/// closing any descriptor of a file drops every classic fcntl lock this
/// process holds on it, which would release a cluster lock taken in this
/// process (by the recovery daemon's thread).
#[derive(Default)]
pub struct ReclockProbe {
    open: Option<(String, std::fs::File)>,
}

impl ReclockProbe {
    /// Tries the lock Samba's fcntl helper takes (a write lock on byte 0)
    /// as an open-file-description lock, which conflicts with a lock held
    /// through any other open of the file, this process's included; a lock
    /// taken is released at once.
    pub fn probe(&mut self, setting: Option<&str>) -> LockProbe {
        let Some(setting) = setting else {
            return LockProbe::NotConfigured;
        };
        if setting.starts_with('!') {
            return LockProbe::Unchecked("lock helper command");
        }
        if self.open.as_ref().is_none_or(|(p, _)| p != setting) {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(setting)
            {
                Ok(f) => self.open = Some((setting.to_string(), f)),
                Err(e) => return LockProbe::Failed(format!("open {setting}: {e}")),
            }
        }
        let Some((_, file)) = &self.open else {
            return LockProbe::Failed(format!("open {setting}"));
        };
        match ofd_lock(file, libc::F_WRLCK) {
            Ok(()) => match ofd_lock(file, libc::F_UNLCK) {
                Ok(()) => LockProbe::Taken,
                Err(e) => LockProbe::Failed(format!("unlock {setting}: {e}")),
            },
            Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::EAGAIN) => LockProbe::Contended,
            Err(e) => LockProbe::Failed(format!("lock {setting}: {e}")),
        }
    }
}

/// Sets (or with F_UNLCK releases) an open-file-description lock on byte 0
/// without waiting.
fn ofd_lock(file: &std::fs::File, kind: libc::c_int) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    let lock = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    };
    fcntl(file.as_fd(), FcntlArg::F_OFD_SETLK(&lock)).map(|_| ())
}

impl Daemon {
    /// START_RECOVERY's check of the leader's GET_RECLOCK_FILE answer
    /// against this node's setting: the status (and error) to reply with.
    /// A mismatch shuts this node down.
    fn compare_reclock(&mut self, r: ReplyControl) -> (i32, Option<String>) {
        if r.status != 0 {
            log_err!("GET_RECLOCK failed");
            return (r.status, r.errmsg);
        }
        let remote = match r.data.split(|b| *b == 0).next() {
            Some(s) if !r.data.is_empty() => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        };
        let local = self.state.config.cluster_lock.clone();
        if remote != local {
            log_err!(
                "Recovery lock configuration inconsistent: recmaster has {}, this node has {}, shutting down",
                remote.as_deref().unwrap_or("NULL"),
                local.as_deref().unwrap_or("NULL")
            );
            self.exit_requested = true;
            return (-1, None);
        }
        log_info!("Recovery lock consistency check successful");
        (0, None)
    }

    /// True while the node is in recovery mode ACTIVE: calls and client
    /// work that need the cluster's agreement wait for `on_recovery_ended`.
    pub(crate) fn in_recovery(&self) -> bool {
        self.state.recmode == RECOVERY_ACTIVE
    }

    /// Runs when SET_RECMODE has set recovery mode NORMAL: the place for
    /// work deferred during recovery to be re-issued (deferred attaches
    /// here; record calls held back by recovery mode, call.rs; calls on
    /// frozen databases go again at each database's thaw).
    pub(crate) fn on_recovery_ended(&mut self) {
        self.release_deferred_attaches();
        self.reissue_held_calls();
    }

    /// The whole-node freeze: every database frozen, volatile records
    /// marked invalid (a node going inactive has nothing to contribute to
    /// the next recovery).
    pub(crate) fn freeze_every_db(&mut self) {
        if !self.state.all_frozen {
            log_err!("Freeze all");
        }
        for db in self.dbs.iter_mut().filter(|db| db.ready) {
            if db.kind() == crate::ltdb::Kind::Volatile {
                db.invalid_records = true;
            }
            if !db.frozen {
                log_err!("Freeze db: {}", db.name);
                db.frozen = true;
            }
        }
        self.state.all_frozen = true;
        log_err!("Freeze all: frozen");
    }

    /// Thaws every database after a whole-node FREEZE: open recovery
    /// transactions are cancelled and held-back calls replayed.
    pub(crate) fn thaw_all(&mut self) {
        log_err!("Thawing all");
        let ids: Vec<u32> = self
            .dbs
            .iter()
            .filter(|db| db.frozen)
            .map(|db| db.id)
            .collect();
        for id in ids {
            self.thaw(id);
        }
        self.state.all_frozen = false;
    }
}
