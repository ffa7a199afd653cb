//! How each kind of request moves on when a reply (or a message) for it
//! arrives: the multi-packet jobs (attach, migration, traverse, leader)
//! send their next packet here.

use ctdb_protocol::ltdb::{RecData, LTDB_HEADER_LEN};
use ctdb_protocol::packet::ReplyControl;
use ctdb_protocol::types::TraverseStartExt;
use ctdb_protocol::{ControlOpcode, ControlReply, ControlRequest, Layout, Packet, Pnn, Srvid};

use crate::connection::Connection;
use crate::database::{Database, DbHandle};
use crate::error::ClientError;
use crate::request::{AttachStep, Event, Job, LeaderStep, Outcome, RequestId, TraverseStep};

impl Connection {
    /// Moves request `id` on with the reply `packet`.
    pub(crate) fn advance(&mut self, id: RequestId, packet: Packet) {
        let Some(job) = self.requests.get(&id).map(|r| r.job.clone()) else {
            return;
        };
        match (job, packet) {
            (Job::OwnPnn, Packet::ReplyControl(reply)) => {
                self.set_pnn(&reply);
                self.finish(id, Ok(Outcome::Finished));
            }
            (Job::Control(opcode), Packet::ReplyControl(reply)) => {
                self.finish(id, Ok(Outcome::Control(opcode, reply)));
            }
            (Job::Attach { step, .. }, Packet::ReplyControl(reply)) => {
                self.attach_step(id, step, reply);
            }
            (Job::Migrate { db, key, readonly }, packet) => {
                self.migrate_step(id, db, &key, readonly, packet);
            }
            (Job::Traverse { step, srvid, db }, Packet::ReplyControl(reply)) => {
                self.traverse_step(id, db, srvid, step, reply);
            }
            (Job::Leader { step, .. }, Packet::ReplyControl(reply)) => {
                self.leader_step(id, step, reply);
            }
            _ => self.finish(id, Err(ClientError::UnexpectedReply)),
        }
    }

    /// Sets the job of a running request.
    fn set_job(&mut self, id: RequestId, job: Job) {
        if let Some(r) = self.requests.get_mut(&id) {
            r.job = job;
        }
    }

    /// DB_ATTACH gave the id, GETDBPATH the path, DB_OPEN_FLAGS the flags.
    fn attach_step(&mut self, id: RequestId, step: AttachStep, reply: ReplyControl) {
        let Some(Job::Attach {
            name, persistent, ..
        }) = self.requests.get(&id).map(|r| r.job.clone())
        else {
            return;
        };
        let opcode = match (&step, persistent) {
            (AttachStep::Attach, false) => ControlOpcode::DbAttach,
            (AttachStep::Attach, true) => ControlOpcode::DbAttachPersistent,
            (AttachStep::Path(_), _) => ControlOpcode::GetDbPath,
            (AttachStep::Flags(..), _) => ControlOpcode::DbOpenFlags,
        };
        let decoded = Connection::control_ok(opcode, reply)
            .and_then(|r| r.reply(opcode).map_err(ClientError::from));
        let next = match (step, decoded) {
            (_, Err(e)) => return self.finish(id, Err(e)),
            (AttachStep::Attach, Ok(ControlReply::DbAttach(db_id)))
            | (AttachStep::Attach, Ok(ControlReply::DbAttachPersistent(db_id))) => {
                self.send_control(
                    id,
                    Pnn::CURRENT_NODE,
                    ControlRequest::GetDbPath(db_id),
                    Srvid(0),
                );
                AttachStep::Path(db_id)
            }
            (AttachStep::Path(db_id), Ok(ControlReply::GetDbPath(path))) => {
                let request = ControlRequest::DbOpenFlags(db_id);
                self.send_control(id, Pnn::CURRENT_NODE, request, Srvid(0));
                AttachStep::Flags(db_id, path)
            }
            (AttachStep::Flags(db_id, path), Ok(ControlReply::DbOpenFlags(flags))) => {
                let opened = Database::open(db_id, name, persistent, &path, flags as u32);
                let result = opened.map(|d| {
                    self.dbs.push(Some(d));
                    Outcome::Attached(DbHandle(self.dbs.len() - 1))
                });
                return self.finish(id, result);
            }
            _ => return self.finish(id, Err(ClientError::UnexpectedReply)),
        };
        self.set_job(
            id,
            Job::Attach {
                name,
                persistent,
                step: next,
            },
        );
    }

    /// The migration call came back: look at the record again, and call
    /// again when another node took it meanwhile.
    fn migrate_step(
        &mut self,
        id: RequestId,
        db: DbHandle,
        key: &[u8],
        readonly: bool,
        packet: Packet,
    ) {
        match packet {
            Packet::ReplyCall(reply) if reply.status == 0 => {}
            Packet::ReplyCall(reply) => {
                return self.finish(
                    id,
                    Err(ClientError::CallFailed {
                        status: reply.status,
                    }),
                )
            }
            Packet::ReplyError(e) => {
                return self.finish(id, Err(ClientError::CallFailed { status: e.status }))
            }
            _ => return self.finish(id, Err(ClientError::UnexpectedReply)),
        }
        if self.requests.get(&id).is_some_and(|r| r.cancelled) {
            return self.finish(id, Ok(Outcome::Finished));
        }
        let looked = self.try_lock_for(db, key, readonly);
        match looked {
            Ok(Some(lock)) => self.finish(id, Ok(Outcome::Locked(lock))),
            Ok(None) => match self.database(db).map(|d| d.id) {
                Ok(db_id) => self.send_call(id, db_id, key, readonly),
                Err(e) => self.finish(id, Err(e)),
            },
            Err(e) => self.finish(id, Err(e)),
        }
    }

