//! Persistent database transactions as Samba 4.17's client library runs
//! them: the database's g_lock taken (the record
//! `transaction_db_0x<id>` of `g_lock.tdb`, a list of holders), reads from
//! this node's copy, the changes gathered in a record buffer with the
//! database's sequence number moved on, and one TRANS3_COMMIT through the
//! local daemon, which commits them on every node or on none; then the
//! g_lock is dropped. Every step waits for the daemon (these are the
//! synchronous forms only); messages that arrive meanwhile are kept for
//! the next `service`.

use ctdb_protocol::controls::ControlRequest;
use ctdb_protocol::ltdb::{LtdbHeader, RecBuffer, RecData, DB_SEQNUM_KEY};
use ctdb_protocol::{ControlOpcode, DbId, Pnn};

use crate::connection::{Connection, LockAttempt};
use crate::database::DbHandle;
use crate::error::ClientError;
use crate::request::{Event, LockId, Outcome, RequestId};

/// The volatile database that holds the g_locks.
const G_LOCK_DB: &str = "g_lock.tdb";
/// Bytes of one g_lock holder: type, padding, server id.
const HOLDER_LEN: usize = 32;
/// How long to wait before asking again for a g_lock whose holder lives.
const RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Who holds a g_lock: a process on a node, for one task (the database).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ServerId {
    pid: u64,
    task_id: u32,
    vnn: u32,
    unique_id: u64,
}

/// One holder of a g_lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Holder {
    write: bool,
    sid: ServerId,
}

impl Holder {
    fn parse_list(data: &[u8]) -> Result<Vec<Holder>, ClientError> {
        if !data.len().is_multiple_of(HOLDER_LEN) {
            return Err(ClientError::BadGLock(data.len()));
        }
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        let mut list = Vec::new();
        for b in data.chunks(HOLDER_LEN) {
            let write = match u32_at(b, 0) {
                0 => false,
                1 => true,
                _ => return Err(ClientError::BadGLock(data.len())),
            };
            let sid = ServerId {
                pid: u64_at(b, 8),
                task_id: u32_at(b, 16),
                vnn: u32_at(b, 20),
                unique_id: u64_at(b, 24),
            };
            list.push(Holder { write, sid });
        }
        Ok(list)
    }

    fn encode_list(list: &[Holder]) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.len() * HOLDER_LEN);
        for h in list {
            out.extend_from_slice(&u32::from(h.write).to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&h.sid.pid.to_le_bytes());
            out.extend_from_slice(&h.sid.task_id.to_le_bytes());
            out.extend_from_slice(&h.sid.vnn.to_le_bytes());
            out.extend_from_slice(&h.sid.unique_id.to_le_bytes());
        }
        out
    }

    /// A write lock conflicts with every other holder, a read lock with writers.
    fn conflicts(&self, write: bool) -> bool {
        self.write || write
    }
}

/// An open transaction on a persistent database: the g_lock is held until
/// it is committed or cancelled.
#[derive(Debug)]
pub struct Transaction {
    db: DbHandle,
    db_id: DbId,
    g_lock: DbHandle,
    lock_name: Vec<u8>,
    sid: ServerId,
    /// Records read and written, in order (the last of a key counts).
    records: Vec<RecData>,
    updated: bool,
}

impl Connection {
    /// Starts a transaction on the persistent database `db`: takes its
    /// g_lock for writing (waiting while a live process holds it).
    pub fn transaction_start(&mut self, db: DbHandle) -> Result<Transaction, ClientError> {
        let d = self.database(db)?;
        if !d.persistent {
            return Err(ClientError::Volatile);
        }
        let db_id = d.id;
        let pnn = self.pnn().ok_or(ClientError::Disconnected)?;
        let g_lock = self.g_lock_db()?;
        let pid = u64::from(std::process::id());
        let sid = ServerId {
            pid,
            task_id: db_id.0,
            vnn: pnn.0,
            unique_id: (u64::from(db_id.0) << 32) | pid,
        };
        let lock_name = format!("transaction_db_0x{:08x}\0", db_id.0).into_bytes();
        let t = Transaction {
            db,
            db_id,
            g_lock,
            lock_name,
            sid,
            records: Vec::new(),
            updated: false,
        };
        self.g_lock_take(&t)?;
        Ok(t)
    }

    /// The value of `key` in the transaction: what it stored, else this
    /// node's copy (empty when there is none).
    pub fn transaction_fetch(
        &mut self,
        t: &mut Transaction,
        key: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        if let Some((_, data)) = t.latest(key) {
            return Ok(data.to_vec());
        }
        let (header, data) = self.local_db(t.db)?.fetch_local(key)?;
        t.records.push(RecData::with_header(0, key, &header, &data));
        Ok(data)
    }

