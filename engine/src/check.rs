//! Full consistency check of a database (tdb_check).
//!
//! One linear pass over the file checks every record's header, length, tailer and
//! hash; every offset found in a chain or freelist head or `next` pointer, and every
//! record offset, is toggled in a per-chain set. In a consistent file each offset
//! appears exactly twice (pointed to, and found), so every set ends empty.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, Record, FREELIST_TOP, OFF_SIZE, RECORD_SIZE};
use crate::open::DebugLevel;
use crate::tdb::Tdb;
use std::collections::HashSet;

/// Offsets seen per chain (0 = freelist, n = chain n-1), each toggled on sight.
struct SeenOffsets(HashSet<(u32, Offset)>);

impl SeenOffsets {
    fn toggle(&mut self, chain: u32, off: Offset) {
        if !self.0.insert((chain, off)) {
            self.0.remove(&(chain, off));
        }
    }
}

/// The optional per-record veto of `check`: returns -1 to fail the check.
pub type CheckFn<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> i32;

impl Tdb {
    /// Checks header, chains, records and free space; `f` may veto each record
    /// (a return of -1 fails the check, as in Samba).
    pub fn check(&mut self, f: Option<CheckFn<'_>>) -> Result<()> {
        let r = self.with_lockall_read(|tdb| {
            let map_size = tdb.map_size;
            let _ = tdb.oob(map_size, 1, true);
            tdb.check_locked(f)
        });
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                if self.ecode == 0 {
                    self.ecode = e.code();
                }
                Err(e)
            }
        }
    }

    fn corrupt(&mut self, message: &str) -> TdbError {
        self.ecode = TdbError::Corrupt.code();
        self.log(DebugLevel::Error, message);
        TdbError::Corrupt
    }

    /// Validates the header; returns the recovery area offset.
    fn check_header(&mut self) -> Result<Offset> {
        let mut raw = [0u8; format::HEADER_SIZE as usize];
        self.read(0, &mut raw)?;
        let hdr = format::Header::decode(&raw, self.order);
        let magic_ok = hdr.has_magic_food();
        let h1 = self.hash.hash(format::MAGIC_FOOD);
        let h2 = self.hash.hash(&self.order.put(format::MAGIC));
        let (h1, h2) = if h1 == 0 && h2 == 0 { (1, 0) } else { (h1, h2) };
        let ok = magic_ok
            && hdr.version == format::VERSION
            && (hdr.rwlocks == 0
                || hdr.rwlocks == format::FEATURE_FLAG_MAGIC
                || hdr.rwlocks == format::HASH_RWLOCK_MAGIC)
            && !(hdr.magic1_hash != 0
                && hdr.magic2_hash != 0
                && (hdr.magic1_hash != h1 || hdr.magic2_hash != h2))
            && hdr.hash_size != 0
            && hdr.hash_size == self.hash_size
            && !(hdr.recovery_start != 0
                && hdr.recovery_start < format::data_start(self.hash_size));
        if !ok {
            return Err(self.corrupt("Header is corrupt\n"));
        }
        Ok(hdr.recovery_start)
    }

    /// Checks what every record header must satisfy.
    fn check_record(&mut self, off: Offset, rec: &Record) -> Result<()> {
        let start = format::data_start(self.hash_size);
        let problem = if rec.next > 0 && rec.next < start {
            Some(format!(
                "Record offset {} too small next {}\n",
                off, rec.next
            ))
        } else if rec.next.checked_add(RECORD_SIZE).is_none() {
            Some(format!(
                "Record offset {} too large next {}\n",
                off, rec.next
            ))
        } else if !rec.next.is_multiple_of(format::ALIGNMENT) {
            Some(format!(
                "Record offset {} misaligned next {}\n",
                off, rec.next
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(self.corrupt(&p));
        }
        if self.oob(rec.next, RECORD_SIZE, false).is_err() {
            return Err(self.corrupt(""));
        }
        if !rec.rec_len.is_multiple_of(format::ALIGNMENT) {
            return Err(self.corrupt(&format!(
                "Record offset {} misaligned length {}\n",
                off, rec.rec_len
            )));
        }
        if rec.rec_len < OFF_SIZE {
            return Err(self.corrupt(&format!(
                "Record offset {} too short length {}\n",
                off, rec.rec_len
            )));
        }
        let total = match RECORD_SIZE.checked_add(rec.rec_len) {
            Some(t) => t,
            None => {
                return Err(self.corrupt(&format!(
                    "Record offset {} too large length {}\n",
                    off, rec.rec_len
                )))
            }
        };
        if self.oob(off, total, false).is_err() {
            self.ecode = TdbError::Corrupt.code();
            return Err(TdbError::Corrupt);
        }
        let tailer = match self.read_off(off + total - OFF_SIZE) {
            Ok(t) => t,
            Err(_) => {
                self.ecode = TdbError::Corrupt.code();
                return Err(TdbError::Corrupt);
            }
        };
        if tailer != total {
            return Err(self.corrupt(&format!("Record offset {} invalid tailer\n", off)));
        }
        Ok(())
    }

    fn check_used_record(
        &mut self,
        off: Offset,
        rec: &Record,
        seen: &mut SeenOffsets,
        f: &mut Option<CheckFn<'_>>,
    ) -> Result<()> {
        self.check_record(off, rec)?;
        let len = rec.key_len as u64 + rec.data_len as u64 + OFF_SIZE as u64;
        if len > u32::MAX as u64 {
            self.log(DebugLevel::Error, "Record lengths overflow\n");
            return Err(TdbError::Corrupt);
        }
        if len > rec.rec_len as u64 {
            self.log(
                DebugLevel::Error,
                &format!("Record offset {} too short for contents\n", off),
            );
            return Err(TdbError::Corrupt);
        }
        let key = self.alloc_read(off + RECORD_SIZE, rec.key_len)?;
        if self.hash.hash(&key) != rec.full_hash {
            self.log(
                DebugLevel::Error,
                &format!("Record offset {} has incorrect hash\n", off),
            );
            return Err(TdbError::Corrupt);
        }
        let chain = self.bucket(rec.full_hash) + 1;
        seen.toggle(chain, off);
        if rec.next != 0 {
            seen.toggle(chain, rec.next);
        }
        if rec.magic != format::DEAD_MAGIC {
            if let Some(check) = f.as_mut() {
                let data = self.alloc_read(off + RECORD_SIZE + rec.key_len, rec.data_len)?;
                if check(&key, &data) == -1 {
                    return Err(TdbError::Corrupt);
                }
            }
        }
        Ok(())
    }

    /// Length of the space left by a crash during growth at `off`: Samba's libtdb
    /// looks only at the byte at `off` and, when it is zero or padding, counts
    /// everything up to the end of the file. We keep that rule, so that both
    /// libraries accept the same files (e.g. the tail Samba's recovery leaves; ours
    /// frees it, see transaction.rs).
    pub(crate) fn dead_space(&mut self, off: Offset) -> u32 {
        if off >= self.map_size {
            return 0;
        }
        let mut c = [0u8; 1];
        if self.read(off, &mut c).is_err() {
            return 0;
        }
        if c[0] != 0 && c[0] != format::PAD_BYTE {
            return 0;
        }
        self.map_size - off
    }

    fn check_locked(&mut self, mut f: Option<CheckFn<'_>>) -> Result<()> {
        let recovery_start = self.check_header()?;
        if self.map_size < format::data_start(self.hash_size) {
            return Err(self.corrupt("File too short for hashes\n"));
        }
        let mut seen = SeenOffsets(HashSet::new());
        for h in 0..=self.hash_size {
            let off = self.read_off(FREELIST_TOP + h * OFF_SIZE)?;
            if off != 0 {
                seen.toggle(h, off);
            }
        }
        let mut found_recovery = false;
        let mut off = format::data_start(self.hash_size);
        while off < self.map_size {
            let mut rec = self.read_rec_raw(off)?;
            match rec.magic {
                format::MAGIC | format::DEAD_MAGIC => {
                    self.check_used_record(off, &rec, &mut seen, &mut f)?
                }
                format::FREE_MAGIC => {
                    self.check_record(off, &rec)?;
                    seen.toggle(0, off);
                    if rec.next != 0 {
                        seen.toggle(0, rec.next);
                    }
                }
                format::RECOVERY_INVALID_MAGIC | format::PAD_U32 if recovery_start == off => {
                    found_recovery = true
                }
                format::RECOVERY_INVALID_MAGIC | format::PAD_U32 => {
                    let dead = self.dead_space(off);
                    if dead < RECORD_SIZE {
                        return Err(self
                            .corrupt(&format!("Bad magic 0x{:x} at offset {}\n", rec.magic, off)));
                    }
                    self.log(
                        DebugLevel::Error,
                        &format!(
                            "Dead space at {}-{} (of {})\n",
                            off,
                            off + dead,
                            self.map_size
                        ),
                    );
                    rec.rec_len = dead - RECORD_SIZE;
                }
                format::RECOVERY_MAGIC => {
                    if recovery_start != off {
                        self.log(
                            DebugLevel::Error,
                            &format!("Unexpected recovery record at offset {}\n", off),
                        );
                        return Err(TdbError::Corrupt);
                    }
                    found_recovery = true;
                }
                _ => {
                    return Err(
                        self.corrupt(&format!("Bad magic 0x{:x} at offset {}\n", rec.magic, off))
                    )
                }
            }
            off = match off
                .checked_add(RECORD_SIZE)
                .and_then(|o| o.checked_add(rec.rec_len))
            {
                Some(o) => o,
                None => {
                    return Err(self.corrupt(&format!(
                        "Record offset {} too large length {}\n",
                        off, rec.rec_len
                    )))
                }
            };
        }
        if !seen.0.is_empty() {
            return Err(self.corrupt("Hashes do not match records\n"));
        }
        if recovery_start != 0 && !found_recovery {
            self.log(
                DebugLevel::Error,
                &format!("Expected a recovery area at {}\n", recovery_start),
            );
            return Err(TdbError::Corrupt);
        }
        Ok(())
    }
}
