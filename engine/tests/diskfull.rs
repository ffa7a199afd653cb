//! Disk full (issue 5): growth and commits that cannot get space fail cleanly.
//!
//! The database lives on a small tmpfs mounted for the test (needs root; the test
//! unmounts it). When mounting is not permitted, the same scenarios run with
//! RLIMIT_FSIZE instead (writes past the limit fail with EFBIG; SIGXFSZ ignored),
//! which is why this binary holds a single test: the limit is per process.
//! Each scenario: fill the disk, make a call that needs to grow the file, and check
//! that it returns an error, that the database content is unchanged and passes
//! tdb_check (through the same handle and after a reopen), then free the space and
//! check that the same handle works again.

mod common;

use common::*;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::path::{Path, PathBuf};
use tdb_engine::{flags, StoreFlag, Tdb};

enum Space {
    Tmpfs {
        mnt: PathBuf,
        filler: PathBuf,
    },
    /// The RLIMIT_FSIZE (soft, hard) to restore.
    Rlimit {
        old: (u64, u64),
    },
}

impl Space {
    /// Uses up all free space (tmpfs) or caps file sizes at the database's size.
    fn fill(&mut self, db_path: &Path) {
        match self {
            Space::Tmpfs { filler, .. } => {
                use std::io::Write;
                let mut f = std::fs::File::create(&*filler).unwrap();
                let buf = vec![0x55u8; 4096];
                loop {
                    match f.write(&buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            assert_eq!(
                                e.raw_os_error(),
                                Some(libc::ENOSPC),
                                "filling the tmpfs: {}",
                                e
                            );
                            break;
                        }
                    }
                }
                // Smaller writes to take the last partial page too.
                let _ = f.write(&buf[..1024]);
                let _ = f.write(&buf[..64]);
            }
            Space::Rlimit { .. } => {
                let size = std::fs::metadata(db_path).unwrap().len();
                setrlimit(Resource::RLIMIT_FSIZE, size, libc::RLIM_INFINITY).unwrap();
            }
        }
    }

    fn release(&mut self) {
        match self {
            Space::Tmpfs { filler, .. } => {
                let _ = std::fs::remove_file(&*filler);
            }
            Space::Rlimit { old } => {
                setrlimit(Resource::RLIMIT_FSIZE, old.0, old.1).unwrap();
            }
        }
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        self.release();
        if let Space::Tmpfs { mnt, .. } = self {
            let _ = umount2(&*mnt, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&*mnt);
        }
    }
}

/// A tmpfs of `kib` KiB, or the RLIMIT_FSIZE fallback.
fn make_space(base: &Path, kib: u32) -> (Space, PathBuf) {
    let mnt = base.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let opts = format!("size={}k,mode=0700", kib);
    let mounted = if std::env::var_os("TDB_DISKFULL_RLIMIT").is_some() {
        Err(nix::errno::Errno::EPERM)
    } else {
        mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
    };
    if mounted.is_ok() {
        let filler = mnt.join("filler");
        return (
            Space::Tmpfs {
                mnt: mnt.clone(),
                filler,
            },
            mnt,
        );
    }
    eprintln!(
        "diskfull: mount -t tmpfs not permitted ({}), using RLIMIT_FSIZE",
        mounted.unwrap_err().desc()
    );
    let _ = std::fs::remove_dir(&mnt);
    // SAFETY: ignoring SIGXFSZ so that writes past the limit fail with EFBIG.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let old = getrlimit(Resource::RLIMIT_FSIZE).unwrap();
    (Space::Rlimit { old }, base.to_path_buf())
}

fn value(i: u32, gen: u32, len: usize) -> Vec<u8> {
    let mut v = format!("{}:{}:", i, gen).into_bytes();
    v.resize(len, b'a' + (i % 26) as u8);
    v
}

fn populate(db: &mut Tdb, n: u32) {
    for i in 0..n {
        db.store(
            &i.to_le_bytes(),
            &[&value(i, 0, 50 + (i as usize * 7) % 200)],
            StoreFlag::Replace,
        )
        .unwrap();
    }
}