    /// Stores `data` for `key` in the transaction (nothing when it holds
    /// that value already): this node becomes its dmaster, its rsn moves on.
    pub fn transaction_store(
        &mut self,
        t: &mut Transaction,
        key: &[u8],
        data: &[u8],
    ) -> Result<(), ClientError> {
        let (mut header, old) = match t.latest(key) {
            Some((header, old)) => (header, old.to_vec()),
            None => self.local_db(t.db)?.fetch_local(key)?,
        };
        if old == data {
            return Ok(());
        }
        header.dmaster = self.pnn().ok_or(ClientError::Disconnected)?;
        header.rsn += 1;
        t.records.push(RecData::with_header(0, key, &header, data));
        t.updated = true;
        Ok(())
    }

    /// Commits the transaction on every node (TRANS3_COMMIT, asked again
    /// when a recovery interrupted it and the sequence number shows it was
    /// not applied) and drops the g_lock. A transaction that changed
    /// nothing is cancelled.
    pub fn transaction_commit(&mut self, mut t: Transaction) -> Result<(), ClientError> {
        if !t.updated {
            return self.transaction_cancel(t);
        }
        let seqnum = self.local_seqnum(t.db)?;
        self.transaction_store(&mut t, DB_SEQNUM_KEY, &(seqnum + 1).to_le_bytes())?;
        let buffer = RecBuffer {
            db_id: t.db_id,
            records: std::mem::take(&mut t.records),
        };
        loop {
            let id = self.control(
                Pnn::CURRENT_NODE,
                ControlRequest::Trans3Commit(buffer.clone()),
            );
            let reply = self.waited_reply(id, ControlOpcode::Trans3Commit)?;
            if reply.status == 0 {
                break;
            }
            let now = self.local_seqnum(t.db)?;
            if now == seqnum {
                continue;
            }
            if now != seqnum + 1 {
                let _ = self.g_lock_drop(&t);
                return Err(ClientError::SeqnumMismatch {
                    expected: seqnum + 1,
                    found: now,
                });
            }
            break;
        }
        self.g_lock_drop(&t)
    }

    /// Ends the transaction without committing it: drops the g_lock.
    pub fn transaction_cancel(&mut self, t: Transaction) -> Result<(), ClientError> {
        self.g_lock_drop(&t)
    }

    /// g_lock.tdb, attached on the first transaction (a tdb is opened once
    /// per process).
    fn g_lock_db(&mut self) -> Result<DbHandle, ClientError> {
        let found = self.dbs.iter().position(|d| {
            d.as_ref()
                .is_some_and(|d| d.name == G_LOCK_DB && !d.persistent)
        });
        if let Some(at) = found {
            return Ok(DbHandle(at));
        }
        let attach = self.attach(G_LOCK_DB, false);
        match self.finish_wait(attach)? {
            Outcome::Attached(db) => Ok(db),
            _ => Err(ClientError::UnexpectedReply),
        }
    }

    /// Attached database `db`, for reading its local tdb.
    fn local_db(&mut self, db: DbHandle) -> Result<&mut crate::database::Database, ClientError> {
        self.dbs
            .get_mut(db.0)
            .and_then(Option::as_mut)
            .ok_or(ClientError::UnknownDatabase)
    }

    /// The database's sequence number on this node (0 before the first commit).
    fn local_seqnum(&mut self, db: DbHandle) -> Result<u64, ClientError> {
        let (_, data) = self.local_db(db)?.fetch_local(DB_SEQNUM_KEY)?;
        match data.len() {
            0 => Ok(0),
            8 => Ok(u64::from_le_bytes(data[..8].try_into().unwrap())),
            n => Err(ClientError::BadSeqnum(n)),
        }
    }

    /// Adds this transaction to its g_lock's holders once no live process
    /// holds it in a conflicting way; holders whose process is gone are
    /// dropped from the list.
    fn g_lock_take(&mut self, t: &Transaction) -> Result<(), ClientError> {
        loop {
            let lock = self.lock_wait(t.g_lock, &t.lock_name)?;
            match self.g_lock_try(t, lock) {
                Ok(true) => return self.release(lock),
                Ok(false) => {
                    self.release(lock)?;
                    std::thread::sleep(RETRY_WAIT);
                }
                Err(e) => {
                    let _ = self.release(lock);
                    return Err(e);
                }
            }
        }
    }

