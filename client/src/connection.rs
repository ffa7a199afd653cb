//! A non-blocking connection to a ctdbd over its unix socket: an output
//! queue of whole packets, a table of requests matched to replies by reqid,
//! and `service`, which moves bytes when the caller's poll says so and
//! advances every request the replies concern.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ctdb_protocol::packet::{Framer, ReplyControl, ReqCall, ReqControl, ReqMessage};
use ctdb_protocol::packet::{CALL_FLAG_IMMEDIATE_MIGRATION, CALL_FLAG_WANT_READONLY, CALL_ID_NULL};
use ctdb_protocol::{ControlOpcode, ControlRequest, Header, Operation, Packet, Pnn, Srvid};

use crate::database::{Database, DbHandle, HeldRecord, LocalLook};
use crate::error::ClientError;
use crate::request::{Event, Job, LockId, Outcome, Request, RequestId};

/// How long a leader request waits for a broadcast.
pub const LEADER_WAIT: Duration = Duration::from_secs(10);

/// First srvid of the range traverses get their records on.
const TRAVERSE_SRVID_BASE: u64 = 0xBE00_0000_0000_0000;

/// One packet waiting to be written.
struct Outgoing {
    owner: Option<RequestId>,
    bytes: Vec<u8>,
    written: usize,
}

/// What locking a record gave at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockAttempt {
    /// The record was local: its lock is held now.
    Held(LockId),
    /// The record is being migrated; the request completes with the lock.
    Pending(RequestId),
}

/// A connection to one ctdbd.
pub struct Connection {
    stream: UnixStream,
    framer: Framer,
    outq: VecDeque<Outgoing>,
    /// Outstanding wire reqids and the request each belongs to.
    pub(crate) wire: HashMap<u32, RequestId>,
    pub(crate) requests: HashMap<RequestId, Request>,
    next_reqid: u32,
    pnn: Option<Pnn>,
    broken: bool,
    pub(crate) dbs: Vec<Option<Database>>,
    pub(crate) held: HashMap<LockId, HeldRecord>,
    next_lock: u64,
    next_traverse: u64,
    /// srvid of each running traverse's records.
    pub(crate) traverses: HashMap<Srvid, RequestId>,
    /// Events produced outside `service` (delivered by its next call).
    pub(crate) pending_events: Vec<Event>,
}

impl Connection {
    /// Connects to the daemon socket at `path` and queues the GET_PNN that
    /// tells the connection its node (needed to recognise local records).
    pub fn connect(path: &Path) -> Result<Connection, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| ClientError::Connect {
            path: path.display().to_string(),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
        stream
            .set_nonblocking(true)
            .map_err(|e| ClientError::Connect {
                path: path.display().to_string(),
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            })?;
        let mut conn = Connection {
            stream,
            framer: Framer::new(),
            outq: VecDeque::new(),
            wire: HashMap::new(),
            requests: HashMap::new(),
            next_reqid: 1,
            pnn: None,
            broken: false,
            dbs: Vec::new(),
            held: HashMap::new(),
            next_lock: 1,
            next_traverse: 1,
            traverses: HashMap::new(),
            pending_events: Vec::new(),
        };
        conn.start(Job::OwnPnn, |c, id| {
            c.send_control(id, Pnn::CURRENT_NODE, ControlRequest::GetPnn, Srvid(0))
        });
        Ok(conn)
    }

    /// The socket's descriptor, for the caller's poll.
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The socket, borrowed for a poll.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// True when there are bytes to write (poll for POLLOUT too).
    pub fn wants_write(&self) -> bool {
        !self.outq.is_empty()
    }

    /// True once the connection failed; every request has ended by then.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// This connection's node, once the daemon told it.
    pub fn pnn(&self) -> Option<Pnn> {
        self.pnn
    }

    /// Requests with a packet still in the output queue.
    pub fn num_out_queue(&self) -> usize {
        self.requests
            .values()
            .filter(|r| r.queued && r.result.is_none() && !matches!(r.job, Job::OwnPnn))
            .count()
    }

    /// Requests sent and waiting for their reply.
    pub fn num_in_flight(&self) -> usize {
        self.requests
            .values()
            .filter(|r| !r.queued && r.result.is_none() && !matches!(r.job, Job::OwnPnn))
            .count()
    }

