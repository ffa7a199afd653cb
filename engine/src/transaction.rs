//! Transactions: writes buffered in memory by page-sized blocks, then at commit a
//! recovery area (the old contents of every block about to be overwritten) written
//! and synced before the data, so an interrupted commit is rolled back at the
//! next lock or open (by this implementation or Samba's).
//!
//! Recovery area: a record header (magic RECOVERY_MAGIC once valid, data_len = bytes
//! of recovery data, rec_len = space reserved, key_len = file size before the
//! commit), then entries of (offset u32, length u32, old bytes), then a tailer.

use crate::batch::Refill;
use crate::error::{Result, TdbError};
use crate::format::{
    self, Offset, Record, FREELIST_TOP, OFF_SIZE, RECORD_MAGIC_OFS, RECORD_SIZE, RECOVERY_HEAD_OFS,
};
use crate::guard::{Held, Release};
use crate::lock::{LockFlags, LockKind, OPEN_LOCK};
use crate::open::DebugLevel;
use crate::tdb::Tdb;

/// The state of an open transaction.
pub(crate) struct Transaction {
    /// The hash table (freelist head first) as the transaction sees it, in stored
    /// bytes, for skipping empty chains fast.
    hash_heads: Vec<u8>,
    /// Modified blocks of the file, by block number.
    blocks: BlockMap,
    block_size: u32,
    /// Valid bytes in the last block.
    last_block_size: u32,
    /// A write failed: the transaction can only be cancelled.
    error: bool,
    /// Nested starts not yet matched by commits.
    nesting: u32,
    prepared: bool,
    /// Where the recovery magic was written (0 = not yet).
    magic_offset: Offset,
    /// The database size when the transaction started.
    old_map_size: u32,
    /// The transaction grew the file.
    expanded: bool,
    /// Set while only batches have written since the transaction wiped the
    /// database (see [`Refill`]).
    pub(crate) refill: Option<Refill>,
}

/// The transaction's copies of modified blocks, by block number.
///
/// A 4-byte slot per block number up to the highest one written (0 = not
/// modified, else 1 + the block's place in `bufs`), sized exactly: the index of a
/// large file stays smaller than Samba's array of pointers.
#[derive(Default)]
struct BlockMap {
    slots: Vec<u32>,
    bufs: Vec<Box<[u8]>>,
}

impl BlockMap {
    /// Block numbers covered (one past the highest written).
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn get(&self, blk: usize) -> Option<&[u8]> {
        match self.slots.get(blk) {
            Some(&s) if s != 0 => Some(&self.bufs[s as usize - 1]),
            _ => None,
        }
    }

    fn get_mut(&mut self, blk: usize) -> Option<&mut [u8]> {
        match self.slots.get(blk) {
            Some(&s) if s != 0 => Some(&mut self.bufs[s as usize - 1]),
            _ => None,
        }
    }

    /// Makes block numbers below `n` addressable.
    fn cover(&mut self, n: usize) {
        if n > self.slots.len() {
            self.slots.reserve_exact(n - self.slots.len());
            self.slots.resize(n, 0);
        }
    }

    /// Stores the copy of block `blk` (covered, not yet present).
    fn insert(&mut self, blk: usize, buf: Box<[u8]>) {
        self.bufs.push(buf);
        self.slots[blk] = self.bufs.len() as u32;
    }

    /// Every block number covered, in order, with its copy if it has one.
    fn iter(&self) -> impl Iterator<Item = (usize, Option<&[u8]>)> + '_ {
        (0..self.slots.len()).map(|i| (i, self.get(i)))
    }
}

impl Transaction {
    /// First chain at or after `list` that is non-empty in this transaction.
    pub(crate) fn next_nonempty_chain(&self, list: u32, hash_size: u32) -> u32 {
        let mut h = list;
        while h < hash_size {
            let at = (h as usize + 1) * 4;
            if self.hash_heads[at..at + 4] != [0u8; 4] {
                break;
            }
            h += 1;
        }
        h
    }

    /// The first record of chain `bucket` as the transaction sees it.
    pub(crate) fn chain_head(&self, bucket: u32, order: crate::format::ByteOrder) -> Offset {
        let at = (bucket as usize + 1) * 4;
        order.get(&self.hash_heads[at..at + 4])
    }

    fn block_len(&self, i: usize) -> u32 {
        if i == self.blocks.len() - 1 {
            self.last_block_size
        } else {
            self.block_size
        }
    }
}

/// Recovery data goes to the file in pieces of about this size, so that
/// its buffer stays small however much a transaction changed.
const RECOVERY_PIECE: usize = 256 * 1024;

/// Recovery data on its way to the file, a piece at a time.
struct RecoveryWrite {
    /// Where the piece in `buf` goes.
    at: Offset,
    buf: Vec<u8>,
}

impl Tdb {
    /// Io unless `[off, off+len)` lies within the 32-bit offsets a file can have,
    /// so that walking through it block by block cannot overflow.
    #[inline]
    fn inside_file(&mut self, off: Offset, len: usize) -> Result<()> {
        if off as u64 + len as u64 > u32::MAX as u64 {
            return self.fail(TdbError::Io);
        }
        Ok(())
    }

    fn txn(&self) -> &Transaction {
        self.transaction.as_ref().expect("inside a transaction")
    }

    fn txn_mut(&mut self) -> &mut Transaction {
        self.transaction.as_mut().expect("inside a transaction")
    }

