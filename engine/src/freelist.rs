//! The freelist: best-fit allocation (from the end of a free record), freeing with
//! merging into a free left neighbour, reuse of dead records, and its checks.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, FREELIST_TOP, OFF_SIZE, RECORD_SIZE};
use crate::lock::LockKind;
use crate::open::DebugLevel;
use crate::tdb::{ChainWalk, Tdb, WalkLimit};
use std::collections::HashSet;

/// The smallest free record worth splitting off.
const MIN_REC_SIZE: u32 = RECORD_SIZE + OFF_SIZE + 8;

impl Tdb {
    /// Writes the tailer (total length) at the end of the record at `offset`.
    fn update_tailer(&mut self, offset: Offset, rec: &Record) -> Result<()> {
        let total = match RECORD_SIZE.checked_add(rec.rec_len) {
            Some(t) if offset.checked_add(t).is_some() => t,
            _ => return self.fail(TdbError::Corrupt),
        };
        self.write_off(offset + total - OFF_SIZE, total)
    }

    /// The record whose tailer ends just before `rec_ptr`, if it looks sane.
    fn record_on_left(&mut self, rec_ptr: Offset) -> Option<(Offset, Record)> {
        let start = format::data_start(self.hash_size);
        let left_tailer = rec_ptr.checked_sub(OFF_SIZE)?;
        if left_tailer <= start {
            return None;
        }
        let left_size = match self.read_off(left_tailer) {
            Ok(s) => s,
            Err(_) => {
                self.log(
                    DebugLevel::Fatal,
                    &format!("tdb_free: left offset read failed at {}\n", left_tailer),
                );
                return None;
            }
        };
        // Zero or padding: uninitialised space, not a record.
        if left_size == 0 || left_size == format::PAD_U32 || left_size > rec_ptr {
            return None;
        }
        let left_ptr = rec_ptr - left_size;
        if left_ptr < start {
            return None;
        }
        match self.read_rec_raw(left_ptr) {
            Ok(r) => Some((left_ptr, r)),
            Err(_) => {
                self.log(
                    DebugLevel::Fatal,
                    &format!(
                        "tdb_free: left read failed at {} ({})\n",
                        left_ptr, left_size
                    ),
                );
                None
            }
        }
    }

