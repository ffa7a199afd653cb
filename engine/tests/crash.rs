//! A commit interrupted after the recovery area is on disk is rolled back by the
//! next opener. The "crash" is a forked child that prepares a commit, scribbles
//! over the data area as a half-finished commit would, and exits holding its locks.
//! (One test in this binary: fork is only safe without other test threads.)

mod common;

use common::*;
use tdb_engine::format::{ByteOrder, Record};
use tdb_engine::{flags, StoreFlag};

fn value(i: u32, generation: u8) -> Vec<u8> {
    vec![generation; 20 + (i as usize * 13) % 300]
}

/// `count` records, all rewritten by the interrupted commit.
fn crash_during_commit(tdb_flags: u32, count: u32) {
    let dir = TempDir::new("crash");
    let path = dir.file("c.tdb");
    {
        let mut db = open(&path, tdb_flags, 0);
        for i in 0..count {
            db.store(&i.to_le_bytes(), &[&value(i, 1)], StoreFlag::Replace)
                .unwrap();
        }
        db.close().unwrap();
    }
    // SAFETY: the child only uses this thread's state and ends with _exit.
    let fork = unsafe { nix::unistd::fork() }.expect("fork");
    if let nix::unistd::ForkResult::Child = fork {
        let code = std::panic::catch_unwind(|| {
            let mut db = open(&path, tdb_flags & !flags::CLEAR_IF_FIRST, 0);
            db.transaction_start().unwrap();
            for i in 0..count {
                db.store(&i.to_le_bytes(), &[&value(i, 2)], StoreFlag::Replace)
                    .unwrap();
            }
            db.transaction_prepare_commit().unwrap();
            // The commit's writes land as garbage, then the process dies: scribble
            // over the ranges the recovery area saved.
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let order = if tdb_flags & flags::CONVERT != 0 {
                ByteOrder::Swapped
            } else {
                ByteOrder::Native
            };
            let mut word = [0u8; 4];
            f.read_exact_at(&mut word, 44).unwrap();
            let head = order.get(&word) as u64;
            let mut hdr = [0u8; 24];
            f.read_exact_at(&mut hdr, head).unwrap();
            let rec = Record::decode(&hdr, order);
            assert_eq!(rec.magic, tdb_engine::format::RECOVERY_MAGIC);
            if count > 1000 {
                assert!(rec.data_len > 512 * 1024, "recovery data in several pieces");
            }
            let mut data = vec![0u8; rec.data_len as usize];
            f.read_exact_at(&mut data, head + 24).unwrap();
            let mut ranges = Vec::new();
            let mut p = 0;
            while p + 8 < data.len() {
                let (ofs, len) = (order.get(&data[p..p + 4]), order.get(&data[p + 4..p + 8]));
                ranges.push((ofs, len));
                p += 8 + len as usize;
            }
            assert!(!ranges.is_empty());
            // Block 0 (header and hash table) keeps its old contents here: garbage
            // there would make the file unrecognisable rather than half-committed.
            for &(ofs, len) in ranges.iter().filter(|r| r.0 != 0) {
                f.write_all_at(&vec![0xEE; len as usize], ofs as u64)
                    .unwrap();
            }
            std::mem::forget(db);
        })
        .map(|_| 0)
        .unwrap_or(1);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let nix::unistd::ForkResult::Parent { child } = fork else {
        unreachable!("the child has exited")
    };
    let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
    assert!(
        matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)),
        "child failed: {status:?}"
    );

    let mut db = open(&path, tdb_flags & !flags::CLEAR_IF_FIRST, 0);
    db.check(None).expect("recovered database checks out");
    for i in 0..count {
        assert_eq!(
            db.fetch(&i.to_le_bytes()).unwrap(),
            value(i, 1),
            "record {} rolled back",
            i
        );
    }
    db.close().unwrap();
}

#[test]
fn interrupted_commit_is_rolled_back() {
    crash_during_commit(0, 200);
    crash_during_commit(flags::CONVERT, 200);
    crash_during_commit(flags::NOMMAP | flags::INCOMPATIBLE_HASH, 200);
    // Recovery data of about 700 KB, written to the file in several pieces.
    crash_during_commit(0, 4000);
    crash_during_commit(flags::NOMMAP, 4000);
}
