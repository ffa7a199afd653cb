//! Locks are released however a call ends: a callback that panics inside a
//! traversal, a check, a rescue or a parse, and a summary over a corrupt file,
//! leave no fcntl lock on the file and no traversal state on the handle, so the
//! handle and other processes can lock again at once.
//!
//! The probe asks the kernel with F_OFD_GETLK through a second descriptor: an
//! open-file-description lock conflicts with every classic fcntl lock, this
//! process's included, so it sees the locks the engine holds.

mod common;

use common::*;
use nix::fcntl::{fcntl, FcntlArg};
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use tdb_engine::{flags, StoreFlag, Tdb};

/// A second descriptor on the database file for F_OFD_GETLK. It stays open until
/// the test ends: closing any descriptor of a file drops all of this process's
/// classic locks on it, which would hide the very locks the test looks for.
struct Probe(File);

impl Probe {
    fn new(path: &Path) -> Probe {
        Probe(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap(),
        )
    }

    /// The first lock (type, start, len) that a write lock on the whole file
    /// would conflict with, if any.
    fn conflicting_lock(&self) -> Option<(i16, i64, i64)> {
        let mut fl = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&self.0, FcntlArg::F_OFD_GETLK(&mut fl)).expect("F_OFD_GETLK");
        (fl.l_type != libc::F_UNLCK as libc::c_short).then_some((fl.l_type, fl.l_start, fl.l_len))
    }
}

/// A database of 50 records, and the probe on its file.
fn filled(dir: &TempDir) -> (Box<Tdb>, Probe) {
    let path = dir.file("guards.tdb");
    let mut db = open(&path, flags::NOSYNC, 17);
    for i in 0..50u32 {
        let key = format!("key-{i}");
        db.store(key.as_bytes(), &[b"value"], StoreFlag::Insert)
            .unwrap();
    }
    let probe = Probe::new(&path);
    assert_eq!(
        probe.conflicting_lock(),
        None,
        "an idle handle holds no lock"
    );
    (db, probe)
}

/// What every test asserts after the panic: no lock left on the file, and the
/// handle can take the whole-database write lock (which it refuses while a
/// traversal or any other lock is still registered) and store.
fn assert_released(db: &mut Tdb, probe: &Probe) {
    assert_eq!(probe.conflicting_lock(), None, "a lock survived the panic");
    db.lockall().expect("lockall after the panic");
    db.unlockall().unwrap();
    db.store(b"after", &[b"panic"], StoreFlag::Replace)
        .expect("store after the panic");
    assert_eq!(db.fetch(b"after").unwrap(), b"panic");
}

#[test]
fn panic_in_traverse_read_callback_releases_its_locks() {
    let dir = TempDir::new("guards-read");
    let (mut db, probe) = filled(&dir);
    let mut seen_locked = false;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut f = |_: &mut Tdb, _: &[u8], _: &[u8]| -> bool {
            // The record under the walk is read-locked while the callback runs.
            seen_locked = probe.conflicting_lock().is_some();
            panic!("callback fails");
        };
        let _ = db.traverse_read(Some(&mut f));
    }));
    assert!(r.is_err(), "the callback's panic reaches the caller");
    assert!(seen_locked, "the probe sees the traversal's record lock");
    assert_released(&mut db, &probe);
    assert_eq!(db.traverse_read(None).unwrap(), 51);
}

#[test]
fn panic_in_traverse_callback_releases_the_transaction_lock() {
    let dir = TempDir::new("guards-write");
    let (mut db, probe) = filled(&dir);
    let mut visited = 0;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut f = |t: &mut Tdb, k: &[u8], _: &[u8]| -> bool {
            // A write traversal may change the database from its callback.
            t.store(k, &[b"changed"], StoreFlag::Modify).unwrap();
            visited += 1;
            if visited == 10 {
                panic!("callback fails");
            }
            false
        };
        let _ = db.traverse(Some(&mut f));
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
    // A transaction (which takes the transaction lock a write traversal holds) works.
    db.transaction_start().expect("transaction after the panic");
    db.transaction_commit().unwrap();
}

#[test]
fn panic_in_nested_traversal_unwinds_both() {
    let dir = TempDir::new("guards-nested");
    let (mut db, probe) = filled(&dir);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut outer = |t: &mut Tdb, _: &[u8], _: &[u8]| -> bool {
            let mut inner = |_: &mut Tdb, _: &[u8], _: &[u8]| -> bool { panic!("inner fails") };
            let _ = t.traverse_read(Some(&mut inner));
            false
        };
        let _ = db.traverse_read(Some(&mut outer));
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
}

#[test]
fn panic_in_chain_traversal_releases_the_chain_lock() {
    let dir = TempDir::new("guards-chain");
    let (mut db, probe) = filled(&dir);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut f = |_: &mut Tdb, _: &[u8], _: &[u8]| -> bool { panic!("callback fails") };
        let _ = db.traverse_key_chain(b"key-1", &mut f);
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
}

#[test]
fn panic_in_parser_releases_the_chain_lock() {
    let dir = TempDir::new("guards-parse");
    let (mut db, probe) = filled(&dir);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = db.parse_record(b"key-7", |_| -> () { panic!("parser fails") });
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
}

#[test]
fn panic_in_check_or_rescue_callback_releases_the_allrecord_lock() {
    let dir = TempDir::new("guards-check");
    let (mut db, probe) = filled(&dir);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut f = |_: &[u8], _: &[u8]| -> i32 { panic!("check callback fails") };
        let _ = db.check(Some(&mut f));
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut f = |_: &[u8], _: &[u8]| panic!("rescue callback fails");
        let _ = db.rescue(&mut f);
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
}

#[test]
fn summary_of_a_looping_chain_answers_and_releases_its_lock() {
    let dir = TempDir::new("guards-summary");
    let (cases, _, _) = common::corpus::corpus();
    for name in ["chain-self-cycle", "chain-two-cycle", "chain-cycle-to-head"] {
        let case = cases.iter().find(|c| c.name == name).expect(name);
        let path = dir.file(&format!("{name}.tdb"));
        std::fs::write(&path, &case.bytes).unwrap();
        let mut db = open(&path, 0, 0);
        let probe = Probe::new(&path);
        let text = db
            .summary()
            .expect("summary of a file with a looping chain");
        // Samba reports a looping chain as SIZE_MAX long; so do we (no wrap, no panic).
        assert!(
            text.contains(&format!("/{}\n", u64::MAX)),
            "{name}: longest chain is reported as a loop:\n{text}"
        );
        assert_eq!(
            probe.conflicting_lock(),
            None,
            "{name}: summary left a lock"
        );
        db.lockall().expect("lockall after summary");
        db.unlockall().unwrap();
        db.close().unwrap();
    }
}

#[test]
fn scoped_locks_release_on_drop() {
    let dir = TempDir::new("guards-scoped");
    let (mut db, probe) = filled(&dir);
    {
        let held = db.chainlock_held(b"key-3", true).unwrap();
        assert!(probe.conflicting_lock().is_some(), "the chain is locked");
        drop(held);
    }
    assert_eq!(probe.conflicting_lock(), None);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _all = db.lockall_read_held().unwrap();
        assert!(probe.conflicting_lock().is_some(), "the database is locked");
        panic!("work under the lock fails");
    }));
    assert!(r.is_err());
    assert_released(&mut db, &probe);
    let all = db.lockall_held().unwrap();
    all.unlock().unwrap();
    assert_eq!(probe.conflicting_lock(), None);
}
