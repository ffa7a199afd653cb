//! The corrupt-file corpus: a small database with live, free and dead records
//! and a recovery area, and a deterministic list of damaged copies of it. Used by
//! tests/robustness.rs and by examples/write_corpus.rs (for torture/corpus-run.c).

use super::{open, Rng, TempDir};
use std::collections::BTreeMap;
use tdb_engine::{flags, StoreFlag};

/// Every record of a database, by key.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

pub fn rd(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
pub fn wr(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub const HASH: u32 = 7;
pub const DATA_START: usize = 168 + 4 * (HASH as usize + 1);

pub struct Rec {
    pub off: usize,
    pub rec_len: u32,
    pub key_len: u32,
    pub data_len: u32,
    pub magic: u32,
}

pub fn records(b: &[u8]) -> Vec<Rec> {
    let mut v = Vec::new();
    let mut off = DATA_START;
    while off + 24 <= b.len() {
        let r = Rec {
            off,
            rec_len: rd(b, off + 4),
            key_len: rd(b, off + 8),
            data_len: rd(b, off + 12),
            magic: rd(b, off + 20),
        };
        if r.magic == 0 || r.magic == 0x4242_4242 {
            break;
        }
        off += 24 + r.rec_len as usize;
        v.push(r);
    }
    v
}

pub const LIVE: u32 = 0x2601_1999;
pub const FREE: u32 = !LIVE;
pub const DEAD: u32 = 0xFEE1_DEAD;
pub const RECOVERY: u32 = 0xf53b_c0e7;

pub fn key(i: u32) -> Vec<u8> {
    format!("key-{:03}", i).into_bytes()
}
pub fn val(i: u32) -> Vec<u8> {
    let mut v = format!("value-{}-", i).into_bytes();
    v.resize(8 + (i as usize * 37) % 300, b'a' + (i % 26) as u8);
    v
}

/// A small database with live, free and dead records and a recovery area.
pub fn base_db() -> (Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>) {
    let dir = TempDir::new("corpus-base");
    let path = dir.file("base.tdb");
    let mut db = open(&path, flags::NOSYNC, HASH as i32);
    let mut model = BTreeMap::new();
    for i in 0..40 {
        db.store(&key(i), &[&val(i)], StoreFlag::Insert).unwrap();
        model.insert(key(i), val(i));
    }
    for i in (0..40).step_by(4) {
        db.delete(&key(i)).unwrap();
        model.remove(&key(i));
    }
    db.transaction_start().unwrap();
    for i in 40..46 {
        db.store(&key(i), &[&val(i)], StoreFlag::Insert).unwrap();
        model.insert(key(i), val(i));
    }
    db.transaction_commit().unwrap();
    db.set_max_dead(3);
    db.delete(&key(41)).unwrap();
    model.remove(&key(41));
    db.check(None).unwrap();
    db.close().unwrap();
    (std::fs::read(&path).unwrap(), model)
}

/// A damaged file, and which original records (by offset) the damage may have hit
/// (all others must come back from tdb_rescue).
pub struct Case {
    pub name: String,
    pub bytes: Vec<u8>,
    pub touched: Vec<usize>,
    /// rescue may legitimately drop every record (header unusable, file too short).
    pub no_rescue: bool,
}

/// The damaged cases, the records the base database holds, and its bytes.
pub fn corpus() -> (Vec<Case>, Model, Vec<u8>) {
    let (base, model) = base_db();
    let recs = records(&base);
    let live: Vec<&Rec> = recs.iter().filter(|r| r.magic == LIVE).collect();
    let free: Vec<&Rec> = recs.iter().filter(|r| r.magic == FREE).collect();
    assert!(
        live.len() >= 20 && !free.is_empty(),
        "base layout: {} live, {} free",
        live.len(),
        free.len()
    );
    assert!(
        recs.iter().any(|r| r.magic == DEAD),
        "base has a dead record"
    );
    let recovery = rd(&base, 44) as usize;
    assert!(recovery != 0, "base has a recovery area");
    let len = base.len();
    let mut cases = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, touched: Vec<usize>, no_rescue: bool| {
        cases.push(Case {
            name: name.to_string(),
            bytes,
            touched,
            no_rescue,
        });
    };
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    let (a, b2) = (live[3], live[7]);

    // Truncated.
    for cut in [
        0,
        10,
        100,
        167,
        168,
        180,
        DATA_START,
        DATA_START + 30,
        a.off + 10,
        len / 2,
        len - 4,
    ] {
        let touched = recs
            .iter()
            .filter(|r| r.off + 24 + r.rec_len as usize > cut)
            .map(|r| r.off)
            .collect();
        add(
            &format!("truncated-{}", cut),
            base[..cut].to_vec(),
            touched,
            cut < DATA_START,
        );
    }
    // Header damage.
    add("bad-magic-food", edit(&|b| b[0] = b'X'), vec![], true);
    add(
        "bad-version",
        edit(&|b| wr(b, 32, 0x1234_5678)),
        vec![],
        true,
    );
    add("hash-size-zero", edit(&|b| wr(b, 36, 0)), vec![], true);
    add(
        "hash-size-huge",
        edit(&|b| wr(b, 36, 0x4000_0000)),
        vec![],
        true,
    );
    add(
        "hash-size-max",
        edit(&|b| wr(b, 36, u32::MAX)),
        vec![],
        true,
    );
    add("hash-size-smaller", edit(&|b| wr(b, 36, 3)), vec![], true);
    add("hash-size-bigger", edit(&|b| wr(b, 36, 11)), vec![], true);
    add(
        "bad-magic-hashes",
        edit(&|b| wr(b, 52, 0xdead_beef)),
        vec![],
        true,
    );
    add(
        "rwlocks-garbage",
        edit(&|b| wr(b, 40, 0x7777_7777)),
        vec![],
        true,
    );
    add(
        "feature-flags-unknown",
        edit(&|b| {
            wr(b, 40, 0x0bad_1a52);
            wr(b, 60, 0x80)
        }),
        vec![],
        true,
    );
    add(
        "mutex-flag-no-area",
        edit(&|b| {
            wr(b, 40, 0x0bad_1a52);
            wr(b, 60, 1);
            wr(b, 64, 4096)
        }),
        vec![],
        true,
    );
    // Chains.
    add(
        "chain-self-cycle",
        edit(&|b| wr(b, a.off, a.off as u32)),
        vec![a.off],
        false,
    );
    add(
        "chain-two-cycle",
        edit(&|b| {
            wr(b, a.off, b2.off as u32);
            wr(b, b2.off, a.off as u32)
        }),
        vec![a.off, b2.off],
        false,
    );
    add(
        "chain-cycle-to-head",
        edit(&|b| {
            let bucket = 172 + 4 * (rd(b, a.off + 16) % HASH) as usize;
            let head = rd(b, bucket);
            let mut o = head as usize;
            while rd(b, o) != 0 {
                o = rd(b, o) as usize;
            }
            wr(b, o, head)
        }),
        vec![],
        false,
    );
    add(
        "chain-head-past-eof",
        edit(&|b| wr(b, 172, len as u32 + 4096)),
        vec![],
        false,
    );
    add(
        "chain-head-unaligned",
        edit(&|b| wr(b, 176, a.off as u32 + 2)),
        vec![],
        false,
    );
    add(
        "chain-head-into-header",
        edit(&|b| wr(b, 180, 20)),
        vec![],
        false,
    );
    add(
        "chain-head-mid-record",
        edit(&|b| wr(b, 184, a.off as u32 + 24)),
        vec![],
        false,
    );
    add(
        "next-past-eof",
        edit(&|b| wr(b, a.off, 0xffff_fff0)),
        vec![a.off],
        false,
    );
    add(
        "next-to-last-word",
        edit(&|b| wr(b, a.off, len as u32 - 4)),
        vec![a.off],
        false,
    );
    add(
        "all-chains-same-record",
        edit(&|b| {
            for h in 0..HASH as usize {
                wr(b, 172 + 4 * h, a.off as u32)
            }
        }),
        vec![],
        false,
    );
    // Records.
    add(
        "rec-len-huge",
        edit(&|b| wr(b, a.off + 4, 0xffff_fff0)),
        vec![a.off],
        false,
    );
    add(
        "rec-len-past-eof",
        edit(&|b| wr(b, a.off + 4, len as u32)),
        vec![a.off],
        false,
    );
    add(
        "key-len-huge",
        edit(&|b| wr(b, a.off + 8, 0xffff_ff00)),
        vec![a.off],
        false,
    );
    add(
        "data-len-huge",
        edit(&|b| wr(b, a.off + 12, 0x7fff_ffff)),
        vec![a.off],
        false,
    );
    add(
        "key-data-len-wrap",
        edit(&|b| {
            wr(b, a.off + 8, 0x8000_0000);
            wr(b, a.off + 12, 0x8000_0010)
        }),
        vec![a.off],
        false,
    );
    add(
        "wrong-full-hash",
        edit(&|b| wr(b, a.off + 16, 0x1234_5678)),
        vec![a.off],
        false,
    );
    add(
        "bad-record-magic",
        edit(&|b| wr(b, a.off + 20, 0x1111_1111)),
        vec![a.off],
        false,
    );
    add(
        "bad-tailer",
        edit(&|b| {
            let t = a.off + 24 + a.rec_len as usize - 4;
            wr(b, t, 0x10)
        }),
        vec![],
        false,
    );
    add(
        "overlapping-records",
        edit(&|b| {
            // a's length swallows the next record
            let nxt = a.off + 24 + a.rec_len as usize;
            let nl = rd(b, nxt + 4);
            wr(b, a.off + 4, a.rec_len + 24 + nl)
        }),
        vec![a.off],
        false,
    );
    add(
        "live-record-made-free",
        edit(&|b| wr(b, a.off + 20, FREE)),
        vec![a.off],
        false,
    );
    add(
        "zeroed-middle",
        edit(&|b| {
            for x in &mut b[a.off..a.off + 48] {
                *x = 0
            }
        }),
        vec![a.off],
        false,
    );
    add(
        "padding-middle",
        edit(&|b| {
            for x in &mut b[a.off..a.off + 48] {
                *x = 0x42
            }
        }),
        vec![a.off],
        false,
    );
    // Freelist.
    let f0 = free[0];
    add(
        "freelist-self-cycle",
        edit(&|b| {
            wr(b, 168, f0.off as u32);
            wr(b, f0.off, f0.off as u32)
        }),
        vec![],
        false,
    );
    if free.len() > 1 {
        let f1 = free[1];
        add(
            "freelist-two-cycle",
            edit(&|b| {
                wr(b, 168, f0.off as u32);
                wr(b, f0.off, f1.off as u32);
                wr(b, f1.off, f0.off as u32)
            }),
            vec![],
            false,
        );
    }
    add(
        "freelist-head-live-record",
        edit(&|b| wr(b, 168, a.off as u32)),
        vec![],
        false,
    );
    add(
        "freelist-head-past-eof",
        edit(&|b| wr(b, 168, len as u32 + 64)),
        vec![],
        false,
    );
    add(
        "freelist-head-into-hash",
        edit(&|b| wr(b, 168, 172)),
        vec![],
        false,
    );
    add(
        "free-rec-len-huge",
        edit(&|b| {
            wr(b, 168, f0.off as u32);
            wr(b, f0.off + 4, 0xffff_fff0)
        }),
        vec![],
        false,
    );
    add(
        "free-rec-len-past-eof",
        edit(&|b| {
            wr(b, 168, f0.off as u32);
            wr(b, f0.off + 4, (len - f0.off) as u32 + 1000)
        }),
        vec![],
        false,
    );
    // Recovery area.
    add(
        "recovery-ptr-garbage",
        edit(&|b| wr(b, 44, 0x7fff_0000)),
        vec![],
        false,
    );
    add(
        "recovery-ptr-into-hash",
        edit(&|b| wr(b, 44, 172)),
        vec![],
        false,
    );
    add(
        "recovery-garbage-invalid",
        edit(&|b| {
            for x in &mut b[recovery + 24..(recovery + 200).min(len)] {
                *x = 0xA5
            }
        }),
        vec![],
        false,
    );
    add(
        "recovery-valid-magic-garbage-lengths",
        edit(&|b| {
            wr(b, recovery + 20, RECOVERY);
            wr(b, recovery + 12, 0xffff_fff0); // data_len
            wr(b, recovery + 8, 0x7fff_ffff) // old file size
        }),
        vec![],
        true,
    );
    add(
        "recovery-valid-magic-entry-past-eof",
        edit(&|b| {
            wr(b, recovery + 20, RECOVERY);
            wr(b, recovery + 12, 16);
            wr(b, recovery + 8, len as u32);
            wr(b, recovery + 24, len as u32 + 4096); // entry offset
            wr(b, recovery + 28, 8) // entry length
        }),
        vec![],
        true,
    );
    add(
        "recovery-valid-magic-entry-overflow",
        edit(&|b| {
            wr(b, recovery + 20, RECOVERY);
            wr(b, recovery + 12, 16);
            wr(b, recovery + 8, len as u32);
            wr(b, recovery + 24, 0xffff_fffc);
            wr(b, recovery + 28, 0x10)
        }),
        vec![],
        true,
    );
    // Deterministic random damage.
    let mut rng = Rng(0x5eed);
    for n in 0..40 {
        let mut b = base.clone();
        let mut touched = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let at = (DATA_START as u64 + rng.below((len - DATA_START) as u64)) as usize;
            let v = match rng.below(4) {
                0 => 0,
                1 => 0xffff_ffff,
                2 => rng.below(len as u64 + 100) as u32,
                _ => rng.next() as u32,
            };
            let at = at & !3;
            wr(&mut b, at, v);
            for r in &recs {
                if at + 4 > r.off && at < r.off + 24 + r.rec_len as usize {
                    touched.push(r.off);
                }
            }
        }
        add(&format!("random-{}", n), b, touched, false);
    }
    (cases, model, base)
}
