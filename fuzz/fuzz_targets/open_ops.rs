//! Opens arbitrary bytes as a tdb file and runs the read and write paths on it:
//! open, fetch, exists, traverse_read, traverse (write), firstkey/nextkey, check,
//! rescue, a store, a delete and (sometimes) repack. Nothing may crash, hang
//! (libFuzzer's -timeout catches loops) or panic.
//!
//! The first input byte picks options; the rest is the file:
//!   bit 0: TDB_NOMMAP          bit 1: store inside a transaction
//!   bit 2: also run repack      bit 3: use TDB_INCOMPATIBLE_HASH at open
//!   bit 4: append instead of store
//! Invariant checked: if tdb_check passes before the store (and found no "dead
//! space", which Samba's rule extends to the end of the file so that records
//! added after it are invisible to tdb_check in both libraries), a successful
//! store is visible to fetch and tdb_check still passes afterwards, and rescue
//! reports every key the traversal found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tdb_engine::{flags, DebugLevel, Logger, OpenOptions, StoreFlag, Tdb};

static DEAD_SPACE: AtomicBool = AtomicBool::new(false);

struct Log;
impl Logger for Log {
    fn log(&self, _tdb: &Tdb, _level: DebugLevel, message: &str) {
        if message.starts_with("Dead space") {
            DEAD_SPACE.store(true, Ordering::Relaxed);
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn path() -> &'static CString {
    use std::sync::OnceLock;
    static P: OnceLock<CString> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::var("TDB_FUZZ_DIR").unwrap_or_else(|_| "/tmp".into());
        CString::new(format!("{}/tdb-fuzz-{}.tdb", dir, std::process::id())).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let opts = data[0];
    let file = &data[1..];
    let p = path();
    {
        let mut f = std::fs::File::create(p.to_str().unwrap()).unwrap();
        f.write_all(file).unwrap();
    }
    let mut tdb_flags = 0;
    if opts & 1 != 0 {
        tdb_flags |= flags::NOMMAP;
    }
    if opts & 8 != 0 {
        tdb_flags |= flags::INCOMPATIBLE_HASH;
    }
    tdb_flags |= flags::NOSYNC;
    let o = OpenOptions { hash_size: 0, tdb_flags, open_flags: libc::O_RDWR, mode: 0o600, logger: Some(Arc::new(Log)), ..Default::default() };
    let mut db: Box<Tdb> = match Tdb::open(Some(p), o) {
        Ok(db) => db,
        Err(_) => return,
    };
    DEAD_SPACE.store(false, Ordering::Relaxed);
    let check_ok = db.check(None).is_ok() && !DEAD_SPACE.load(Ordering::Relaxed);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut f = |_: &mut Tdb, k: &[u8], _d: &[u8]| {
        keys.push(k.to_vec());
        keys.len() > 10_000
    };
    let trav = db.traverse_read(Some(&mut f));
    for k in keys.iter().take(50) {
        let _ = db.fetch(k);
        let _ = db.exists(k);
    }
    let _ = db.fetch(b"fuzz-key");
    // firstkey/nextkey, bounded.
    if let Ok(mut k) = db.firstkey() {
        for _ in 0..1000 {
            match db.nextkey(&k) {
                Ok(n) => k = n,
                Err(_) => break,
            }
        }
    }
    let mut rescued: Vec<Vec<u8>> = Vec::new();
    let mut r = |k: &[u8], _d: &[u8]| rescued.push(k.to_vec());
    let rescue = db.rescue(&mut r);
    if check_ok && trav.is_ok() && rescue.is_ok() {
        for k in &keys {
            assert!(rescued.contains(k), "rescue lost key {:?} of a database that checks", k);
        }
    }
    let value = b"fuzz-value-0123456789";
    let txn = opts & 2 != 0 && db.transaction_start().is_ok();
    let stored = if opts & 16 != 0 {
        db.append(b"fuzz-key", value).is_ok()
    } else {
        db.store(b"fuzz-key", &[value], StoreFlag::Replace).is_ok()
    };
    let committed = if txn { db.transaction_commit().is_ok() } else { stored };
    if check_ok && stored && committed && opts & 16 == 0 {
        assert_eq!(db.fetch(b"fuzz-key").as_deref().ok(), Some(&value[..]), "stored value not fetched back");
        assert!(db.check(None).is_ok(), "a store broke a database that checked");
    }
    let _ = db.delete(keys.first().map(|k| &k[..]).unwrap_or(b"x"));
    let mut n = 0;
    let mut w = |_: &mut Tdb, _k: &[u8], _d: &[u8]| {
        n += 1;
        n > 10_000
    };
    let _ = db.traverse(Some(&mut w));
    if opts & 4 != 0 {
        let rp = db.repack();
        if check_ok && rp.is_ok() {
            assert!(db.check(None).is_ok(), "repack broke a database that checked");
        }
    }
    let _ = db.check(None);
    let _ = db.close();
});