/// The content is `want` and tdb_check passes, through `db` and through a reopen.
fn assert_intact(
    db: &mut Tdb,
    path: &Path,
    tdb_flags: u32,
    want: &[(Vec<u8>, Vec<u8>)],
    what: &str,
) {
    db.check(None)
        .unwrap_or_else(|e| panic!("{}: tdb_check after the failure: {}", what, e));
    assert!(
        contents(db) == want,
        "{}: content changed by a failed call",
        what
    );
    // A second open of the same file in this process is refused (fcntl locks are
    // per process): check a copy made outside the full file system.
    let copy_dir = TempDir::new("diskfull-copy");
    let copy = copy_dir.file("copy.tdb");
    std::fs::write(&copy, std::fs::read(path).unwrap()).unwrap();
    let mut c = Tdb::open(
        Some(&cpath(&copy)),
        tdb_engine::OpenOptions {
            tdb_flags,
            open_flags: libc::O_RDWR,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: reopen: {}", what, e));
    c.check(None)
        .unwrap_or_else(|e| panic!("{}: tdb_check after reopen: {}", what, e));
    assert!(
        contents(&mut c) == want,
        "{}: content changed (seen after reopen)",
        what
    );
    c.close().unwrap();
}

fn scenario(base: &Path, kib: u32, tdb_flags: u32, name: &str) {
    let (mut space, dir) = make_space(base, kib);
    let path = dir.join(format!("{}.tdb", name));
    let mut db = open(&path, tdb_flags, 13);
    populate(&mut db, 60);
    let want = contents(&mut db);
    db.check(None).unwrap();

    space.fill(&path);
    // 1. A plain store of a new key that needs the file to grow.
    let big = vec![b'B'; 200_000];
    assert!(
        db.store(b"big", &[&big], StoreFlag::Insert).is_err(),
        "{}: store into a full disk succeeded",
        name
    );
    assert_intact(&mut db, &path, tdb_flags, &want, &format!("{} store", name));
    // 2. An append (a replacing store) to an existing key that needs growth: it
    //    fails, and, as in Samba's tdb (checked against Debian's libtdb 1.4.8), the
    //    old record is gone: _tdb_store deletes it before allocating the new one.
    //    Only a transaction keeps the old value when the space runs out.
    let k5 = 5u32.to_le_bytes();
    assert!(
        db.append(&k5, &big).is_err(),
        "{}: append into a full disk succeeded",
        name
    );
    let want_minus: Vec<_> = want
        .iter()
        .filter(|(k, _)| k[..] != k5[..])
        .cloned()
        .collect();
    assert_intact(
        &mut db,
        &path,
        tdb_flags,
        &want_minus,
        &format!("{} append", name),
    );
    let old5 = want
        .iter()
        .find(|(k, _)| k[..] == k5[..])
        .unwrap()
        .1
        .clone();
    db.store(&k5, &[&old5], StoreFlag::Insert).unwrap();
    assert_intact(
        &mut db,
        &path,
        tdb_flags,
        &want,
        &format!("{} append undone", name),
    );
    // 3. A transaction whose commit needs growth (new records, bigger values).
    db.transaction_start().unwrap();
    for i in 0..60u32 {
        db.store(&i.to_le_bytes(), &[&value(i, 1, 3000)], StoreFlag::Replace)
            .unwrap();
    }
    db.store(b"big", &[&big], StoreFlag::Insert).unwrap();
    assert!(
        db.transaction_commit().is_err(),
        "{}: commit into a full disk succeeded",
        name
    );
    assert!(!db.transaction_active());
    assert_intact(
        &mut db,
        &path,
        tdb_flags,
        &want,
        &format!("{} commit", name),
    );
    // 4. A transaction that rewrites records in place: the data fits, but the
    //    recovery area (old copies of the pages) needs room.
    db.transaction_start().unwrap();
    for i in 0..60u32 {
        let old = db.fetch(&i.to_le_bytes()).unwrap();
        let mut new = old.clone();
        new[0] = b'X';
        db.store(&i.to_le_bytes(), &[&new], StoreFlag::Replace)
            .unwrap();
    }
    let r = db.transaction_commit();
    eprintln!(
        "diskfull {}: in-place commit with no room for the recovery area: {:?}",
        name, r
    );
    match r {
        Err(_) => assert_intact(
            &mut db,
            &path,
            tdb_flags,
            &want,
            &format!("{} in-place commit", name),
        ),
        Ok(()) => {
            // There was room after all: then it must be whole. Undo it for the rest.
            db.check(None).unwrap();
            for i in 0..60u32 {
                assert_eq!(db.fetch(&i.to_le_bytes()).unwrap()[0], b'X');
            }
            space.release();
            for (k, v) in &want {
                db.store(k, &[v], StoreFlag::Replace).unwrap();
            }
            space.fill(&path);
        }
    }
    // 5. Repack (a transaction through an in-memory copy).
    let r = db.repack();
    eprintln!("diskfull {}: repack on a full disk: {:?}", name, r);
    assert_intact(
        &mut db,
        &path,
        tdb_flags,
        &want,
        &format!("{} repack", name),
    );

    // Space is back: the same handle works.
    space.release();
    db.store(b"big", &[&big], StoreFlag::Replace).unwrap();
    db.transaction_start().unwrap();
    for i in 0..60u32 {
        db.store(&i.to_le_bytes(), &[&value(i, 2, 3000)], StoreFlag::Replace)
            .unwrap();
    }
    db.transaction_commit().unwrap();
    db.check(None).unwrap();
    assert_eq!(db.fetch(b"big").unwrap(), big);
    for i in 0..60u32 {
        assert_eq!(db.fetch(&i.to_le_bytes()).unwrap(), value(i, 2, 3000));
    }
    db.close().unwrap();
    let mut db = open(&path, tdb_flags & !flags::CLEAR_IF_FIRST, 0);
    db.check(None).unwrap();
    assert_eq!(contents(&mut db).len(), 61);
    db.close().unwrap();
    drop(space);
}

#[test]
fn disk_full_growth_and_commit_fail_cleanly() {
    let base = TempDir::new("diskfull");
    // 8 MiB: room for the database and, once the filler is gone, for its growth.
    scenario(&base.0, 8192, 0, "mmap");
    scenario(&base.0, 8192, flags::NOMMAP, "nommap");
    scenario(&base.0, 8192, flags::NOSYNC, "nosync");
    scenario(
        &base.0,
        8192,
        flags::INCOMPATIBLE_HASH | flags::SEQNUM,
        "jenkins-seqnum",
    );
}
