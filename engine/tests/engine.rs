//! Engine behaviour, checked against a simple model and Samba's documented semantics.

mod common;

use common::*;
use std::collections::BTreeMap;
use tdb_engine::{flags, StoreFlag, Tdb, TdbError};

fn model_run(tdb_flags: u32, hash_size: i32, seed: u64, ops: usize) {
    let dir = TempDir::new("model");
    let path = dir.file("m.tdb");
    let mut db = open(&path, tdb_flags, hash_size);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(seed);
    let keys: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("key-{}", i * 7919 % 1000).into_bytes())
        .collect();
    for step in 0..ops {
        let key = &keys[rng.below(keys.len() as u64) as usize];
        match rng.below(10) {
            0..=3 => {
                let v = rng.bytes(300);
                db.store(key, &[&v], StoreFlag::Replace).unwrap();
                model.insert(key.clone(), v);
            }
            4 => {
                let v = rng.bytes(40);
                let r = db.store(key, &[&v], StoreFlag::Insert);
                if model.contains_key(key) {
                    assert_eq!(r, Err(TdbError::Exists));
                    assert_eq!(db.error(), TdbError::Exists.code());
                } else {
                    r.unwrap();
                    model.insert(key.clone(), v);
                }
            }
            5 => {
                let v = rng.bytes(40);
                let r = db.store(
                    key,
                    &[&v[..v.len() / 2], &v[v.len() / 2..]],
                    StoreFlag::Modify,
                );
                if model.contains_key(key) {
                    r.unwrap();
                    model.insert(key.clone(), v);
                } else {
                    assert_eq!(r, Err(TdbError::NoExist));
                }
            }
            6 => {
                let v = rng.bytes(20);
                db.append(key, &v).unwrap();
                model.entry(key.clone()).or_default().extend_from_slice(&v);
            }
            7 => {
                let r = db.delete(key);
                assert_eq!(r.is_ok(), model.remove(key).is_some());
            }
            _ => {
                let got = db.fetch(key);
                match model.get(key) {
                    Some(v) => assert_eq!(&got.unwrap(), v),
                    None => assert_eq!(got, Err(TdbError::NoExist)),
                }
                assert_eq!(db.exists(key), model.contains_key(key));
            }
        }
        if step % 500 == 499 {
            db.check(None).unwrap();
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert_eq!(contents(&mut db), want);
        }
    }
    db.close().unwrap();
    // Everything survives a reopen.
    let mut db = open(&path, tdb_flags & !flags::CLEAR_IF_FIRST, 0);
    let want: Vec<_> = model.into_iter().collect();
    assert_eq!(contents(&mut db), want);
    db.check(None).unwrap();
    db.close().unwrap();
}

#[test]
fn model_default() {
    model_run(0, 0, 1, 4000);
}

#[test]
fn model_small_hash_nommap() {
    model_run(flags::NOMMAP, 7, 2, 3000);
}

#[test]
fn model_jenkins_volatile_dead_records() {
    model_run(flags::INCOMPATIBLE_HASH | flags::VOLATILE, 31, 3, 3000);
}

#[test]
fn model_byte_swapped_file() {
    model_run(flags::CONVERT, 13, 4, 3000);
}

#[test]
fn model_mutex_locking() {
    assert!(tdb_engine::runtime_check_for_robust_mutexes());
    model_run(flags::MUTEX_LOCKING | flags::CLEAR_IF_FIRST, 0, 5, 3000);
}

#[test]
fn model_seqnum_nosync() {
    model_run(flags::SEQNUM | flags::NOSYNC, 101, 6, 2000);
}