    /// The bytes `[off, off+len)` as the open transaction sees them, without a
    /// copy: from one block it modified, or from the mapping when no block of
    /// the range is modified. `None` when neither holds (the caller copies
    /// through `transaction_read`, which also reports any error).
    #[inline]
    pub(crate) fn transaction_view(&self, off: Offset, len: usize) -> Option<&[u8]> {
        let t = self.transaction.as_ref()?;
        let bs = t.block_size as usize;
        let start = off as usize;
        let end = start.checked_add(len)?;
        let (first, last) = (start / bs, end.saturating_sub(1) / bs);
        if len == 0 || (first..=last).any(|b| t.blocks.get(b).is_some()) {
            if first != last || len == 0 {
                return None;
            }
            let block = t.blocks.get(first)?;
            let boff = start % bs;
            let valid = if first == t.blocks.len() - 1 {
                t.last_block_size as usize
            } else {
                bs
            };
            return (boff + len <= valid).then(|| &block[boff..boff + len]);
        }
        match &self.storage {
            crate::io::Storage::Mapped(m) if end <= m.len() => Some(m.slice(start, len)),
            _ => None,
        }
    }

    /// Reads through the transaction's blocks, falling back to the file.
    pub(crate) fn transaction_read(&mut self, mut off: Offset, buf: &mut [u8]) -> Result<()> {
        self.inside_file(off, buf.len())?;
        let bs = self.txn().block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let in_block = (bs - off % bs) as usize;
            let n = in_block.min(buf.len() - done);
            let blk = (off / bs) as usize;
            let t = self.txn();
            let present = t.blocks.get(blk).is_some();
            if !present {
                self.file_read(off, &mut buf[done..done + n])?;
            } else {
                let boff = (off % bs) as usize;
                if blk == t.blocks.len() - 1 && boff + n > t.last_block_size as usize {
                    self.ecode = TdbError::Io.code();
                    self.txn_mut().error = true;
                    return Err(TdbError::Io);
                }
                let block = t.blocks.get(blk).expect("present");
                buf[done..done + n].copy_from_slice(&block[boff..boff + n]);
            }
            done += n;
            off += n as u32;
        }
        Ok(())
    }

    /// Writes into the transaction's blocks, creating them (from the file's
    /// current contents) as needed.
    pub(crate) fn transaction_write(&mut self, mut off: Offset, data: &[u8]) -> Result<()> {
        if self.txn().prepared {
            self.ecode = TdbError::Einval.code();
            self.txn_mut().error = true;
            return Err(TdbError::Einval);
        }
        self.inside_file(off, data.len())?;
        if self.txn().refill.as_ref().is_some_and(|r| !r.writing) {
            // A write outside a batch: the batches' knowledge of the chains ends.
            self.txn_mut().refill = None;
        }
        // Keep the hash-head cache current for fast empty-chain skipping.
        if data.len() == 4
            && off >= FREELIST_TOP
            && off < FREELIST_TOP + (self.hash_size + 1) * OFF_SIZE
        {
            let at = (off - FREELIST_TOP) as usize;
            self.txn_mut().hash_heads[at..at + 4].copy_from_slice(data);
        }
        let bs = self.txn().block_size;
        let mut done = 0usize;
        while done < data.len() {
            let boff = (off % bs) as usize;
            let n = ((bs as usize) - boff).min(data.len() - done);
            let blk = (off / bs) as usize;
            if n == bs as usize && self.txn().blocks.get(blk).is_none() {
                // A whole new block: its old contents would only be
                // overwritten (the commit saves them from the file).
                self.new_whole_block(blk, &data[done..done + n]);
                done += n;
                off += n as u32;
                continue;
            }
            if let Err(e) = self.ensure_block(blk) {
                self.log(
                    DebugLevel::Fatal,
                    &format!(
                        "transaction_write: failed at off={} len={}\n",
                        off,
                        data.len() - done
                    ),
                );
                self.txn_mut().error = true;
                return Err(e);
            }
            let t = self.txn_mut();
            let last = blk == t.blocks.len() - 1;
            let block = t.blocks.get_mut(blk).expect("just ensured");
            block[boff..boff + n].copy_from_slice(&data[done..done + n]);
            if last && (boff + n) as u32 > t.last_block_size {
                t.last_block_size = (boff + n) as u32;
            }
            done += n;
            off += n as u32;
        }
        Ok(())
    }

    /// Adds block `blk` (not present yet) holding `bytes`, a whole block.
    fn new_whole_block(&mut self, blk: usize, bytes: &[u8]) {
        let t = self.txn_mut();
        if t.blocks.len() <= blk {
            t.blocks.cover(blk + 1);
        }
        t.blocks.insert(blk, bytes.into());
        if blk == t.blocks.len() - 1 {
            t.last_block_size = t.block_size;
        }
    }

    /// Makes block `blk` exist, filled with the file's bytes where the file has them.
    fn ensure_block(&mut self, blk: usize) -> Result<()> {
        let (bs, old_map_size) = (self.txn().block_size, self.txn().old_map_size);
        if self.txn().blocks.len() <= blk {
            let t = self.txn_mut();
            t.blocks.cover(blk + 1);
            t.last_block_size = 0;
        }
        if self.txn().blocks.get(blk).is_some() {
            return Ok(());
        }
        let start = blk as u64 * bs as u64;
        let len2 = if (old_map_size as u64) > start {
            (bs as u64).min(old_map_size as u64 - start) as usize
        } else {
            0
        };
        // Copy the file's part of the block straight from the mapping when there is
        // one (no zero-fill first); only the part past the old end is zeroed.
        let mut block: Vec<u8> = Vec::with_capacity(bs as usize);
        if len2 > 0 {
            if self
                .file_read_append(start as u32, len2 as u32, &mut block)
                .is_err()
            {
                return self.fail(TdbError::Io);
            }
            let t = self.txn_mut();
            if blk == t.blocks.len() - 1 {
                t.last_block_size = len2 as u32;
            }
        }
        block.resize(bs as usize, 0);
        let block = block.into_boxed_slice();
        self.txn_mut().blocks.insert(blk, block);
        Ok(())
    }

    /// Updates only blocks the transaction already has (never adds one), so the
    /// recovery data computed from them stays valid.
    fn transaction_write_existing(&mut self, mut off: Offset, data: &[u8]) -> Result<()> {
        self.inside_file(off, data.len())?;
        let bs = self.txn().block_size;
        let mut done = 0usize;
        while done < data.len() {
            let boff = (off % bs) as usize;
            let mut n = ((bs as usize) - boff).min(data.len() - done);
            let blk = (off / bs) as usize;
            let t = self.txn_mut();
            let nblocks = t.blocks.len();
            let last_size = t.last_block_size as usize;
            if let Some(block) = t.blocks.get_mut(blk) {
                let mut skip = false;
                if blk == nblocks - 1 && boff + n > last_size {
                    if boff >= last_size {
                        skip = true;
                    } else {
                        n = last_size - boff;
                    }
                }
                if !skip {
                    block[boff..boff + n].copy_from_slice(&data[done..done + n]);
                }
            }
            let step = ((bs as usize) - boff).min(data.len() - done);
            done += step;
            off += step as u32;
        }
        Ok(())
    }

    /// Grows the database inside the transaction by writing zeros into its blocks.
    pub(crate) fn transaction_expand_file(&mut self, size: Offset, addition: u32) -> Result<()> {
        self.inside_file(size, addition as usize)?;
        let zeros = [0u8; 8192];
        let mut size = size;
        let mut addition = addition;
        while addition > 0 {
            let n = addition.min(zeros.len() as u32);
            self.transaction_write(size, &zeros[..n as usize])?;
            addition -= n;
            size += n;
        }
        self.txn_mut().expanded = true;
        Ok(())
    }

    /// Whether a transaction is open on this handle.
    pub fn transaction_active(&self) -> bool {
        self.transaction.is_some()
    }

    fn transaction_start_with(&mut self, flags: LockFlags) -> Result<()> {
        if self.read_only || self.flags & crate::flags::INTERNAL != 0 || self.traverse_read > 0 {
            return self.fail(TdbError::Einval);
        }
        if let Some(t) = self.transaction.as_mut() {
            if self.flags & crate::flags::ALLOW_NESTING == 0 {
                return self.fail(TdbError::Nesting);
            }
            t.nesting += 1;
            let n = t.nesting;
            self.log(
                DebugLevel::Trace,
                &format!("tdb_transaction_start: nesting {}\n", n),
            );
            return Ok(());
        }
        if self.have_extra_locks() {
            // Locks taken outside the transaction would not nest inside it.
            self.log(
                DebugLevel::Error,
                "tdb_transaction_start: cannot start a transaction with locks held\n",
            );
            return self.fail(TdbError::Lock);
        }
        if self.travlocks.len() > 1 {
            self.log(
                DebugLevel::Error,
                "tdb_transaction_start: cannot start a transaction within a traverse\n",
            );
            return self.fail(TdbError::Lock);
        }
        // The locks are taken as the transaction's own (for the lock bookkeeping)
        // but before its I/O routing starts: a crash recovery run while taking
        // them must write to the file, as Samba's does.
        self.transaction_starting = true;
        let r = self.transaction_take_locks(flags);
        self.transaction_starting = false;
        let heads = r?;
        let map_size = self.map_size;
        self.transaction = Some(Box::new(Transaction {
            hash_heads: heads,
            blocks: BlockMap::default(),
            block_size: self.page_size,
            last_block_size: 0,
            error: false,
            nesting: 0,
            prepared: false,
            magic_offset: 0,
            old_map_size: map_size,
            expanded: false,
            refill: None,
        }));
        Ok(())
    }

    /// Takes the transaction lock and the upgradable allrecord read lock, then
    /// reads the hash table and learns the file's current size. Returns the
    /// hash table; on failure no lock is left behind.
    fn transaction_take_locks(&mut self, flags: LockFlags) -> Result<Vec<u8>> {
        if let Err(e) = self.transaction_lock(LockKind::Write, flags) {
            if !flags.wait {
                return self.fail(TdbError::NoLock);
            }
            return self.track(Err(e));
        }
        let mut txn_lock = Held::adopt(
            self,
            Release::Nested {
                off: crate::lock::TRANSACTION_LOCK,
                kind: LockKind::Write,
            },
        );
        // A read lock on everything, upgraded to a write lock at commit.
        if let Err(e) = txn_lock.allrecord_lock(LockKind::Read, LockFlags::WAIT, true) {
            drop(txn_lock);
            return self.track(Err(e));
        }
        let mut all = Held::adopt(&mut txn_lock, Release::AllRecord(LockKind::Read));
        let mut heads = Vec::new();
        let table = (all.hash_size + 1) * OFF_SIZE;
        if all
            .file_read_append(FREELIST_TOP, table, &mut heads)
            .is_err()
        {
            drop(all);
            drop(txn_lock);
            return self.fail(TdbError::Io);
        }
        // Learn the current size, which the transaction keeps to itself from now on.
        // Remap only when another process changed it (see `size_on_disk_changed`).
        if all.size_on_disk_changed() {
            let map_size = all.map_size;
            let _ = all.file_oob(map_size, 1, true);
        }
        // Both locks now belong to the transaction, until commit or cancel.
        let _ = all.keep();
        let _ = txn_lock.keep();
        Ok(heads)
    }

    /// Whether the file's size differs from the mapped size (true when it cannot
    /// be learned, so that `file_oob` reports the error, when a mapping that
    /// should exist does not, so that it is tried again, and when the mapping's
    /// length is not `map_size`). A mapping of the file's size already shows
    /// every byte of it (it is shared), so remapping it would only make each
    /// page the transaction touches fault in again.
    fn size_on_disk_changed(&self) -> bool {
        let want_map = self.flags & (crate::flags::NOMMAP | crate::flags::INTERNAL) == 0;
        match &self.storage {
            crate::io::Storage::Unmapped if want_map => return true,
            crate::io::Storage::Mapped(m) if m.len() != self.map_size as usize => return true,
            _ => {}
        }
        match self.file().map(|f| f.metadata()) {
            Ok(Ok(meta)) => meta.len().saturating_sub(self.hdr_ofs as u64) != self.map_size as u64,
            _ => true,
        }
    }

    /// Starts a transaction (waits for the transaction lock).
    pub fn transaction_start(&mut self) -> Result<()> {
        self.transaction_start_with(LockFlags::WAIT)
    }

    /// Starts a transaction or fails at once if another process holds the lock.
    pub fn transaction_start_nonblock(&mut self) -> Result<()> {
        self.transaction_start_with(LockFlags::NOWAIT_PROBE)
    }

    /// Syncs the file for the commit protocol (fdatasync and msync), unless TDB_NOSYNC.
    fn transaction_sync(&mut self, off: Offset, len: u32) -> Result<()> {
        self.sync_range(off, len).inspect_err(|_| {
            self.log(DebugLevel::Fatal, "tdb_transaction: fsync failed\n");
        })
    }

    fn cancel_internal(&mut self) -> Result<()> {
        let t = match self.transaction.as_mut() {
            Some(t) => t,
            None => {
                self.log(
                    DebugLevel::Error,
                    "tdb_transaction_cancel: no transaction\n",
                );
                return Err(TdbError::Einval);
            }
        };
        if t.nesting != 0 {
            t.error = true;
            t.nesting -= 1;
            return Ok(());
        }
        t.blocks = BlockMap::default();
        let (old_map_size, magic_offset) = (t.old_map_size, t.magic_offset);
        self.map_size = old_map_size;
        let mut r = Ok(());
        if magic_offset != 0 {
            // Invalidate the recovery area we wrote: nothing is to be replayed.
            let invalid = self.order.put(format::RECOVERY_INVALID_MAGIC);
            if self.file_write(magic_offset, &invalid).is_err()
                || self.transaction_sync(magic_offset, 4).is_err()
            {
                self.log(
                    DebugLevel::Fatal,
                    "tdb_transaction_cancel: failed to remove recovery magic\n",
                );
                r = Err(TdbError::Io);
            }
        }
        self.release_transaction_locks();
        self.transaction = None;
        r
    }

    /// Abandons the transaction.
    pub fn transaction_cancel(&mut self) -> Result<()> {
        let r = self.cancel_internal();
        self.track(r)
    }

    /// Space the recovery data needs: old contents of every modified block that
    /// lies inside the old file.
    fn recovery_size(&self) -> u32 {
        let t = self.txn();
        let mut size = OFF_SIZE;
        for (i, b) in t.blocks.iter() {
            if i as u64 * t.block_size as u64 >= t.old_map_size as u64 {
                break;
            }
            if b.is_some() {
                size = size
                    .saturating_add(2 * OFF_SIZE)
                    .saturating_add(t.block_len(i));
            }
        }
        size
    }

    /// Reads the recovery area's location and header (tdb_recovery_area).
    pub(crate) fn recovery_area(&mut self, through_transaction: bool) -> Result<(Offset, Record)> {
        let head = self.read_off(RECOVERY_HEAD_OFS)?;
        if head == 0 {
            return Ok((0, Record::default()));
        }
        let mut rec = if through_transaction {
            self.read_rec_raw(head)?
        } else {
            let mut b = [0u8; RECORD_SIZE as usize];
            self.file_read(head, &mut b)?;
            Record::decode(&b, self.order)
        };
        if rec.magic != format::RECOVERY_MAGIC && rec.magic != format::RECOVERY_INVALID_MAGIC {
            rec.rec_len = 0;
        }
        if self.file_oob(head, rec.rec_len, true).is_err() {
            rec.rec_len = 0;
        }
        Ok((head, rec))
    }

    /// Finds room for the recovery data: the existing area if big enough, else a
    /// new one at the end of the file. Returns (size needed, offset, space).
    fn recovery_allocate(&mut self) -> Result<(u32, Offset, u32)> {
        let (mut head, rec) = self.recovery_area(false).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_recovery_allocate: failed to read recovery head\n",
            );
        })?;
        let mut size = self.recovery_size();
        if head != 0 && size <= rec.rec_len {
            return Ok((size, head, rec.rec_len));
        }
        // Not big enough: unless it sits at the very end of the file, give it back
        // and put a new one at the end (never through the allocator, which could
        // hand out space the transaction is using).
        if head == 0
            || head as u64 + RECORD_SIZE as u64 + rec.rec_len as u64 != self.map_size as u64
        {
            if head != 0 {
                self.free_record(head, rec).inspect_err(|_| {
                    self.log(
                        DebugLevel::Fatal,
                        "tdb_recovery_allocate: failed to free previous recovery area\n",
                    );
                })?;
                // Freeing modified the freelist inside the transaction.
                size = self.recovery_size();
            }
            head = self.map_size;
        }
        let Some(max_size) =
            crate::io::expand_adjust(self.map_size, size, self.page_size).checked_sub(RECORD_SIZE)
        else {
            return self.fail(TdbError::Oom);
        };
        let new_end = match head
            .checked_add(RECORD_SIZE)
            .and_then(|e| e.checked_add(max_size))
        {
            Some(e) => e,
            None => return self.fail(TdbError::Oom),
        };
        let old_map_size = self.txn().old_map_size;
        let Some(addition) = new_end.checked_sub(old_map_size) else {
            return self.fail(TdbError::Corrupt);
        };
        self.file_expand(old_map_size, addition).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_recovery_allocate: failed to create recovery area\n",
            );
        })?;
        let map_size = self.map_size;
        // Refresh the mapping to the new file size (file-level: the transaction stays).
        let _ = self.file_oob(map_size, 1, true);
        self.txn_mut().old_map_size = self.map_size;
        // Point the transaction's copy of the header at it. The file's header
        // follows only once the recovery data is on disk (setup_recovery): until
        // then a crash leaves the old area in place, not orphaned.
        let b = self.order.put(head);
        self.transaction_write_existing(RECOVERY_HEAD_OFS, &b)?;
        Ok((size, head, max_size))
    }

    /// Writes and syncs the recovery data, then its magic (transaction_setup_recovery).
    fn setup_recovery(&mut self) -> Result<Offset> {
        // The size to restore is the one before the recovery area grew the file.
        let old_map_size = self.txn().old_map_size;
        let (size, offset, max_size) = self.recovery_allocate()?;
        let header = Record {
            magic: format::RECOVERY_INVALID_MAGIC,
            data_len: size,
            rec_len: max_size,
            key_len: old_map_size,
            ..Record::default()
        };
        let mut head_bytes = [0u8; 4];
        self.file_read(RECOVERY_HEAD_OFS, &mut head_bytes)?;
        let area = offset;
        let moved = self.order.get(&head_bytes) != area;
        let saved = self.blocks_to_save(old_map_size)?;
        let Some(tailer) = RECORD_SIZE.checked_add(max_size) else {
            return self.fail(TdbError::Corrupt);
        };
        // Pieces go out while later blocks are still read from the file: only
        // when no block read overlaps the area being written.
        let area_end = area as u64 + RECORD_SIZE as u64 + tailer as u64;
        let overlaps = saved
            .iter()
            .any(|&(o, l)| (o as u64) < area_end && (area as u64) < o as u64 + l as u64);
        let piece = if overlaps { usize::MAX } else { RECOVERY_PIECE };
        let mut w = RecoveryWrite {
            at: area,
            buf: self.take_scratch(),
        };
        w.buf.extend_from_slice(&header.encode(self.order));
        for (offset, length) in saved {
            if w.buf.len() + 8 + length as usize > piece {
                self.write_recovery_piece(&mut w)?;
            }
            w.buf.extend_from_slice(&self.order.put(offset));
            w.buf.extend_from_slice(&self.order.put(length));
            // The old contents: read the file, not the transaction.
            let at = w.buf.len();
            if self.file_read_append(offset, length, &mut w.buf).is_err() {
                self.ecode = TdbError::Io.code();
                return Err(TdbError::Io);
            }
            // The file's header does not point at the new area yet; the old
            // contents record it as pointing there (as Samba's, which moved the
            // pointer first), so a replay keeps the area it replays from.
            if moved
                && offset <= RECOVERY_HEAD_OFS
                && RECOVERY_HEAD_OFS + OFF_SIZE <= offset + length
            {
                let p = at + (RECOVERY_HEAD_OFS - offset) as usize;
                w.buf[p..p + 4].copy_from_slice(&self.order.put(area));
            }
        }
        w.buf.extend_from_slice(&self.order.put(tailer));
        self.write_recovery_piece(&mut w)?;
        self.put_scratch(w.buf);
        // The data must be on disk before the magic that makes it count.
        self.transaction_sync(area, w.at - area)?;
        let magic_offset = offset + RECORD_MAGIC_OFS;
        // A new area right at the old end of file is pointed at before its magic
        // is set (until then check sees an unused recovery area); one past a gap
        // gets its magic first (until the pointer moves, the gap hides it as dead
        // space, and recovery is not due).
        let gap = area > old_map_size;
        if moved && !gap {
            self.point_at_recovery_area(area)?;
        }
        let magic = self.order.put(format::RECOVERY_MAGIC);
        if self.file_write(magic_offset, &magic).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_setup_recovery: failed to write recovery magic\n",
            );
            return self.fail(TdbError::Io);
        }
        self.transaction_write_existing(magic_offset, &magic)?;
        if moved && gap {
            self.point_at_recovery_area(area)?;
        }
        self.transaction_sync(magic_offset, 4)?;
        if moved {
            self.transaction_sync(RECOVERY_HEAD_OFS, OFF_SIZE)?;
        }
        Ok(magic_offset)
    }

    /// The transaction's blocks whose old contents the recovery data keeps
    /// (those starting inside the file as it was before the transaction,
    /// `old_map_size`; none may end past the file as the transaction now
    /// knows it), in order.
    fn blocks_to_save(&mut self, old_map_size: u32) -> Result<Vec<(Offset, u32)>> {
        let t = self.txn();
        let mut saved = Vec::new();
        let mut over = false;
        for (i, b) in t.blocks.iter() {
            if b.is_none() {
                continue;
            }
            let offset = i as u32 * t.block_size;
            let length = t.block_len(i);
            if offset >= old_map_size {
                continue;
            }
            if offset as u64 + length as u64 > t.old_map_size as u64 {
                over = true;
                break;
            }
            saved.push((offset, length));
        }
        if over {
            self.ecode = TdbError::Corrupt.code();
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_setup_recovery: transaction data over new region boundary\n",
            );
            return Err(TdbError::Corrupt);
        }
        Ok(saved)
    }

    /// Writes the piece of recovery data in `w` to the file (and to the
    /// transaction's copy of those blocks) and moves `w` past it.
    fn write_recovery_piece(&mut self, w: &mut RecoveryWrite) -> Result<()> {
        if self.file_write_parts(w.at, &[&w.buf]).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_setup_recovery: failed to write recovery data\n",
            );
            return self.fail(TdbError::Io);
        }
        self.transaction_write_existing(w.at, &w.buf)?;
        w.at += w.buf.len() as u32;
        w.buf.clear();
        Ok(())
    }

    /// Writes the file header's recovery pointer (the transaction's copy has it).
    fn point_at_recovery_area(&mut self, area: Offset) -> Result<()> {
        let b = self.order.put(area);
        self.file_write(RECOVERY_HEAD_OFS, &b).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                "tdb_recovery_allocate: failed to write recovery head\n",
            );
        })
    }

    fn prepare_commit_internal(&mut self) -> Result<()> {
        let t = match self.transaction.as_ref() {
            Some(t) => t,
            None => {
                self.log(
                    DebugLevel::Error,
                    "tdb_transaction_prepare_commit: no transaction\n",
                );
                return Err(TdbError::Einval);
            }
        };
        if t.prepared {
            self.ecode = TdbError::Einval.code();
            self.log(
                DebugLevel::Error,
                "tdb_transaction_prepare_commit: transaction already prepared\n",
            );
            let _ = self.cancel_internal();
            return Err(TdbError::Einval);
        }
        if t.error {
            self.ecode = TdbError::Io.code();
            self.log(
                DebugLevel::Error,
                "tdb_transaction_prepare_commit: transaction error pending\n",
            );
            let _ = self.cancel_internal();
            return Err(TdbError::Io);
        }
        if t.nesting != 0 || t.blocks.is_empty() {
            return Ok(());
        }
        if self.have_extra_locks() {
            self.ecode = TdbError::Lock.code();
            self.log(
                DebugLevel::Error,
                "tdb_transaction_prepare_commit: locks pending on commit\n",
            );
            let _ = self.cancel_internal();
            return Err(TdbError::Lock);
        }
        if let Err(e) = self.allrecord_upgrade() {
            self.log(
                DebugLevel::Error,
                &format!(
                    "tdb_transaction_prepare_commit: failed to upgrade hash locks: {}\n",
                    e
                ),
            );
            let _ = self.cancel_internal();
            return Err(e);
        }
        // Keep new openers (who would run recovery) out during the commit.
        if let Err(e) = self.nest_lock(OPEN_LOCK, LockKind::Write, LockFlags::WAIT) {
            self.log(
                DebugLevel::Error,
                "tdb_transaction_prepare_commit: failed to get open lock\n",
            );
            let _ = self.cancel_internal();
            return Err(e);
        }
        match self.setup_recovery() {
            Ok(magic_offset) => self.txn_mut().magic_offset = magic_offset,
            Err(e) => {
                self.log(
                    DebugLevel::Error,
                    "tdb_transaction_prepare_commit: failed to setup recovery data\n",
                );
                let _ = self.cancel_internal();
                return Err(e);
            }
        }
        self.txn_mut().prepared = true;
        // Grow the file now, so that the commit itself cannot run out of space.
        let old = self.txn().old_map_size;
        if self.map_size != old {
            // (A transaction only grows the file: a smaller size fails like a
            // failed expansion.)
            let grown = match self.map_size.checked_sub(old) {
                Some(add) => self.file_expand(old, add),
                None => Err(TdbError::Io),
            };
            if grown.is_err() {
                self.ecode = TdbError::Io.code();
                self.log(
                    DebugLevel::Fatal,
                    "tdb_transaction_prepare_commit: expansion failed\n",
                );
                let _ = self.cancel_internal();
                return Err(TdbError::Io);
            }
            self.map_size = old;
            let _ = self.file_oob(old, 1, true);
        }
        Ok(())
    }

    /// Writes and syncs the recovery area; the commit then cannot fail for lack of space.
    pub fn transaction_prepare_commit(&mut self) -> Result<()> {
        let r = self.prepare_commit_internal();
        self.track(r)
    }

    /// Commits the transaction (prepares it first if needed).
    pub fn transaction_commit(&mut self) -> Result<()> {
        let r = self.commit_internal();
        self.track(r)
    }

    fn commit_internal(&mut self) -> Result<()> {
        let t = match self.transaction.as_mut() {
            Some(t) => t,
            None => {
                self.log(
                    DebugLevel::Error,
                    "tdb_transaction_commit: no transaction\n",
                );
                return Err(TdbError::Einval);
            }
        };
        if t.error {
            self.ecode = TdbError::Io.code();
            let _ = self.cancel_internal();
            self.log(
                DebugLevel::Error,
                "tdb_transaction_commit: transaction error pending\n",
            );
            return Err(TdbError::Io);
        }
        if t.nesting != 0 {
            t.nesting -= 1;
            return Ok(());
        }
        if t.blocks.is_empty() {
            return self.cancel_internal();
        }
        if !t.prepared {
            self.prepare_commit_internal()?;
        }
        // Write the blocks to the file, each run of adjacent blocks at once.
        let t = self.transaction.take().expect("inside a transaction");
        let failed = self.write_block_runs(&t).is_err();
        let expanded = t.expanded;
        self.transaction = Some(Box::new(Transaction {
            blocks: BlockMap::default(),
            ..*t
        }));
        if failed {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_commit: write failed during commit\n",
            );
            // The file may be half written: replay the recovery data now.
            let t = self.transaction.take();
            let _ = self.transaction_recover();
            self.transaction = t;
            let _ = self.cancel_internal();
            return self.fail(TdbError::Io);
        }
        let need_repack = expanded && self.repack_worthwhile();
        let map_size = self.map_size;
        self.transaction_sync(0, map_size)?;
        // Make the mtime change even when the size did not, for backup tools.
        // (UTIME_NOW, like utime(NULL), needs only write access, not ownership.)
        if let Some(file) = self.file.as_ref() {
            use nix::sys::time::TimeSpec;
            let _ = nix::sys::stat::futimens(file, &TimeSpec::UTIME_NOW, &TimeSpec::UTIME_NOW);
        }
        // Ending the transaction also invalidates the recovery magic.
        let _ = self.cancel_internal();
        if need_repack && self.repack().is_err() {
            self.log(
                DebugLevel::Error,
                "tdb_transaction_commit: Failed to repack database (not fatal)\n",
            );
        }
        Ok(())
    }

    /// Writes every block of `t` to the file, a run of adjacent blocks in
    /// one write.
    fn write_block_runs(&mut self, t: &Transaction) -> Result<()> {
        let mut run: Vec<&[u8]> = Vec::new();
        let mut run_start = 0u32;
        let mut next_blk = usize::MAX;
        for (i, b) in t.blocks.iter() {
            let Some(block) = b else {
                continue;
            };
            let offset = i as u32 * t.block_size;
            if i != next_blk && !run.is_empty() {
                self.file_write_parts(run_start, &run)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = offset;
            }
            run.push(&block[..t.block_len(i) as usize]);
            next_blk = i + 1;
        }
        if !run.is_empty() {
            self.file_write_parts(run_start, &run)?;
        }
        Ok(())
    }

    /// Whether the free space is fragmented enough to repack after a growth.
    fn repack_worthwhile(&mut self) -> bool {
        let mut ptr = match self.read_off(FREELIST_TOP) {
            Ok(p) => p,
            Err(_) => return false,
        };
        let (mut total, mut largest) = (0u64, 0u64);
        let mut limit = crate::tdb::WalkLimit::new(self);
        while ptr != 0 {
            if limit.step(self, "repack_worthwhile").is_err() {
                return false;
            }
            match self.read_free_rec(ptr) {
                Ok(rec) => {
                    total += rec.rec_len as u64;
                    largest = largest.max(rec.rec_len as u64);
                    ptr = rec.next;
                }
                Err(_) => break,
            }
        }
        total > largest * 2
    }

    /// Replays a valid recovery area, restoring the state before an interrupted
    /// commit (tdb_transaction_recover). The caller holds exclusive access.
    pub(crate) fn transaction_recover(&mut self) -> Result<()> {
        let head = match self.read_off(RECOVERY_HEAD_OFS) {
            Ok(h) => h,
            Err(_) => {
                self.log(
                    DebugLevel::Fatal,
                    "tdb_transaction_recover: failed to read recovery head\n",
                );
                return self.fail(TdbError::Io);
            }
        };
        if head == 0 {
            return Ok(());
        }
        let rec = match self.read_rec_raw(head) {
            Ok(r) => r,
            Err(_) => {
                self.log(
                    DebugLevel::Fatal,
                    "tdb_transaction_recover: failed to read recovery record\n",
                );
                return self.fail(TdbError::Io);
            }
        };
        if rec.magic != format::RECOVERY_MAGIC {
            return Ok(());
        }
        if self.read_only {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_recover: attempt to recover read only database\n",
            );
            return self.fail(TdbError::Corrupt);
        }
        let recovery_eof = rec.key_len;
        let data = match self.alloc_read(head + RECORD_SIZE, rec.data_len) {
            Ok(d) => d,
            Err(_) => {
                self.log(
                    DebugLevel::Fatal,
                    "tdb_transaction_recover: failed to read recovery data\n",
                );
                return self.fail(TdbError::Io);
            }
        };
        let mut p = 0usize;
        while p + 8 < data.len() {
            let ofs = self.order.get(&data[p..p + 4]);
            let len = self.order.get(&data[p + 4..p + 8]) as usize;
            let end = match (p + 8).checked_add(len) {
                Some(e) if e <= data.len() => e,
                _ => {
                    self.log(
                        DebugLevel::Fatal,
                        "tdb_transaction_recover: recovery data is truncated\n",
                    );
                    return self.fail(TdbError::Corrupt);
                }
            };
            if self.write(ofs, &data[p + 8..end]).is_err() {
                self.log(
                    DebugLevel::Fatal,
                    &format!(
                        "tdb_transaction_recover: failed to recover {} bytes at offset {}\n",
                        len, ofs
                    ),
                );
                return self.fail(TdbError::Io);
            }
            p = end;
        }
        let map_size = self.map_size;
        if self.transaction_sync(0, map_size).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_recover: failed to sync recovery\n",
            );
            return self.fail(TdbError::Io);
        }
        // Before the magic goes: every byte past the old end of file becomes free
        // space or stays the recovery area (Samba's drops an area there and leaves
        // the rest to no record and no list). On failure, Samba's way.
        let keep_area = match self.account_for_space(head, &rec, recovery_eof) {
            Ok(()) => true,
            Err(_) => {
                self.log(
                    DebugLevel::Error,
                    "tdb_transaction_recover: space past the old end of file left as it is\n",
                );
                false
            }
        };
        if !keep_area && recovery_eof <= head && self.write_off(RECOVERY_HEAD_OFS, 0).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_recover: failed to remove recovery head\n",
            );
            return self.fail(TdbError::Io);
        }
        if self.write_off(head + RECORD_MAGIC_OFS, 0).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_recover: failed to remove recovery magic\n",
            );
            return self.fail(TdbError::Io);
        }
        let map_size = self.map_size;
        if self.transaction_sync(0, map_size).is_err() {
            self.log(
                DebugLevel::Fatal,
                "tdb_transaction_recover: failed to sync2 recovery\n",
            );
            return self.fail(TdbError::Io);
        }
        // The plan is spent: the header reads as Samba writes it again.
        if keep_area {
            let _ = self.write_off(head + PLAN_FREELIST_OFS, 0);
            let _ = self.write_off(head + PLAN_ORPHAN_OFS, 0);
        }
        self.log(
            DebugLevel::Trace,
            &format!(
                "tdb_transaction_recover: recovered {} byte database\n",
                recovery_eof
            ),
        );
        Ok(())
    }
}

