//! Times what a recovery does to one node's copy of a volatile database:
//! a file of 33,334 records (as the cluster benchmark loads it) refilled
//! with 100,000 in one transaction: start, wipe, batched stores, commit.
//!
//!   cargo run --release -p tdb-engine --example recovery_fill -- DIR [ROUNDS]

use std::ffi::CString;
use std::time::Instant;
use tdb_engine::{flags, BatchRecord, OpenOptions, StoreFlag, Tdb};

fn key(node: u32, i: u32) -> Vec<u8> {
    format!("pnn{node}-{i}").into_bytes()
}

fn value(node: u32, i: u32) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v[0] = 1;
    v[8..12].copy_from_slice(&node.to_le_bytes());
    v.extend_from_slice(format!("value {i} of node {node}").as_bytes());
    v
}

fn open(path: &CString) -> Box<Tdb> {
    let opts = OpenOptions {
        hash_size: 100_001,
        tdb_flags: flags::NOSYNC | flags::INCOMPATIBLE_HASH | flags::MUTEX_LOCKING,
        open_flags: libc::O_RDWR | libc::O_CREAT,
        mode: 0o600,
        ..Default::default()
    };
    Tdb::open(Some(path), opts).expect("open")
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: recovery_fill DIR [ROUNDS]");
    let rounds: u32 = std::env::args().nth(2).map_or(3, |s| s.parse().unwrap());
    let path = CString::new(format!("{dir}/fill.tdb")).unwrap();
    let _ = std::fs::remove_file(path.to_str().unwrap());
    let mut t = open(&path);
    t.transaction_start().unwrap();
    for i in 0..33_334 {
        t.store(&key(0, i), &[&value(0, i)], StoreFlag::Replace)
            .unwrap();
    }
    t.transaction_commit().unwrap();
    let recs: Vec<(Vec<u8>, Vec<u8>)> = (0..3)
        .flat_map(|n| (0..33_334).map(move |i| (key(n, i), value(n, i))))
        .take(100_000)
        .collect();
    for round in 0..rounds {
        let t0 = Instant::now();
        t.transaction_start().unwrap();
        let tw = Instant::now();
        let (mut n, mut bytes, mut chain) = (0usize, 0usize, 0u32);
        loop {
            chain = t.first_used_chain(chain);
            if chain >= 100_001 {
                break;
            }
            let mut cb = |_: &mut Tdb, k: &[u8], v: &[u8]| {
                n += 1;
                bytes += k.len() + v.len();
                false
            };
            t.traverse_chain(chain, &mut cb).unwrap();
            chain += 1;
        }
        let t1 = Instant::now();
        println!(
            "walk {:.2} ms: {n} records, {bytes} bytes",
            (t1 - tw).as_secs_f64() * 1e3
        );
        t.wipe_all().unwrap();
        let t2 = Instant::now();
        for chunk in recs.chunks(14_220) {
            let batch: Vec<BatchRecord> = chunk
                .iter()
                .map(|(k, v)| BatchRecord {
                    key: k,
                    parts: [&v[..24], &v[24..]],
                })
                .collect();
            t.store_batch(&batch).unwrap();
        }
        let t3 = Instant::now();
        t.transaction_commit().unwrap();
        let t4 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        println!(
            "round {round}: start+walk {:.2} ms, wipe {:.2} ms, stores {:.2} ms, commit {:.2} ms",
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3),
            ms(t3, t4)
        );
    }
}