    /// One look at the g_lock held under `lock`: true when this
    /// transaction was added, false when a live holder is in the way.
    fn g_lock_try(&mut self, t: &Transaction, lock: LockId) -> Result<bool, ClientError> {
        let mut list = Holder::parse_list(&self.record(lock)?.data)?;
        loop {
            if list.iter().any(|h| h.sid == t.sid) {
                return Err(ClientError::Deadlock);
            }
            let Some(at) = list.iter().position(|h| h.conflicts(true)) else {
                list.push(Holder {
                    write: true,
                    sid: t.sid,
                });
                self.write_record(lock, &Holder::encode_list(&list))?;
                return Ok(true);
            };
            let holder = list[at].sid;
            if self.process_exists(Pnn(holder.vnn), holder.pid)? {
                return Ok(false);
            }
            list.swap_remove(at);
            self.write_record(lock, &Holder::encode_list(&list))?;
        }
    }

    /// Removes this transaction from its g_lock's holders.
    fn g_lock_drop(&mut self, t: &Transaction) -> Result<(), ClientError> {
        let lock = self.lock_wait(t.g_lock, &t.lock_name)?;
        let r = Holder::parse_list(&self.record(lock)?.data).and_then(|mut list| {
            list.retain(|h| h.sid != t.sid);
            self.write_record(lock, &Holder::encode_list(&list))
        });
        self.release(lock)?;
        r
    }

    /// Whether process `pid` lives on node `pnn` (PROCESS_EXISTS).
    fn process_exists(&mut self, pnn: Pnn, pid: u64) -> Result<bool, ClientError> {
        let request = ControlRequest::ProcessExists(pid as i32);
        let id = self.control(pnn, request);
        Ok(self.waited_reply(id, ControlOpcode::ProcessExists)?.status == 0)
    }

    /// Locks record `key` of `db`, migrating it here first when needed.
    fn lock_wait(&mut self, db: DbHandle, key: &[u8]) -> Result<LockId, ClientError> {
        match self.lock_record(db, key, false)? {
            LockAttempt::Held(lock) => Ok(lock),
            LockAttempt::Pending(id) => match self.finish_wait(id)? {
                Outcome::Locked(lock) => Ok(lock),
                _ => Err(ClientError::UnexpectedReply),
            },
        }
    }

    /// The reply of control request `id`, waited for.
    fn waited_reply(
        &mut self,
        id: RequestId,
        opcode: ControlOpcode,
    ) -> Result<ctdb_protocol::packet::ReplyControl, ClientError> {
        match self.finish_wait(id)? {
            Outcome::Control(op, reply) if op == opcode => Ok(reply),
            _ => Err(ClientError::UnexpectedReply),
        }
    }

    /// Waits for request `id` and forgets it, keeping every other event for
    /// the caller's next `service`.
    fn finish_wait(&mut self, id: RequestId) -> Result<Outcome, ClientError> {
        let mut kept = Vec::new();
        self.wait(id, |_, e| match e {
            Event::Completed(done) if done == id => {}
            other => kept.push(other),
        });
        self.pending_events.extend(kept);
        let r = self.result(id).cloned();
        self.free(id);
        r
    }
}

impl Transaction {
    /// The header and value of the last record of `key` in the transaction.
    fn latest(&self, key: &[u8]) -> Option<(LtdbHeader, &[u8])> {
        let rec = self.records.iter().rev().find(|r| r.key == key)?;
        LtdbHeader::split(&rec.data).ok()
    }

    /// The database it runs on.
    pub fn database(&self) -> DbHandle {
        self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_lists_round_trip_in_samba_layout() {
        let sid = ServerId {
            pid: 0x1234,
            task_id: 0xa030_6f64,
            vnn: 2,
            unique_id: (0xa030_6f64u64 << 32) | 0x1234,
        };
        let list = vec![
            Holder { write: true, sid },
            Holder {
                write: false,
                sid: ServerId { vnn: 0, ..sid },
            },
        ];
        let bytes = Holder::encode_list(&list);
        assert_eq!(bytes.len(), 64);
        assert_eq!(&bytes[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &0x1234u64.to_le_bytes());
        assert_eq!(&bytes[20..24], &2u32.to_le_bytes());
        assert_eq!(Holder::parse_list(&bytes).unwrap(), list);
        assert!(Holder::parse_list(&[]).unwrap().is_empty());
        assert_eq!(
            Holder::parse_list(&bytes[..40]),
            Err(ClientError::BadGLock(40))
        );
        assert!(list[1].conflicts(true) && !list[1].conflicts(false));
        assert!(list[0].conflicts(false));
    }
}