/// Where recovery keeps its plan while it frees space, in the recovery header's
/// `next` field: the freelist head as the replay left it. (Samba's recovery reads
/// neither this field nor the next one.)
const PLAN_FREELIST_OFS: u32 = 0;
/// The recovery header's `full_hash` field: the orphaned old recovery area's
/// offset, or `PLAN_NO_ORPHAN`; 0 while no plan is saved.
const PLAN_ORPHAN_OFS: u32 = 16;
/// The saved plan frees no orphaned area.
const PLAN_NO_ORPHAN: u32 = u32::MAX;

/// A run of bytes that recovery turns into one free record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FreeSpan {
    /// Where the free record starts.
    off: Offset,
    /// Its whole length, header and tailer included.
    len: u32,
}

/// What recovery frees, saved in the recovery header so that a recovery killed
/// part way and run again writes exactly the same bytes.
#[derive(Clone, Copy, Debug)]
struct SpacePlan {
    /// The freelist head after the replay, before recovery linked anything.
    freelist_head: Offset,
    /// The old recovery area the interrupted commit had given up, if any.
    orphan: Option<Offset>,
}

impl Tdb {
    /// Makes every byte past `eof` (the size before the interrupted commit)
    /// accounted for, before the recovery magic is cleared: the gap before a
    /// recovery area placed there and anything after it become free records at
    /// the head of the freelist, the area stays the recovery area, and an old
    /// area the commit had given up becomes a free record too. Idempotent: run
    /// again after the replay it writes the same bytes.
    fn account_for_space(&mut self, head: Offset, rec: &Record, eof: u32) -> Result<()> {
        let map_size = self.map_size;
        let _ = self.file_oob(map_size, 1, true);
        let file_end = self.map_size;
        let Some(area_end) = head
            .checked_add(RECORD_SIZE)
            .and_then(|e| e.checked_add(rec.rec_len))
        else {
            return self.fail(TdbError::Corrupt);
        };
        if area_end > file_end || eof > file_end || eof < format::data_start(self.hash_size) {
            return self.fail(TdbError::Corrupt);
        }
        let mut spans = Vec::new();
        let mut add = |off: u32, end: u32| {
            if end > off {
                spans.push(FreeSpan {
                    off,
                    len: end - off,
                })
            }
        };
        if head >= eof {
            add(eof, head);
            add(area_end, file_end);
        } else {
            add(eof.max(area_end), file_end);
        }
        for s in &spans {
            if s.len < RECORD_SIZE + OFF_SIZE || !s.len.is_multiple_of(format::ALIGNMENT) {
                return self.fail(TdbError::Corrupt);
            }
        }
        if head < eof && spans.is_empty() {
            // Nothing grew and the area did not move: nothing to free.
            return Ok(());
        }
        let plan = self.space_plan(head, eof)?;
        if let Some(orphan) = plan.orphan {
            let orphan_rec = self.read_rec_raw(orphan)?;
            let len = RECORD_SIZE.checked_add(orphan_rec.rec_len);
            match len.filter(|&l| orphan.checked_add(l).is_some_and(|e| e <= eof)) {
                Some(len) => spans.insert(0, FreeSpan { off: orphan, len }),
                None => return self.fail(TdbError::Corrupt),
            }
        }
        let Some(first) = spans.last().copied() else {
            return Ok(());
        };
        let mut next = plan.freelist_head;
        for s in &spans {
            let free = Record {
                next,
                rec_len: s.len - RECORD_SIZE,
                magic: format::FREE_MAGIC,
                ..Record::default()
            };
            self.write_rec(s.off, &free)?;
            self.write_off(s.off + s.len - OFF_SIZE, s.len)?;
            next = s.off;
        }
        self.transaction_sync(0, file_end)?;
        // The one write that links them all.
        self.write_off(FREELIST_TOP, first.off)?;
        self.transaction_sync(FREELIST_TOP, OFF_SIZE)
    }

