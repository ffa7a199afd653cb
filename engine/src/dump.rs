//! Debug dumps: the texts of tdb_dump_all and tdb_printfreelist (the C layer
//! prints them through the C library's stdout, so they interleave with the
//! caller's own printf output).

use crate::error::Result;
use crate::format::{self, Offset, FREELIST_TOP, OFF_SIZE, RECORD_SIZE};
use crate::lock::LockKind;
use crate::tdb::{ChainWalk, Tdb, WalkLimit};
use std::fmt::Write;

impl Tdb {
    fn dump_record(&mut self, out: &mut String, hash: i64, offset: Offset) -> Offset {
        let rec = match self.read_rec_raw(offset) {
            Ok(r) => r,
            Err(_) => {
                let _ = writeln!(out, "ERROR: failed to read record at {}", offset);
                return 0;
            }
        };
        let _ = writeln!(
            out,
            " rec: hash={} offset=0x{:08x} next=0x{:08x} rec_len={} key_len={} data_len={} full_hash=0x{:08x} magic=0x{:08x}",
            hash, offset, rec.next, rec.rec_len, rec.key_len, rec.data_len, rec.full_hash, rec.magic
        );
        let tailer_ofs = offset
            .wrapping_add(RECORD_SIZE)
            .wrapping_add(rec.rec_len)
            .wrapping_sub(OFF_SIZE);
        match self.read_off(tailer_ofs) {
            Err(_) => {
                let _ = writeln!(out, "ERROR: failed to read tailer at {}", tailer_ofs);
            }
            Ok(t) if t != rec.rec_len.wrapping_add(RECORD_SIZE) => {
                let _ = writeln!(
                    out,
                    "ERROR: tailer does not match record! tailer={} totalsize={}",
                    t,
                    rec.rec_len.wrapping_add(RECORD_SIZE)
                );
            }
            Ok(_) => {}
        }
        rec.next
    }

    fn dump_chain(&mut self, out: &mut String, i: i64) {
        let top = if i == -1 {
            FREELIST_TOP
        } else {
            format::hash_top(i as u32)
        };
        let Ok(mut chain) = self.hold_list(i, LockKind::Write) else {
            return;
        };
        if let Ok(mut rec_ptr) = chain.read_off(top) {
            let mut walk = ChainWalk::new(rec_ptr);
            if rec_ptr != 0 {
                let _ = writeln!(out, "hash={}", i);
            }
            while rec_ptr != 0 {
                rec_ptr = chain.dump_record(out, i, rec_ptr);
                if walk.check(&mut chain, rec_ptr).is_err() {
                    let _ = writeln!(out, "circular hash chain {}", i);
                    break;
                }
            }
        }
    }

    /// Every chain and record, then the freelist, as tdb_dump_all prints them.
    pub fn dump_all(&mut self) -> String {
        let mut out = String::new();
        for i in 0..self.hash_size {
            self.dump_chain(&mut out, i as i64);
        }
        out.push_str("freelist:\n");
        self.dump_chain(&mut out, -1);
        out
    }

    /// The freelist as tdb_printfreelist prints it, and whether the walk succeeded
    /// (the text is what was printed up to a failure).
    pub fn print_freelist(&mut self) -> (String, Result<()>) {
        let mut out = String::new();
        let mut freelist = match self.hold_list(-1, LockKind::Write) {
            Ok(freelist) => freelist,
            Err(e) => return (out, Err(e)),
        };
        let r = freelist.print_freelist_locked(&mut out);
        let unlocked = freelist.unlock();
        (out, r.and(unlocked))
    }

    fn print_freelist_locked(&mut self, out: &mut String) -> Result<()> {
        let mut rec_ptr = match self.read_off(FREELIST_TOP) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        };
        let _ = writeln!(out, "freelist top=[0x{:08x}]", rec_ptr);
        let mut total: u64 = 0;
        let mut limit = WalkLimit::new(self);
        while rec_ptr != 0 {
            limit.step(self, "tdb_printfreelist")?;
            let rec = self.read_rec_raw(rec_ptr)?;
            if rec.magic != format::FREE_MAGIC {
                let _ = writeln!(out, "bad magic 0x{:08x} in free list", rec.magic);
                return Err(crate::error::TdbError::Corrupt);
            }
            let _ = writeln!(
                out,
                "entry offset=[0x{:08x}], rec.rec_len = [0x{:08x} ({})] (end = 0x{:08x})",
                rec_ptr,
                rec.rec_len,
                rec.rec_len,
                rec_ptr.wrapping_add(rec.rec_len)
            );
            total += rec.rec_len as u64;
            rec_ptr = rec.next;
        }
        let _ = writeln!(out, "total rec_len = [0x{:08x} ({})]", total, total);
        Ok(())
    }
}