#[test]
fn internal_database_works_in_memory() {
    let mut db = Tdb::open(
        None,
        tdb_engine::OpenOptions {
            tdb_flags: flags::INTERNAL,
            open_flags: libc::O_RDWR | libc::O_CREAT,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(db.fd(), -1);
    for i in 0..1000u32 {
        db.store(&i.to_le_bytes(), &[&[7u8; 50]], StoreFlag::Insert)
            .unwrap();
    }
    assert_eq!(contents(&mut db).len(), 1000);
    assert!(
        db.transaction_start().is_err(),
        "TDB_INTERNAL refuses transactions"
    );
}

#[test]
fn transactions_commit_cancel_and_nest() {
    let dir = TempDir::new("txn");
    let path = dir.file("t.tdb");
    let mut db = open(&path, flags::NOSYNC, 0);
    db.store(b"a", &[b"1"], StoreFlag::Replace).unwrap();

    db.transaction_start().unwrap();
    assert!(db.transaction_active());
    db.store(b"a", &[b"2"], StoreFlag::Replace).unwrap();
    db.store(b"b", &[b"x".repeat(10000).as_slice()], StoreFlag::Replace)
        .unwrap();
    assert_eq!(
        db.fetch(b"a").unwrap(),
        b"2",
        "reads see the transaction's writes"
    );
    db.transaction_cancel().unwrap();
    assert!(!db.transaction_active());
    assert_eq!(db.fetch(b"a").unwrap(), b"1");
    assert_eq!(db.fetch(b"b"), Err(TdbError::NoExist));

    db.transaction_start().unwrap();
    db.transaction_start().unwrap(); // nested (ALLOW_NESTING is the default)
    db.store(b"c", &[b"3"], StoreFlag::Replace).unwrap();
    db.transaction_commit().unwrap(); // inner: nothing written yet
    assert!(db.transaction_active());
    db.transaction_prepare_commit().unwrap();
    db.transaction_commit().unwrap();
    assert_eq!(db.fetch(b"c").unwrap(), b"3");
    db.check(None).unwrap();
    db.close().unwrap();

    let mut db = open(&path, flags::DISALLOW_NESTING, 0);
    db.transaction_start().unwrap();
    assert_eq!(db.transaction_start(), Err(TdbError::Nesting));
    db.transaction_cancel().unwrap();
    assert_eq!(db.fetch(b"c").unwrap(), b"3");
}

#[test]
fn traverse_can_delete_and_stop_early() {
    let dir = TempDir::new("trav");
    let mut db = open(&dir.file("t.tdb"), 0, 17);
    for i in 0..300u32 {
        db.store(
            format!("k{}", i).as_bytes(),
            &[&i.to_le_bytes()],
            StoreFlag::Insert,
        )
        .unwrap();
    }
    let mut deleted = 0;
    let mut del_odd = |t: &mut Tdb, k: &[u8], d: &[u8]| {
        if u32::from_le_bytes(d.try_into().unwrap()) % 2 == 1 {
            t.delete(k).unwrap();
            deleted += 1;
        }
        false
    };
    assert_eq!(db.traverse(Some(&mut del_odd)).unwrap(), 300);
    assert_eq!(deleted, 150);
    assert_eq!(db.traverse(None).unwrap(), 150);
    let mut seen = 0;
    let mut stop = |_: &mut Tdb, _: &[u8], _: &[u8]| {
        seen += 1;
        seen == 10
    };
    assert_eq!(db.traverse_read(Some(&mut stop)).unwrap(), 10);
    db.check(None).unwrap();

    // firstkey/nextkey visit every key exactly once.
    let mut keys = Vec::new();
    let mut k = db.firstkey().unwrap();
    loop {
        keys.push(k.clone());
        match db.nextkey(&k) {
            Ok(n) => k = n,
            Err(TdbError::NoExist) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(db.error(), 0, "end of a walk is not an error");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 150);

    // Traversal of one chain sees only that chain's records and cannot write.
    let mut in_chain = 0;
    let mut visit = |t: &mut Tdb, k: &[u8], _: &[u8]| {
        assert_eq!(
            t.store(k, &[b"no"], StoreFlag::Replace),
            Err(TdbError::Rdonly)
        );
        in_chain += 1;
        false
    };
    let n = db.traverse_key_chain(b"k0", &mut visit).unwrap();
    assert_eq!(n, in_chain);
    assert!(n >= 1);
}

#[test]
fn wipe_repack_seqnum_and_freelist() {
    let dir = TempDir::new("wipe");
    let mut db = open(&dir.file("w.tdb"), flags::SEQNUM | flags::NOSYNC, 0);
    let s0 = db.get_seqnum();
    for i in 0..500u32 {
        db.store(&i.to_be_bytes(), &[&[1u8; 100]], StoreFlag::Replace)
            .unwrap();
    }
    assert_eq!(db.get_seqnum(), s0 + 500);
    for i in (0..500u32).step_by(2) {
        db.delete(&i.to_be_bytes()).unwrap();
    }
    assert!(db.freelist_size().unwrap() >= 1);
    assert_eq!(db.validate_freelist().unwrap(), db.freelist_size().unwrap());
    db.repack().unwrap();
    assert_eq!(contents(&mut db).len(), 250);
    db.check(None).unwrap();
    assert!(db.summary().unwrap().contains("Number of records: 250\n"));
    db.wipe_all().unwrap();
    assert_eq!(contents(&mut db).len(), 0);
    db.check(None).unwrap();
    assert_eq!(db.freelist_size().unwrap(), 1);
}

#[test]
fn check_callback_can_veto_and_rescue_finds_records() {
    let dir = TempDir::new("rescue");
    let path = dir.file("r.tdb");
    let mut db = open(&path, 0, 0);
    for i in 0..50u32 {
        db.store(
            format!("r{}", i).as_bytes(),
            &[b"value"],
            StoreFlag::Replace,
        )
        .unwrap();
    }
    let mut veto = |k: &[u8], _: &[u8]| if k == b"r7" { -1 } else { 0 };
    assert!(db.check(Some(&mut veto)).is_err());
    let mut other = |_: &[u8], _: &[u8]| 1; // only -1 vetoes
    db.check(Some(&mut other)).unwrap();
    db.close().unwrap();

    // Break every hash chain head: the records are unreachable, rescue still finds them.
    let bytes = std::fs::read(&path).unwrap();
    let mut broken = bytes.clone();
    for b in &mut broken[172..172 + 131 * 4] {
        *b = 0;
    }
    std::fs::write(&path, &broken).unwrap();
    let mut db = open(&path, 0, 0);
    assert!(db.check(None).is_err());
    let mut found = Vec::new();
    db.rescue(&mut |k: &[u8], d: &[u8]| found.push((k.to_vec(), d.to_vec())))
        .unwrap();
    assert_eq!(found.len(), 50);
    assert!(found.iter().all(|(_, d)| d == b"value"));
}

#[test]
fn bad_files_fail_to_open_with_errno() {
    let dir = TempDir::new("bad");
    let p = dir.file("garbage.tdb");
    std::fs::write(&p, vec![0x5au8; 4096]).unwrap();
    let e = Tdb::open(
        Some(&cpath(&p)),
        tdb_engine::OpenOptions {
            open_flags: libc::O_RDWR,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.errno, libc::EIO);
    let missing = dir.file("missing.tdb");
    let e = Tdb::open(
        Some(&cpath(&missing)),
        tdb_engine::OpenOptions {
            open_flags: libc::O_RDWR,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.errno, libc::ENOENT);
    let e = Tdb::open(
        Some(&cpath(&p)),
        tdb_engine::OpenOptions {
            open_flags: libc::O_WRONLY,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.errno, libc::EINVAL);
    // A second open of the same file in one process is refused (it would drop locks).
    let good = dir.file("good.tdb");
    let _db = open(&good, 0, 0);
    let e = Tdb::open(
        Some(&cpath(&good)),
        tdb_engine::OpenOptions {
            open_flags: libc::O_RDWR,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(e.errno, libc::EBUSY);
    // A truncated database fails reads with an error, not a crash.
    let t = dir.file("trunc.tdb");
    {
        let mut db = open(&t, 0, 0);
        for i in 0..100u32 {
            db.store(&i.to_le_bytes(), &[&[9u8; 64]], StoreFlag::Replace)
                .unwrap();
        }
    }
    let len = std::fs::metadata(&t).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&t)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let mut db = open(&t, 0, 0);
    assert!(db.check(None).is_err());
    let mut n = 0;
    let r = db.traverse_read(Some(&mut |_: &mut Tdb, _: &[u8], _: &[u8]| {
        n += 1;
        false
    }));
    assert!(r.is_err() || n < 100);
}

#[test]
fn chain_locks_exclude_other_handles() {
    // fcntl locks are per process, so take the lock in a child process.
    let dir = TempDir::new("locks");
    let path = dir.file("l.tdb");
    let mut db = open(&path, 0, 0);
    db.chainlock(b"key").unwrap();
    db.chainlock(b"key").unwrap(); // nests
    db.chainunlock(b"key").unwrap();
    db.chainunlock(b"key").unwrap();
    assert!(
        db.chainunlock(b"key").is_err(),
        "unlocking an unheld lock fails"
    );
    db.lockall_read().unwrap();
    db.chainlock_read(b"x").unwrap();
    assert!(
        db.chainlock(b"x").is_err(),
        "a read allrecord lock does not cover a write"
    );
    db.chainunlock_read(b"x").unwrap();
    db.unlockall_read().unwrap();
    db.lockall().unwrap();
    db.unlockall().unwrap();
    assert!(db.unlockall().is_err());
}