    /// The saved plan, or a new one (found, saved and synced) when there is none.
    /// Only an area placed past `eof` can have replaced an old one.
    fn space_plan(&mut self, head: Offset, eof: u32) -> Result<SpacePlan> {
        let saved = self.read_rec_raw(head)?;
        if saved.full_hash != 0 {
            return Ok(SpacePlan {
                freelist_head: saved.next,
                orphan: (saved.full_hash != PLAN_NO_ORPHAN).then_some(saved.full_hash),
            });
        }
        let orphan = if head >= eof {
            self.orphaned_area(eof)
        } else {
            None
        };
        let plan = SpacePlan {
            freelist_head: self.read_off(FREELIST_TOP)?,
            orphan,
        };
        self.write_off(head + PLAN_FREELIST_OFS, plan.freelist_head)?;
        self.transaction_sync(head, RECORD_SIZE)?;
        self.write_off(head + PLAN_ORPHAN_OFS, orphan.unwrap_or(PLAN_NO_ORPHAN))?;
        self.transaction_sync(head, RECORD_SIZE)?;
        Ok(plan)
    }

    /// The first recovery area below `eof` that the header no longer points at
    /// (a commit moved the area to the end, and freed the old one only in its own
    /// blocks). Walks the records from the start; stops at anything it cannot
    /// step over.
    fn orphaned_area(&mut self, eof: u32) -> Option<Offset> {
        let mut off = format::data_start(self.hash_size);
        while off < eof {
            let rec = self.read_rec_raw(off).ok()?;
            let end = off
                .checked_add(RECORD_SIZE)?
                .checked_add(rec.rec_len)
                .filter(|&e| e <= eof)?;
            if !rec.rec_len.is_multiple_of(format::ALIGNMENT) || rec.rec_len < OFF_SIZE {
                return None;
            }
            match rec.magic {
                format::MAGIC | format::DEAD_MAGIC | format::FREE_MAGIC => {}
                format::RECOVERY_INVALID_MAGIC | format::RECOVERY_MAGIC | format::PAD_U32 => {
                    return Some(off)
                }
                _ => return None,
            }
            off = end;
        }
        None
    }
}