    /// True when the request ended (its result can be read).
    pub fn is_done(&self, id: RequestId) -> bool {
        self.requests.get(&id).is_some_and(|r| r.result.is_some())
    }

    /// True while the request runs (known and not ended).
    pub fn is_pending(&self, id: RequestId) -> bool {
        self.requests.get(&id).is_some_and(|r| r.result.is_none())
    }

    /// The result of a finished request.
    pub fn result(&self, id: RequestId) -> Result<&Outcome, ClientError> {
        let request = self.requests.get(&id).ok_or(ClientError::UnknownRequest)?;
        match &request.result {
            None => Err(ClientError::NotDone),
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(e)) => Err(e.clone()),
        }
    }

    /// Forgets a request; one still running is cancelled instead (its
    /// reply is dropped when it comes).
    pub fn free(&mut self, id: RequestId) {
        match self.requests.get_mut(&id) {
            Some(r) if r.result.is_none() => r.cancelled = true,
            Some(_) => {
                self.requests.remove(&id);
            }
            None => {}
        }
    }

    /// Cancels a request: it runs on but reports nothing, and is forgotten
    /// when it ends.
    pub fn cancel(&mut self, id: RequestId) {
        self.free(id);
    }

    /// Sends a control to `dest`; the request completes with its reply.
    pub fn control(&mut self, dest: Pnn, request: ControlRequest) -> RequestId {
        self.control_with_srvid(dest, request, Srvid(0))
    }

    /// Sends a control with its srvid field set (REGISTER_SRVID and friends).
    pub fn control_with_srvid(
        &mut self,
        dest: Pnn,
        request: ControlRequest,
        srvid: Srvid,
    ) -> RequestId {
        let opcode = request.opcode();
        self.start(Job::Control(opcode), |c, id| {
            c.send_control(id, dest, request, srvid)
        })
    }

    /// Registers a message handler srvid with the daemon.
    pub fn register_srvid(&mut self, srvid: Srvid) -> RequestId {
        self.control_with_srvid(Pnn::CURRENT_NODE, ControlRequest::RegisterSrvid, srvid)
    }

    /// Deregisters a message handler srvid.
    pub fn deregister_srvid(&mut self, srvid: Srvid) -> RequestId {
        self.control_with_srvid(Pnn::CURRENT_NODE, ControlRequest::DeregisterSrvid, srvid)
    }

    /// Queues a message for the handlers of `srvid` on node `pnn` (no reply).
    pub fn send_message(&mut self, pnn: Pnn, srvid: Srvid, data: &[u8]) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Disconnected);
        }
        let reqid = self.new_reqid();
        let body = Packet::ReqMessage(ReqMessage {
            srvid,
            data: data.to_vec(),
        });
        self.queue(None, body, pnn, reqid);
        Ok(())
    }

    /// Asks for the cluster leader: waits (up to [`LEADER_WAIT`]) for the
    /// leader's broadcast, as Samba 4.17's tool does (GET_RECMASTER is gone).
    pub fn leader(&mut self) -> RequestId {
        let job = Job::Leader {
            step: crate::request::LeaderStep::Register,
            deadline: Instant::now() + LEADER_WAIT,
        };
        self.start(job, |c, id| {
            c.send_control(
                id,
                Pnn::CURRENT_NODE,
                ControlRequest::RegisterSrvid,
                Srvid::LEADER,
            )
        })
    }

    /// Starts attaching database `name`: DB_ATTACH (or DB_ATTACH_PERSISTENT),
    /// GETDBPATH, DB_OPEN_FLAGS, then the local tdb is opened.
    pub fn attach(&mut self, name: &str, persistent: bool) -> RequestId {
        let job = Job::Attach {
            name: name.to_string(),
            persistent,
            step: crate::request::AttachStep::Attach,
        };
        let request = if persistent {
            ControlRequest::DbAttachPersistent(name.to_string())
        } else {
            ControlRequest::DbAttach(name.to_string())
        };
        self.start(job, |c, id| {
            c.send_control(id, Pnn::CURRENT_NODE, request, Srvid(0))
        })
    }

    /// The database an attach request gave.
    pub fn attached(&self, id: RequestId) -> Result<DbHandle, ClientError> {
        match self.result(id)? {
            Outcome::Attached(db) => Ok(*db),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// The attached database `db`.
    pub fn database(&self, db: DbHandle) -> Result<&Database, ClientError> {
        self.dbs
            .get(db.0)
            .and_then(Option::as_ref)
            .ok_or(ClientError::UnknownDatabase)
    }

    /// Detaches `db` locally: its held locks are released, its tdb closed.
    pub fn detach(&mut self, db: DbHandle) {
        let locks: Vec<LockId> = self
            .held
            .iter()
            .filter(|(_, h)| h.db == db)
            .map(|(id, _)| *id)
            .collect();
        for lock in locks {
            let _ = self.release(lock);
        }
        if let Some(slot) = self.dbs.get_mut(db.0) {
            if let Some(d) = slot.take() {
                d.close();
            }
        }
    }

    /// Locks record `key` of `db`: at once when this node holds it, else
    /// after migrating it here (REQ_CALL with immediate migration, looked
    /// at again when the reply comes, as often as needed).  One lock at a
    /// time per connection, as libctdb allows.
    pub fn lock_record(
        &mut self,
        db: DbHandle,
        key: &[u8],
        readonly: bool,
    ) -> Result<LockAttempt, ClientError> {
        if !self.held.is_empty() {
            return Err(ClientError::LockHeld);
        }
        if self.broken {
            return Err(ClientError::Disconnected);
        }
        if let Some(lock) = self.try_lock_for(db, key, readonly)? {
            return Ok(LockAttempt::Held(lock));
        }
        let db_id = self.database(db)?.id;
        let job = Job::Migrate {
            db,
            key: key.to_vec(),
            readonly,
        };
        let id = self.start(job, |c, id| c.send_call(id, db_id, key, readonly));
        Ok(LockAttempt::Pending(id))
    }

    /// The lock a record-lock request ended with.
    pub fn locked(&self, id: RequestId) -> Result<LockId, ClientError> {
        match self.result(id)? {
            Outcome::Locked(lock) => Ok(*lock),
            _ => Err(ClientError::WrongKind),
        }
    }

    /// The held record of `lock`.
    pub fn record(&self, lock: LockId) -> Result<&HeldRecord, ClientError> {
        self.held.get(&lock).ok_or(ClientError::NotHeld)
    }

    /// Writes the value of a held record of a volatile database.
    pub fn write_record(&mut self, lock: LockId, data: &[u8]) -> Result<(), ClientError> {
        let held = self.held.get_mut(&lock).ok_or(ClientError::NotHeld)?;
        if held.readonly {
            return Err(ClientError::ReadOnly);
        }
        let db = self
            .dbs
            .get_mut(held.db.0)
            .and_then(Option::as_mut)
            .ok_or(ClientError::UnknownDatabase)?;
        if db.persistent {
            return Err(ClientError::Persistent);
        }
        db.store(held, data)
    }

    /// Releases a held record lock.
    pub fn release(&mut self, lock: LockId) -> Result<(), ClientError> {
        let held = self.held.remove(&lock).ok_or(ClientError::NotHeld)?;
        let db = self
            .dbs
            .get_mut(held.db.0)
            .and_then(Option::as_mut)
            .ok_or(ClientError::UnknownDatabase)?;
        db.unlock(&held.key)
    }

    /// Starts a traverse of `db` on its node: the records come as
    /// `TraverseRecord` events, then the request completes.
    pub fn traverse(&mut self, db: DbHandle) -> Result<RequestId, ClientError> {
        self.database(db)?;
        let srvid =
            Srvid(TRAVERSE_SRVID_BASE | (u64::from(std::process::id()) << 24) | self.next_traverse);
        self.next_traverse += 1;
        let job = Job::Traverse {
            db,
            srvid,
            step: crate::request::TraverseStep::Register,
        };
        let id = self.start(job, |c, id| {
            c.send_control(id, Pnn::CURRENT_NODE, ControlRequest::RegisterSrvid, srvid)
        });
        self.traverses.insert(srvid, id);
        Ok(id)
    }

    /// Looks at the local record under its chain lock; a usable one stays
    /// locked and gets a lock handle.
    pub(crate) fn try_lock_for(
        &mut self,
        db: DbHandle,
        key: &[u8],
        readonly: bool,
    ) -> Result<Option<LockId>, ClientError> {
        let pnn = self.pnn;
        let database = self
            .dbs
            .get_mut(db.0)
            .and_then(Option::as_mut)
            .ok_or(ClientError::UnknownDatabase)?;
        match database.look(key, pnn, readonly)? {
            LocalLook::Migrate => Ok(None),
            LocalLook::Usable {
                header,
                data,
                readonly,
            } => {
                let lock = LockId(self.next_lock);
                self.next_lock += 1;
                let held = HeldRecord {
                    db,
                    key: key.to_vec(),
                    header,
                    data,
                    readonly,
                };
                self.held.insert(lock, held);
                Ok(Some(lock))
            }
        }
    }

    /// Creates a request for `job` and sends its first packet with `first`.
    fn start(&mut self, job: Job, first: impl FnOnce(&mut Connection, RequestId)) -> RequestId {
        let id = RequestId(self.peek_reqid());
        self.requests.insert(id, Request::new(job));
        if self.broken {
            self.finish(id, Err(ClientError::Disconnected));
        } else {
            first(self, id);
        }
        id
    }

    /// The next free reqid, not taken yet.
    fn peek_reqid(&mut self) -> u32 {
        while self.next_reqid == 0
            || self.wire.contains_key(&self.next_reqid)
            || self.requests.contains_key(&RequestId(self.next_reqid))
        {
            self.next_reqid = self.next_reqid.wrapping_add(1);
        }
        self.next_reqid
    }

    /// Takes the next free reqid.
    fn new_reqid(&mut self) -> u32 {
        let reqid = self.peek_reqid();
        self.next_reqid = self.next_reqid.wrapping_add(1);
        reqid
    }

    /// Queues a control packet for request `id`.
    pub(crate) fn send_control(
        &mut self,
        id: RequestId,
        dest: Pnn,
        request: ControlRequest,
        srvid: Srvid,
    ) {
        let body = Packet::ReqControl(ReqControl {
            opcode: request.opcode(),
            srvid,
            client_id: 0,
            flags: 0,
            data: request.to_bytes(),
        });
        self.send_for(id, dest, body);
    }

    /// Queues the migration call of a record for request `id`.
    pub(crate) fn send_call(
        &mut self,
        id: RequestId,
        db_id: ctdb_protocol::DbId,
        key: &[u8],
        readonly: bool,
    ) {
        let mut flags = CALL_FLAG_IMMEDIATE_MIGRATION;
        if readonly {
            flags |= CALL_FLAG_WANT_READONLY;
        }
        let body = Packet::ReqCall(ReqCall {
            flags,
            db_id,
            callid: CALL_ID_NULL,
            hopcount: 0,
            key: key.to_vec(),
            calldata: Vec::new(),
        });
        self.send_for(id, Pnn::CURRENT_NODE, body);
    }

    /// Queues a packet that expects a reply for request `id`.
    fn send_for(&mut self, id: RequestId, dest: Pnn, body: Packet) {
        let reqid = if self.wire.contains_key(&id.0) || self.wire_used_elsewhere(id) {
            self.new_reqid()
        } else {
            id.0
        };
        self.wire.insert(reqid, id);
        self.queue(Some(id), body, dest, reqid);
    }

    /// True when the request's own number already went out once (its later
    /// packets take fresh reqids so that a late reply is not mistaken).
    fn wire_used_elsewhere(&self, id: RequestId) -> bool {
        self.requests
            .get(&id)
            .is_some_and(|r| !matches!(r.job, Job::OwnPnn) && r.queued_once())
    }

    /// Encodes a packet into the output queue.
    fn queue(&mut self, owner: Option<RequestId>, body: Packet, dest: Pnn, reqid: u32) {
        let src = self.pnn.unwrap_or(Pnn(0));
        let header = Header::new(body.operation(), dest, src, reqid);
        let bytes = body.encode(header);
        if let Some(r) = owner.and_then(|id| self.requests.get_mut(&id)) {
            r.queued = true;
            r.mark_queued_once();
        }
        self.outq.push_back(Outgoing {
            owner,
            bytes,
            written: 0,
        });
        if owner.is_none() && self.next_reqid == reqid {
            self.next_reqid = self.next_reqid.wrapping_add(1);
        }
    }

    /// Moves bytes as `readable`/`writable` allow (from the caller's poll)
    /// and advances the requests the packets received concern; returns what
    /// happened.  After a failure of the socket every running request ends
    /// with `Disconnected`.
    pub fn service(&mut self, readable: bool, writable: bool) -> Vec<Event> {
        let mut events = std::mem::take(&mut self.pending_events);
        if self.broken {
            return events;
        }
        if writable {
            self.flush();
        }
        if readable && !self.broken {
            self.read_packets(&mut events);
        }
        self.check_deadlines();
        if self.broken {
            self.fail_all();
        }
        events.append(&mut self.pending_events);
        events
    }

    /// Writes queued packets until the socket would block.
    fn flush(&mut self) {
        while let Some(out) = self.outq.front_mut() {
            match self.stream.write(&out.bytes[out.written..]) {
                Ok(0) => {
                    self.broken = true;
                    return;
                }
                Ok(n) => out.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
            if out.written == out.bytes.len() {
                let done = self.outq.pop_front();
                if let Some(id) = done.and_then(|o| o.owner) {
                    let still = self.outq.iter().any(|o| o.owner == Some(id));
                    if let Some(r) = self.requests.get_mut(&id) {
                        r.queued = still;
                    }
                }
            }
        }
    }

    /// Reads what the socket has and handles every complete packet.
    fn read_packets(&mut self, events: &mut Vec<Event>) {
        loop {
            match self.framer.read_from(&mut self.stream) {
                Ok(0) => {
                    self.broken = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        loop {
            match self.framer.next_packet() {
                Ok(Some(bytes)) => match Packet::decode(&bytes) {
                    Ok((header, packet)) => self.handle(header, packet, events),
                    Err(_) => self.broken = true,
                },
                Ok(None) => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
            if self.broken {
                break;
            }
        }
    }

    /// Dispatches one packet from the daemon.
    fn handle(&mut self, header: Header, packet: Packet, events: &mut Vec<Event>) {
        if let Packet::ReqMessage(m) = packet {
            self.on_message(m.srvid, m.data, events);
            return;
        }
        if header.operation == Operation::ReqKeepalive {
            return;
        }
        let Some(id) = self.wire.remove(&header.reqid) else {
            return;
        };
        self.advance(id, packet);
    }

    /// Ends request `id` with `result` (dropping it when it was cancelled).
    pub(crate) fn finish(&mut self, id: RequestId, result: Result<Outcome, ClientError>) {
        self.wire.retain(|_, owner| *owner != id);
        let Some(r) = self.requests.get_mut(&id) else {
            return;
        };
        if let Job::Traverse { srvid, .. } = r.job {
            self.traverses.remove(&srvid);
        }
        if r.cancelled || matches!(r.job, Job::OwnPnn) {
            if let Ok(Outcome::Locked(lock)) = result {
                let _ = self.release(lock);
            }
            self.requests.remove(&id);
            return;
        }
        r.result = Some(result);
        self.pending_events.push(Event::Completed(id));
    }

    /// Ends every running request with `Disconnected` and drops the queue.
    fn fail_all(&mut self) {
        self.outq.clear();
        self.wire.clear();
        let running: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.result.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in running {
            if let Some(r) = self.requests.get_mut(&id) {
                r.queued = false;
            }
            self.finish(id, Err(ClientError::Disconnected));
        }
    }

    /// Ends leader requests whose wait ran out.
    fn check_deadlines(&mut self) {
        let now = Instant::now();
        let expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                matches!(&r.job, Job::Leader { step: crate::request::LeaderStep::Waiting, deadline } if *deadline <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.leader_done(id, Err(ClientError::TimedOut));
        }
    }

    /// Records the pnn the connection's own GET_PNN returned.
    pub(crate) fn set_pnn(&mut self, reply: &ReplyControl) {
        if reply.status >= 0 {
            self.pnn = Some(Pnn(reply.status as u32));
        }
    }

    /// Checks a control reply's status: the reply, or the control's failure.
    pub(crate) fn control_ok(
        opcode: ControlOpcode,
        reply: ReplyControl,
    ) -> Result<ReplyControl, ClientError> {
        if reply.status == 0 {
            Ok(reply)
        } else {
            Err(ClientError::ControlFailed {
                opcode,
                status: reply.status,
                message: reply.errmsg,
            })
        }
    }
}

impl Request {
    /// True once any packet of the request was queued.
    fn queued_once(&self) -> bool {
        self.sent_any
    }

    /// Notes that a packet of the request was queued.
    pub(crate) fn mark_queued_once(&mut self) {
        self.sent_any = true;
    }
}