    /// Merges `rec` into its left neighbour when that is free. Returns the grown
    /// left record when it merged.
    fn merge_with_left(
        &mut self,
        rec_ptr: Offset,
        rec: &Record,
    ) -> Result<Option<(Offset, Record)>> {
        let (left_ptr, mut left) = match self.record_on_left(rec_ptr) {
            Some(l) => l,
            None => return Ok(None),
        };
        if left.magic != format::FREE_MAGIC {
            return Ok(None);
        }
        left.rec_len = match RECORD_SIZE
            .checked_add(rec.rec_len)
            .and_then(|n| left.rec_len.checked_add(n))
        {
            Some(n) => n,
            None => return self.fail(TdbError::Corrupt),
        };
        self.write_rec(left_ptr, &left).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                &format!(
                    "merge_with_left_record: update_left failed at {}\n",
                    left_ptr
                ),
            );
        })?;
        self.update_tailer(left_ptr, &left).inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                &format!(
                    "merge_with_left_record: update_tailer failed at {}\n",
                    left_ptr
                ),
            );
        })?;
        Ok(Some((left_ptr, left)))
    }

    /// Puts the record at `offset` on the freelist, merging it into a free left
    /// neighbour (tdb_free). Takes the freelist lock.
    pub(crate) fn free_record(&mut self, offset: Offset, mut rec: Record) -> Result<()> {
        let mut freelist = self.hold_list(-1, LockKind::Write)?;
        freelist.free_record_locked(offset, &mut rec)
    }

    fn free_record_locked(&mut self, offset: Offset, rec: &mut Record) -> Result<()> {
        // A tailer first, so a failure leaves no bogus record behind.
        self.update_tailer(offset, rec).inspect_err(|_| {
            self.log(DebugLevel::Fatal, "tdb_free: update_tailer failed!\n");
        })?;
        if self.merge_with_left(offset, rec)?.is_some() {
            return Ok(());
        }
        rec.magic = format::FREE_MAGIC;
        let head = self.read_off(FREELIST_TOP);
        let r = head.and_then(|h| {
            rec.next = h;
            self.write_rec(offset, rec)?;
            self.write_off(FREELIST_TOP, offset)
        });
        r.inspect_err(|_| {
            self.log(
                DebugLevel::Fatal,
                &format!("tdb_free record write failed at offset={}\n", offset),
            );
        })
    }

    /// Reads a freelist entry, repairing a live magic left by an interrupted delete.
    pub(crate) fn read_free_rec(&mut self, off: Offset) -> Result<Record> {
        let mut rec = self.read_rec_raw(off)?;
        if rec.magic == format::MAGIC {
            self.log(
                DebugLevel::Warning,
                &format!(
                    "tdb_rec_free_read non-free magic 0x{:x} at offset={} - fixing\n",
                    rec.magic, off
                ),
            );
            rec.magic = format::FREE_MAGIC;
            self.write_rec(off, &rec)?;
        }
        if rec.magic != format::FREE_MAGIC {
            self.ecode = TdbError::Corrupt.code();
            self.log(
                DebugLevel::Warning,
                &format!(
                    "tdb_rec_free_read bad magic 0x{:x} at offset={}\n",
                    rec.magic, off
                ),
            );
            return Err(TdbError::Corrupt);
        }
        self.oob(rec.next, RECORD_SIZE, false)?;
        // A free record must lie inside the file: a damaged length would make
        // allocation and tailer offsets wrap.
        match RECORD_SIZE.checked_add(rec.rec_len) {
            Some(total) if self.oob(off, total, true).is_ok() => Ok(rec),
            _ => {
                self.ecode = TdbError::Corrupt.code();
                self.log(
                    DebugLevel::Warning,
                    &format!(
                        "tdb_rec_free_read bad length {} at offset={}\n",
                        rec.rec_len, off
                    ),
                );
                Err(TdbError::Corrupt)
            }
        }
    }

    /// Takes `length` bytes out of the free record at `rec_ptr`: all of it when the
    /// rest would be too small, otherwise from its end (tdb_allocate_ofs).
    fn allocate_from(
        &mut self,
        length: u32,
        rec_ptr: Offset,
        mut rec: Record,
        last_ptr: Offset,
    ) -> Result<(Offset, Record)> {
        let Some(split_min) = length.checked_add(MIN_REC_SIZE) else {
            return self.fail(TdbError::Oom);
        };
        if rec.rec_len < split_min {
            self.write_off(last_ptr, rec.next)?;
            rec.magic = format::MAGIC;
            self.write_rec(rec_ptr, &rec)?;
            return Ok((rec_ptr, rec));
        }
        rec.rec_len -= length + RECORD_SIZE;
        self.write_rec(rec_ptr, &rec)?;
        self.update_tailer(rec_ptr, &rec)?;
        let new_ptr = rec_ptr + RECORD_SIZE + rec.rec_len;
        let new_rec = Record {
            rec_len: length,
            magic: format::MAGIC,
            ..Record::default()
        };
        self.write_rec(new_ptr, &new_rec)?;
        self.update_tailer(new_ptr, &new_rec)?;
        Ok((new_ptr, new_rec))
    }

    /// Best-fit allocation from the freelist, growing the file when nothing fits.
    /// The caller holds the freelist lock.
    fn allocate_from_freelist(&mut self, length: u32) -> Result<(Offset, Record)> {
        // Over-allocate to reduce fragmentation, plus room for the tailer (a
        // request that cannot be rounded so within 32 bits cannot be met).
        let grown = (length as f64 * 1.25) as u64 + (OFF_SIZE + format::ALIGNMENT - 1) as u64;
        let length = match u32::try_from(grown & !(format::ALIGNMENT as u64 - 1)) {
            Ok(l) if l.checked_add(MIN_REC_SIZE).is_some() => l,
            _ => return self.fail(TdbError::Oom),
        };
        self.allocate_exact(length)
    }

    /// Best-fit allocation of exactly `length` bytes after the record header
    /// (aligned, tailer included; more only when the free record it comes
    /// from would leave too small a rest), growing the file when nothing
    /// fits. The caller holds the freelist lock.
    pub(crate) fn allocate_exact(&mut self, length: u32) -> Result<(Offset, Record)> {
        if length.checked_add(MIN_REC_SIZE).is_none() || !length.is_multiple_of(format::ALIGNMENT) {
            return self.fail(TdbError::Oom);
        }
        let mut limit = WalkLimit::new(self);
        loop {
            let mut merge_created_candidate = false;
            let mut last_ptr = FREELIST_TOP;
            let mut rec_ptr = self.read_off(FREELIST_TOP)?;
            let mut modified = false;
            let mut walk = ChainWalk::new(rec_ptr);
            let mut best: Option<(Offset, Offset, u32)> = None; // (ptr, last_ptr, len)
            let mut multiplier = 1.0f32;
            while rec_ptr != 0 {
                limit.step(self, "tdb_allocate")?;
                let rec = self.read_free_rec(rec_ptr)?;
                if let Some((left_ptr, left)) = self.merge_with_left(rec_ptr, &rec)? {
                    // Merged into the left neighbour: unlink this one and go on.
                    rec_ptr = rec.next;
                    self.write_off(last_ptr, rec.next)?;
                    if let Some(b) = best.as_mut() {
                        if b.0 == left_ptr {
                            b.2 = left.rec_len;
                        }
                    }
                    if left.rec_len > length {
                        merge_created_candidate = true;
                    }
                    modified = true;
                    continue;
                }
                if rec.rec_len >= length && best.is_none_or(|b| rec.rec_len < b.2) {
                    best = Some((rec_ptr, last_ptr, rec.rec_len));
                }
                last_ptr = rec_ptr;
                rec_ptr = rec.next;
                if !modified {
                    walk.check(self, rec_ptr)?;
                }
                // Stop once the best fit is not too big; "too big" grows as we go.
                if let Some(b) = best {
                    if (b.2 as f32) < length as f32 * multiplier {
                        break;
                    }
                }
                multiplier *= 1.05;
            }
            if let Some((ptr, last, _)) = best {
                let rec = self.read_free_rec(ptr)?;
                return self.allocate_from(length, ptr, rec, last);
            }
            if merge_created_candidate {
                continue;
            }
            self.expand(length + RECORD_SIZE)?; // length + MIN_REC_SIZE fits (above)
            limit = WalkLimit::new(self);
        }
    }

    /// Finds room for a record of `length` bytes of key and data: a dead record of
    /// a nearby chain when dead records are kept, else the freelist (tdb_allocate).
    /// `chain_clean` says the caller saw no dead record in the chain of `hash`
    /// under its lock, so there are none to purge.
    pub(crate) fn allocate(
        &mut self,
        hash: u32,
        length: u32,
        chain_clean: bool,
    ) -> Result<(Offset, Record)> {
        if self.max_dead != 0 {
            for i in 0..self.hash_size {
                let list = self.bucket(hash.wrapping_add(i));
                if let Ok(mut chain) = self.hold_list_quietly(list as i64, LockKind::Write, false) {
                    if let Some(found) = chain.alloc_dead(list, length) {
                        return Ok(found);
                    }
                }
                if let Ok(mut freelist) = self.hold_list_quietly(-1, LockKind::Write, false) {
                    if !chain_clean {
                        freelist.purge_dead(hash);
                    }
                    return freelist.allocate_from_freelist(length);
                }
            }
        }
        let mut freelist = self.hold_list(-1, LockKind::Write)?;
        if !chain_clean {
            freelist.purge_dead(hash);
        }
        freelist.allocate_from_freelist(length)
    }

    /// Takes a fitting dead record out of chain `list` for reuse.
    fn alloc_dead(&mut self, list: u32, length: u32) -> Option<(Offset, Record)> {
        let (ptr, rec, last_ptr) = self.find_dead(list, length).ok()??;
        self.write_off(last_ptr, rec.next).ok()?;
        Some((ptr, rec))
    }

    /// Frees every dead record of the chain of `hash`.
    fn purge_dead(&mut self, hash: u32) {
        let max_dead = self.max_dead;
        self.max_dead = 0;
        let _ = self.trim_dead(hash);
        self.max_dead = max_dead;
    }

    /// Number of entries on the freelist, merging adjacent free records first when
    /// writable (tdb_freelist_size).
    pub fn freelist_size(&mut self) -> Result<i32> {
        let r = if self.read_only {
            self.freelist_count()
        } else {
            self.freelist_merge_adjacent()
        };
        self.track(r)
    }

    fn freelist_count(&mut self) -> Result<i32> {
        let mut freelist = self.hold_list(-1, LockKind::Read)?;
        let mut count = 0;
        let mut ptr = FREELIST_TOP;
        let mut limit = WalkLimit::new(&freelist);
        while let Ok(next) = freelist.read_off(ptr) {
            if next == 0 {
                break;
            }
            limit.step(&mut freelist, "tdb_freelist_size")?;
            count += 1;
            ptr = next;
        }
        Ok(count)
    }

    fn freelist_merge_adjacent(&mut self) -> Result<i32> {
        let mut freelist = self.hold_list(-1, LockKind::Read)?;
        freelist.freelist_merge_adjacent_locked()
    }

    fn freelist_merge_adjacent_locked(&mut self) -> Result<i32> {
        let mut count = 0;
        let mut cur = FREELIST_TOP;
        let mut limit = WalkLimit::new(self);
        while let Ok(next) = self.read_off(cur) {
            if next == 0 {
                break;
            }
            limit.step(self, "tdb_freelist_size")?;
            count += 1;
            let mut next = next;
            if let Some((left_ptr, _)) = self.record_on_left(next) {
                let left = self.read_rec_raw(left_ptr)?;
                if left.magic == format::FREE_MAGIC {
                    let rec = self.read_rec_raw(next)?;
                    if self.merge_with_left(next, &rec)?.is_some() {
                        self.write_off(cur, rec.next)?;
                        next = rec.next;
                    }
                }
            }
            if next == 0 {
                // Samba's loop then reads the header's first word as an
                // offset and counts it once before stopping; so do we.
                count += 1;
                break;
            }
            cur = next;
        }
        Ok(count)
    }

    /// Walks the freelist checking for duplicates and loops; returns the entry count.
    pub fn validate_freelist(&mut self) -> Result<i32> {
        let r = match self.hold_list(-1, LockKind::Write) {
            Ok(mut freelist) => freelist.validate_freelist_locked(),
            Err(_) => return Ok(0),
        };
        self.track(r)
    }

    fn validate_freelist_locked(&mut self) -> Result<i32> {
        let mut seen = HashSet::new();
        seen.insert(FREELIST_TOP);
        let mut count = 0;
        let mut rec_ptr = self.read_off(FREELIST_TOP)?;
        while rec_ptr != 0 {
            count += 1;
            if !seen.insert(rec_ptr) {
                return self.fail(TdbError::Corrupt);
            }
            let rec = self.read_free_rec(rec_ptr)?;
            rec_ptr = rec.next;
        }
        Ok(count)
    }
}