    /// REGISTER_SRVID done: start the traverse; DEREGISTER_SRVID done: end.
    fn traverse_step(
        &mut self,
        id: RequestId,
        db: DbHandle,
        srvid: Srvid,
        step: TraverseStep,
        reply: ReplyControl,
    ) {
        match step {
            TraverseStep::Register => {
                if let Err(e) = Connection::control_ok(ControlOpcode::RegisterSrvid, reply) {
                    return self.finish(id, Err(e));
                }
                let Ok(db_id) = self.database(db).map(|d| d.id) else {
                    return self.traverse_end(id, Err(ClientError::UnknownDatabase));
                };
                let start = TraverseStartExt {
                    db_id,
                    reqid: 0,
                    srvid,
                    with_empty_records: false,
                };
                let request = ControlRequest::TraverseStartExt(start);
                self.send_control(id, Pnn::CURRENT_NODE, request, Srvid(0));
                self.set_job(
                    id,
                    Job::Traverse {
                        db,
                        srvid,
                        step: TraverseStep::Records,
                    },
                );
            }
            TraverseStep::Records => {
                // The start control's reply: records come (or came) as messages.
                if let Err(e) = Connection::control_ok(ControlOpcode::TraverseStartExt, reply) {
                    self.traverse_end(id, Err(e));
                }
            }
            TraverseStep::Deregister(result) => {
                self.finish(id, result.map(|()| Outcome::Finished));
            }
        }
    }

    /// Ends a traverse: deregisters its srvid, then completes with `result`.
    pub(crate) fn traverse_end(&mut self, id: RequestId, result: Result<(), ClientError>) {
        let Some(Job::Traverse { db, srvid, step }) = self.requests.get(&id).map(|r| r.job.clone())
        else {
            return;
        };
        if matches!(step, TraverseStep::Deregister(_)) {
            return;
        }
        self.traverses.remove(&srvid);
        // A start reply still outstanding is not waited for.
        self.wire.retain(|_, owner| *owner != id);
        self.send_control(
            id,
            Pnn::CURRENT_NODE,
            ControlRequest::DeregisterSrvid,
            srvid,
        );
        let step = TraverseStep::Deregister(result);
        self.set_job(id, Job::Traverse { db, srvid, step });
    }

    /// Stops a traverse early (the caller's record callback asked to).
    pub fn stop_traverse(&mut self, id: RequestId) {
        self.traverse_end(id, Ok(()));
    }

    /// A message arrived: a traverse record, a leader broadcast, or the
    /// caller's.
    pub(crate) fn on_message(&mut self, srvid: Srvid, data: Vec<u8>, events: &mut Vec<Event>) {
        if let Some(&id) = self.traverses.get(&srvid) {
            self.traverse_message(id, &data, events);
            return;
        }
        if srvid == Srvid::LEADER {
            if let Ok(leader) = Pnn::decode(&data) {
                self.leader_seen(leader);
            }
        }
        events.push(Event::Message { srvid, data });
    }

    /// One record message of traverse `id`.
    fn traverse_message(&mut self, id: RequestId, data: &[u8], events: &mut Vec<Event>) {
        let rec = match RecData::decode(data) {
            Ok(rec) => rec,
            Err(e) => return self.traverse_end(id, Err(e.into())),
        };
        if rec.key.is_empty() && rec.data.is_empty() {
            return self.traverse_end(id, Ok(()));
        }
        if rec.data.len() <= LTDB_HEADER_LEN {
            return;
        }
        let cancelled = self.requests.get(&id).is_none_or(|r| r.cancelled);
        if !cancelled {
            events.push(Event::TraverseRecord {
                id,
                key: rec.key,
                data: rec.data[LTDB_HEADER_LEN..].to_vec(),
            });
        }
    }

    /// A leader broadcast: every leader request waiting for one ends.
    fn leader_seen(&mut self, leader: Pnn) {
        let waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                matches!(
                    r.job,
                    Job::Leader {
                        step: LeaderStep::Waiting,
                        ..
                    }
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.leader_done(id, Ok(leader));
        }
    }

    /// Deregisters a leader request's srvid and ends it with `result` then.
    pub(crate) fn leader_done(&mut self, id: RequestId, result: Result<Pnn, ClientError>) {
        let Some(Job::Leader { deadline, .. }) = self.requests.get(&id).map(|r| r.job.clone())
        else {
            return;
        };
        self.send_control(
            id,
            Pnn::CURRENT_NODE,
            ControlRequest::DeregisterSrvid,
            Srvid::LEADER,
        );
        let step = LeaderStep::Deregister(result);
        self.set_job(id, Job::Leader { step, deadline });
    }

    /// REGISTER_SRVID for the broadcasts done: wait; DEREGISTER done: end.
    fn leader_step(&mut self, id: RequestId, step: LeaderStep, reply: ReplyControl) {
        let Some(Job::Leader { deadline, .. }) = self.requests.get(&id).map(|r| r.job.clone())
        else {
            return;
        };
        match step {
            LeaderStep::Register => {
                match Connection::control_ok(ControlOpcode::RegisterSrvid, reply) {
                    Ok(_) => self.set_job(
                        id,
                        Job::Leader {
                            step: LeaderStep::Waiting,
                            deadline,
                        },
                    ),
                    Err(e) => self.finish(id, Err(e)),
                }
            }
            LeaderStep::Waiting => {}
            LeaderStep::Deregister(result) => self.finish(id, result.map(Outcome::Leader)),
        }
    }
}
