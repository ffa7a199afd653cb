//! The human-readable statistics text of tdb_summary.

use crate::error::{Result, TdbError};
use crate::format::{self, Offset, OFF_SIZE, RECORD_SIZE};
use crate::hash::HashFunction;
use crate::open::DebugLevel;
use crate::tdb::{ChainWalk, Tdb};

/// Count, total, smallest and largest of a series of sizes. Sums saturate: a
/// damaged file can hold lengths whose total does not fit, and the text then
/// says "at least this much" instead of a wrapped or panicking sum.
#[derive(Default)]
struct Tally {
    min: u64,
    max: u64,
    total: u64,
    num: u64,
}

impl Tally {
    fn add(&mut self, v: u64) {
        if self.num == 0 {
            self.min = v;
            self.max = v;
        } else if v > self.max {
            self.max = v;
        } else if v < self.min {
            self.min = v;
        }
        self.num = self.num.saturating_add(1);
        self.total = self.total.saturating_add(v);
    }

    fn mean(&self) -> u64 {
        self.total.checked_div(self.num).unwrap_or(0)
    }

    fn triple(&self) -> String {
        format!("{}/{}/{}", self.min, self.mean(), self.max)
    }
}

impl Tdb {
    /// Length of hash chain `i`: u64::MAX when it loops (Samba reports SIZE_MAX),
    /// 0 when unreadable.
    fn chain_length(&mut self, i: u32) -> u64 {
        let mut rec_ptr = match self.read_off(format::hash_top(i)) {
            Ok(p) => p,
            Err(_) => return 0,
        };
        let mut walk = ChainWalk::new(rec_ptr);
        let mut count = 0u64;
        while rec_ptr != 0 {
            count = count.saturating_add(1);
            let rec = match self.read_rec(rec_ptr) {
                Ok(r) => r,
                Err(_) => return 0,
            };
            rec_ptr = rec.next;
            if walk.check(self, rec_ptr).is_err() {
                return u64::MAX;
            }
        }
        count
    }

    /// The summary text, formatted as Samba's tdb_summary formats it.
    pub fn summary(&mut self) -> Result<String> {
        self.with_lockall_read(Tdb::summary_locked)
    }

    fn summary_locked(&mut self) -> Result<String> {
        let (rec_off, _) = self.recovery_area(true)?;
        let (mut free, mut keys, mut data, mut dead, mut extra, mut hashval, mut uncoal) = (
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
        );
        let mut unc = 0u64;
        let mut off: Offset = format::data_start(self.hash_size);
        while off < self.map_size.saturating_sub(1) {
            let mut rec = self.read_rec_raw(off)?;
            match rec.magic {
                format::MAGIC => {
                    keys.add(rec.key_len as u64);
                    data.add(rec.data_len as u64);
                    // Padding; a record claiming more than its length has none.
                    let used = rec.key_len as u64 + rec.data_len as u64;
                    extra.add((rec.rec_len as u64).saturating_sub(used));
                    if unc > 1 {
                        uncoal.add(unc - 1);
                    }
                    unc = 0;
                }
                format::FREE_MAGIC => {
                    free.add(rec.rec_len as u64);
                    unc += 1;
                }
                format::RECOVERY_INVALID_MAGIC | format::PAD_U32 | format::DEAD_MAGIC => {
                    if rec.magic != format::DEAD_MAGIC {
                        unc += 1;
                        if off != rec_off {
                            rec.rec_len = self.dead_space(off).saturating_sub(RECORD_SIZE);
                        }
                    }
                    dead.add(rec.rec_len as u64);
                }
                _ => {
                    self.log(
                        DebugLevel::Error,
                        &format!(
                            "Unexpected record magic 0x{:x} at offset {}\n",
                            rec.magic, off
                        ),
                    );
                    return Err(TdbError::Corrupt);
                }
            }
            off = match off
                .checked_add(RECORD_SIZE)
                .and_then(|o| o.checked_add(rec.rec_len))
            {
                Some(o) => o,
                None => break,
            };
        }
        if unc > 1 {
            uncoal.add(unc - 1);
        }
        for i in 0..self.hash_size {
            let len = self.chain_length(i);
            hashval.add(len);
        }
        let file_size = self.hdr_ofs as u64 + self.map_size as u64;
        let pct = |v: f64| format!("{:.0}", v * 100.0 / file_size as f64);
        let jenkins = matches!(self.hash, HashFunction::Jenkins);
        let mutex = self.feature_flags & format::FEATURE_FLAG_MUTEX != 0;
        let mut s = String::new();
        s += &format!(
            "Size of file/data: {}/{}\n",
            file_size,
            keys.total.saturating_add(data.total)
        );
        s += &format!(
            "Header offset/logical size: {}/{}\n",
            self.hdr_ofs, self.map_size
        );
        s += &format!("Number of records: {}\n", keys.num);
        s += &format!(
            "Incompatible hash: {}\n",
            if jenkins { "yes" } else { "no" }
        );
        s += &format!(
            "Active/supported feature flags: 0x{:08x}/0x{:08x}\n",
            self.feature_flags,
            format::SUPPORTED_FEATURE_FLAGS
        );
        s += &format!(
            "Robust mutexes locking: {}\n",
            if mutex { "yes" } else { "no" }
        );
        s += &format!("Smallest/average/largest keys: {}\n", keys.triple());
        s += &format!("Smallest/average/largest data: {}\n", data.triple());
        s += &format!("Smallest/average/largest padding: {}\n", extra.triple());
        s += &format!("Number of dead records: {}\n", dead.num);
        s += &format!("Smallest/average/largest dead records: {}\n", dead.triple());
        s += &format!("Number of free records: {}\n", free.num);
        s += &format!("Smallest/average/largest free records: {}\n", free.triple());
        s += &format!("Number of hash chains: {}\n", hashval.num);
        s += &format!(
            "Smallest/average/largest hash chains: {}\n",
            hashval.triple()
        );
        s += &format!("Number of uncoalesced records: {}\n", uncoal.total);
        s += &format!(
            "Smallest/average/largest uncoalesced runs: {}\n",
            uncoal.triple()
        );
        let records = keys.num.saturating_add(free.num).saturating_add(dead.num);
        let headers = records.saturating_mul(RECORD_SIZE as u64 + 4) as f64;
        s += &format!(
            "Percentage keys/data/padding/free/dead/rechdrs&tailers/hashes: {}/{}/{}/{}/{}/{}/{}\n",
            pct(keys.total as f64),
            pct(data.total as f64),
            pct(extra.total as f64),
            pct(free.total as f64),
            pct(dead.total as f64),
            pct(headers),
            pct((self.hash_size * OFF_SIZE) as f64)
        );
        Ok(s)
    }
}
