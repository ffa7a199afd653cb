//! Space no record accounts for (issue 11): dead space at the end of the file,
//! as a crash while a commit grew the file leaves it (and Samba's recovery
//! does), and a recovery area nothing points at. A read-write open makes them
//! free records, so check passes without reporting dead space, before and after
//! a store that grows the file; a read-only open leaves the file as it is.
//! (The kill-point matrix in compat-tests/killpoints.sh makes the same states
//! by killing real commits; this test builds them byte by byte.)

mod common;

use common::*;
use std::ffi::CString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tdb_engine::format::{ByteOrder, Record, RECOVERY_HEAD_OFS};
use tdb_engine::{OpenOptions, StoreFlag, Tdb};

/// Keeps every log message, to look for "Dead space".
#[derive(Default)]
struct Captured(Mutex<Vec<String>>);

impl tdb_engine::Logger for Captured {
    fn log(&self, _tdb: &Tdb, _level: tdb_engine::DebugLevel, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Captured {
    fn saw(&self, what: &str) -> bool {
        self.0.lock().unwrap().iter().any(|m| m.contains(what))
    }
}

fn open_logged(p: &Path, open_flags: i32, log: &Arc<Captured>) -> Box<Tdb> {
    Tdb::open(
        Some(&CString::new(p.to_str().unwrap()).unwrap()),
        OpenOptions {
            open_flags,
            mode: 0o600,
            logger: Some(log.clone() as Arc<dyn tdb_engine::Logger>),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {}", p.display(), e))
}

/// A database of 50 records; returns its size.
fn filled(path: &Path) -> u64 {
    let mut db = open(path, 0, 31);
    for i in 0..50u32 {
        db.store(
            format!("key-{i}").as_bytes(),
            &[&[b'v'; 40]],
            StoreFlag::Insert,
        )
        .unwrap();
    }
    db.close().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Opens read-write: check must pass without dead space, every record must read
/// back, and so after a store that grows the file.
fn reopened_clean(path: &Path) {
    let log = Arc::new(Captured::default());
    let mut db = open_logged(path, libc::O_RDWR, &log);
    db.check(None).expect("check after reopen");
    assert!(!log.saw("Dead space"), "dead space left: {:?}", log.0);
    let size = db.map_size();
    db.store(b"growth", &[&vec![b'g'; 3 * size]], StoreFlag::Replace)
        .unwrap();
    assert!(db.map_size() > size, "the store did not grow the file");
    db.check(None).expect("check after growth");
    assert!(
        !log.saw("Dead space"),
        "dead space after growth: {:?}",
        log.0
    );
    for i in 0..50u32 {
        assert_eq!(
            db.fetch(format!("key-{i}").as_bytes()).unwrap(),
            vec![b'v'; 40]
        );
    }
    db.close().unwrap();
}

#[test]
fn zero_tail_becomes_free_space() {
    let dir = TempDir::new("unaccounted-zero");
    let path = dir.file("z.tdb");
    filled(&path);
    append(&path, &[0u8; 8192]);
    reopened_clean(&path);
}

#[test]
fn padding_tail_becomes_free_space() {
    let dir = TempDir::new("unaccounted-pad");
    let path = dir.file("p.tdb");
    filled(&path);
    append(&path, &[0x42u8; 4096]);
    reopened_clean(&path);
}

#[test]
fn orphaned_recovery_area_and_header_into_dead_space() {
    let dir = TempDir::new("unaccounted-orphan");
    let path = dir.file("o.tdb");
    let size = filled(&path) as u32;
    // An area nothing points at, 4 KiB, then 4 KiB of zeros with the header's
    // recovery pointer aimed into them (an area whose header was never written).
    let area = Record {
        rec_len: 4096 - 24,
        key_len: size,
        data_len: 8,
        ..Record::default()
    };
    let mut bytes = area.encode(ByteOrder::Native).to_vec();
    bytes.resize(4096, 0);
    bytes[24..28].copy_from_slice(&[1, 2, 3, 4]);
    append(&path, &bytes);
    append(&path, &[0u8; 4096]);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&(size + 4096).to_ne_bytes(), RECOVERY_HEAD_OFS as u64)
            .unwrap();
    }
    reopened_clean(&path);
}

#[test]
fn read_only_open_changes_nothing() {
    let dir = TempDir::new("unaccounted-ro");
    let path = dir.file("r.tdb");
    filled(&path);
    append(&path, &[0u8; 8192]);
    let before = std::fs::read(&path).unwrap();
    let log = Arc::new(Captured::default());
    let mut db = open_logged(&path, libc::O_RDONLY, &log);
    db.check(None).expect("check passes with dead space");
    assert!(log.saw("Dead space"), "read-only check should still see it");
    db.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

fn write_at(path: &Path, off: u32, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off as u64).unwrap();
}

fn read_u32_at(path: &Path, off: u32) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_ne_bytes(b[off as usize..off as usize + 4].try_into().unwrap())
}

/// What Samba's first commit, killed after it pointed the header at its new
/// recovery area and before the magic (the torture run with seed 1795989183,
/// mixed libraries), leaves once Samba's library has stored behind it: zeros
/// from the hash table up to the area, the area (pointed at, magic cleared),
/// then the 50 records of `filled`. No list leads into the zeros; a record ends
/// at the end of the file. Returns (area, end of the area).
fn zero_gap_before_area(path: &Path) -> (u32, u32) {
    {
        let mut db = open(path, 0, 31);
        db.transaction_start().unwrap();
        db.store(b"first", &[&[b'f'; 3000]], StoreFlag::Insert)
            .unwrap();
        db.transaction_commit().unwrap();
        db.close().unwrap();
    }
    let start = tdb_engine::format::data_start(31);
    let area = read_u32_at(path, RECOVERY_HEAD_OFS);
    let area_len = read_u32_at(path, area + 4) + 24;
    assert!(
        area > start,
        "the first commit puts its area behind its data"
    );
    // Empty freelist and chains; while the 50 stores run, the gap is a dead
    // record nobody lists, so that our library sees nothing to repair and grows
    // the file behind the area, as Samba's does.
    write_at(
        path,
        tdb_engine::format::FREELIST_TOP,
        &vec![0u8; (start - 168) as usize],
    );
    write_at(path, start, &vec![0u8; (area - start) as usize]);
    let dead = Record {
        rec_len: area - start - 24,
        magic: tdb_engine::format::DEAD_MAGIC,
        ..Record::default()
    };
    write_at(path, start, &dead.encode(ByteOrder::Native));
    write_at(path, area - 4, &(area - start).to_ne_bytes());
    assert!(
        filled(path) as u32 > area + area_len,
        "the stores grew the file behind the area"
    );
    write_at(path, start, &vec![0u8; (area - start) as usize]);
    (area, area + area_len)
}

#[test]
fn zero_gap_before_recovery_area_with_records_behind() {
    let dir = TempDir::new("unaccounted-gap");
    let path = dir.file("g.tdb");
    zero_gap_before_area(&path);
    // Samba's check (and ours) counts dead space from the gap to the end.
    {
        let log = Arc::new(Captured::default());
        let mut db = open_logged(&path, libc::O_RDONLY, &log);
        assert!(
            db.check(None).is_err(),
            "the gap hides the records behind it"
        );
        assert!(log.saw("Dead space"));
        db.close().unwrap();
    }
    reopened_clean(&path);
}

#[test]
fn zero_gap_before_recovery_area_and_zero_tail() {
    let dir = TempDir::new("unaccounted-gap-tail");
    let path = dir.file("t.tdb");
    zero_gap_before_area(&path);
    append(&path, &[0u8; 8192]);
    reopened_clean(&path);
}

/// Dead space with records behind it and no area: it ends at the first record
/// a list leads to, never made one free record over the live ones.
#[test]
fn zero_gap_with_records_behind_is_never_freed() {
    let dir = TempDir::new("unaccounted-gap-kept");
    let path = dir.file("k.tdb");
    let (_, area_end) = zero_gap_before_area(&path);
    let start = tdb_engine::format::data_start(31);
    write_at(path.as_path(), RECOVERY_HEAD_OFS, &0u32.to_ne_bytes());
    write_at(&path, start, &vec![0u8; (area_end - start) as usize]);
    append(&path, &[0u8; 8192]);
    let mut db = open(&path, 0, 0);
    // More than the free space behind the records: stores that were handed a
    // free record over the whole file would land on them.
    for i in 0..1000u32 {
        db.store(
            format!("new-{i}").as_bytes(),
            &[&[b'n'; 400]],
            StoreFlag::Insert,
        )
        .unwrap();
    }
    for i in 0..50u32 {
        assert_eq!(
            db.fetch(format!("key-{i}").as_bytes()).unwrap(),
            vec![b'v'; 40]
        );
    }
    for i in 0..1000u32 {
        assert_eq!(
            db.fetch(format!("new-{i}").as_bytes()).unwrap(),
            vec![b'n'; 400]
        );
    }
    db.close().unwrap();
}

/// The same after Samba's recovery of that commit (killed once its magic was
/// set): the header no longer points at the area, whose header still names the
/// old end of file; the zeros and the area are freed, the records behind kept.
#[test]
fn zero_gap_and_dropped_recovery_area_with_records_behind() {
    let dir = TempDir::new("unaccounted-dropped");
    let path = dir.file("d.tdb");
    zero_gap_before_area(&path);
    write_at(&path, RECOVERY_HEAD_OFS, &0u32.to_ne_bytes());
    reopened_clean(&path);
}

/// As above, with part of the killed commit's blocks written before the area
/// (Samba's commit killed part way through writing them).
#[test]
fn commit_blocks_and_dropped_recovery_area_with_records_behind() {
    let dir = TempDir::new("unaccounted-blocks");
    let path = dir.file("b.tdb");
    let (area, _) = zero_gap_before_area(&path);
    write_at(&path, RECOVERY_HEAD_OFS, &0u32.to_ne_bytes());
    let start = tdb_engine::format::data_start(31);
    write_at(
        &path,
        start + 1000,
        &vec![0xEE; (area - start - 2000) as usize],
    );
    reopened_clean(&path);
}

/// The first commit killed before its magic, after it wrote the block that
/// holds the last bytes before its area (a tailer there), and a later commit
/// reused the area: the area the header points at still bounds the gap.
#[test]
fn zero_gap_with_a_tailer_before_recovery_area() {
    let dir = TempDir::new("unaccounted-tailer");
    let path = dir.file("a.tdb");
    let (area, _) = zero_gap_before_area(&path);
    write_at(&path, area - 4, &8212u32.to_ne_bytes());
    // A later commit reused the area: its header names a later end of file.
    write_at(&path, area + 8, &0x0010_0000u32.to_ne_bytes());
    reopened_clean(&path);
}

/// Zeros, then an old area nobody points at whose header no longer names the
/// old end of file (later commits reused it before it moved), then records: the
/// space up to the first record a list leads to is freed.
#[test]
fn zero_gap_and_reused_area_nobody_points_at() {
    let dir = TempDir::new("unaccounted-moved");
    let path = dir.file("m.tdb");
    let (area, _) = zero_gap_before_area(&path);
    write_at(&path, RECOVERY_HEAD_OFS, &0u32.to_ne_bytes());
    write_at(&path, area + 8, &0x0010_0000u32.to_ne_bytes());
    reopened_clean(&path);
}
