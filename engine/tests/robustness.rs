//! Damaged files (issue 5): a deterministic corpus of corrupt databases on which
//! open, fetch, traverse, firstkey/nextkey, check, rescue, store and repack must
//! return an error or a partial result, never crash, hang (each case runs in a
//! forked child, killed after 10 s) or make absurd allocations, and never change the file in a
//! read-only call; tdb_rescue must return every record left intact. Also the
//! regression inputs found by fuzzing (tests/corpus/fuzz-*.bin, same operations
//! as fuzz/fuzz_targets/open_ops.rs).
//!
//! `cargo run -p tdb-engine --example write_corpus -- DIR` writes the corpus to
//! DIR (for torture/corpus-run.c, which runs it through either C library).

mod common;

use common::corpus::*;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tdb_engine::{flags, DebugLevel, Logger, OpenOptions, StoreFlag, Tdb};

// ---- the largest single allocation of each thread ----

struct Tracking;
thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}
// SAFETY: forwards to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|c| c.set(c.get().max(l.size())));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|c| c.set(c.get().max(l.size())));
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|c| c.set(c.get().max(n)));
        System.realloc(p, l, n)
    }
}
#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Held by every test of this file: `isolated` forks, which is only safe while
/// no other test thread is running (a thread inside malloc or the engine's
/// open-file registry at fork time would leave that lock held in the child).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// No single allocation for a file this small may exceed this.
const ALLOC_CAP: usize = 64 << 20;

/// Runs `f` in a forked child (a hang is killed by alarm(2), a crash stays in the
/// child, and RLIMIT_AS of 2 GiB makes huge allocations fail fast). Returns what
/// `f` returned, or why it failed: a panic, a signal, a hang, or an allocation
/// larger than ALLOC_CAP.
fn isolated(secs: u32, f: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, String> {
    use nix::sys::resource::{setrlimit, Resource};
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{alarm, fork, pipe, ForkResult};
    use std::io::{Read, Write};
    let (from_child, to_parent) = pipe().expect("pipe");
    // SAFETY: the child runs only this thread's code (the tests of this file hold
    // `serial()`, so no other test thread is inside malloc or the engine) and
    // ends with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(from_child);
            alarm::set(secs);
            let _ = setrlimit(Resource::RLIMIT_AS, 2 << 30, 2 << 30);
            LARGEST.with(|c| c.set(0));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let largest = LARGEST.with(|c| c.get());
            let msg = match r {
                Ok(_) if largest > ALLOC_CAP => [
                    &[1u8][..],
                    format!("allocated {} bytes at once", largest).as_bytes(),
                ]
                .concat(),
                Ok(v) => [&[0u8][..], &v[..]].concat(),
                Err(e) => [&[1u8][..], panic_text(e).as_bytes()].concat(),
            };
            let _ = std::fs::File::from(to_parent).write_all(&msg);
            // SAFETY: ends the child without running the test harness's exit code.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(to_parent);
            let mut buf = Vec::new();
            let _ = std::fs::File::from(from_child).read_to_end(&mut buf);
            match waitpid(child, None) {
                Ok(WaitStatus::Signaled(_, Signal::SIGALRM, _)) => {
                    return Err(format!("still running after {} s (a loop?)", secs))
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    return Err(format!("killed by signal {}", signal as i32))
                }
                _ => {}
            }
            match buf.split_first() {
                Some((0, rest)) => Ok(rest.to_vec()),
                Some((_, rest)) => Err(String::from_utf8_lossy(rest).into_owned()),
                None => Err("the child said nothing".into()),
            }
        }
    }
}

/// Key and value pairs, in traversal order.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

fn encode(recs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, d) in recs {
        v.extend_from_slice(&(k.len() as u32).to_le_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(&(d.len() as u32).to_le_bytes());
        v.extend_from_slice(d);
    }
    v
}

fn decode(mut b: &[u8]) -> Records {
    let mut v = Vec::new();
    let take = |b: &mut &[u8]| {
        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        let x = b[4..4 + n].to_vec();
        *b = &b[4 + n..];
        x
    };
    while !b.is_empty() {
        let k = take(&mut b);
        let d = take(&mut b);
        v.push((k, d));
    }
    v
}

// ---- running the operations ----

struct Quiet;
impl Logger for Quiet {
    fn log(&self, _: &Tdb, _: DebugLevel, _: &str) {}
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn opts(tdb_flags: u32, open_flags: i32) -> OpenOptions {
    OpenOptions {
        tdb_flags,
        open_flags,
        mode: 0o600,
        logger: Some(Arc::new(Quiet)),
        ..Default::default()
    }
}

/// Read-only calls: must not change a byte of the file.
fn read_ops(db: &mut Tdb, keys: &[Vec<u8>], name: &str, max_recs: usize) -> (bool, Records) {
    let check_ok = db.check(None).is_ok();
    for k in keys {
        let _ = db.fetch(k);
        let _ = db.exists(k);
        let _ = db.parse_record(k, |d| d.len());
    }
    let mut n = 0;
    let mut f = |_: &mut Tdb, _: &[u8], _: &[u8]| {
        n += 1;
        n > max_recs
    };
    let _ = db.traverse_read(Some(&mut f));
    assert!(n <= max_recs, "{}: traverse_read visited more records than the file can hold (a cycle is followed forever)", name);
    if let Ok(mut k) = db.firstkey() {
        for _ in 0..10_000 {
            match db.nextkey(&k) {
                Ok(n) => k = n,
                Err(_) => break,
            }
        }
    }
    for h in 0..HASH + 2 {
        let mut g = |_: &mut Tdb, _: &[u8], _: &[u8]| false;
        let _ = db.traverse_chain(h, &mut g);
    }
    let _ = db.freelist_size();
    let _ = db.summary();
    let mut found = Vec::new();
    let mut r = |k: &[u8], d: &[u8]| found.push((k.to_vec(), d.to_vec()));
    let _ = db.rescue(&mut r);
    (check_ok, found)
}

/// Everything, on a copy of `bytes` at `path`. Returns what rescue found.
fn run_case(
    name: &str,
    bytes: &[u8],
    path: &Path,
    keys: &[Vec<u8>],
    tdb_flags: u32,
) -> Option<Records> {
    // 1. Read-only open: nothing may change.
    std::fs::write(path, bytes).unwrap();
    let c = cpath(path);
    let max_recs = bytes.len() / 24 + 1;
    if let Ok(mut db) = Tdb::open(Some(&c), opts(tdb_flags, libc::O_RDONLY)) {
        read_ops(&mut db, keys, name, max_recs);
        let _ = db.close();
    }
    assert!(
        std::fs::read(path).unwrap() == bytes,
        "{}: a read-only open changed the file",
        name
    );
    // 2. Read-write open: open may run a pending recovery; the read calls after it
    //    must not change anything further.
    let mut db = Tdb::open(Some(&c), opts(tdb_flags, libc::O_RDWR)).ok()?;
    let before = std::fs::read(path).unwrap();
    let (check_ok, rescued) = read_ops(&mut db, keys, name, max_recs);
    let after = std::fs::read(path).unwrap();
    if before != after {
        // Allowed only as a recovery replay (the first lock runs it): then once.
        let again = after.clone();
        read_ops(&mut db, keys, name, max_recs);
        assert!(
            std::fs::read(path).unwrap() == again,
            "{}: read calls keep changing the file",
            name
        );
    }
    // 3. Writes: errors are fine; a database that checked must still check.
    let st = db.store(b"new-key", &[b"new-value"], StoreFlag::Replace);
    if check_ok && st.is_ok() {
        assert_eq!(
            db.fetch(b"new-key").ok().as_deref(),
            Some(&b"new-value"[..]),
            "{}: stored value lost",
            name
        );
        assert!(
            db.check(None).is_ok(),
            "{}: a store broke a database that checked",
            name
        );
    }
    let _ = db.append(&keys[1], b"more");
    let _ = db.delete(&keys[2]);
    if db.transaction_start().is_ok() {
        let _ = db.store(b"txn-key", &[b"txn-value"], StoreFlag::Replace);
        let _ = db.transaction_commit();
    }
    let max_recs = std::fs::metadata(path).unwrap().len() as usize / 24 + 1;
    let mut n = 0;
    let mut w = |_: &mut Tdb, _: &[u8], _: &[u8]| {
        n += 1;
        n > max_recs
    };
    let _ = db.traverse(Some(&mut w));
    assert!(
        n <= max_recs,
        "{}: traverse visited more records than the file can hold (a cycle is followed forever)",
        name
    );
    let rp = db.repack();
    if check_ok && rp.is_ok() {
        assert!(
            db.check(None).is_ok(),
            "{}: repack broke a database that checked",
            name
        );
    }
    let _ = db.check(None);
    let _ = db.close();
    Some(rescued)
}

#[test]
fn corrupt_corpus_never_crashes_hangs_or_loses_intact_records() {
    let _serial = serial();
    let (cases, model, base) = corpus();
    let recs = records(&base);
    let keys: Vec<Vec<u8>> = (0..46).map(key).collect();
    let dir = TempDir::new("corpus");
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    let total = cases.len() * 2;
    let only = std::env::var("TDB_CORPUS_ONLY").ok();
    for (ci, case) in cases.into_iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        for (fi, tdb_flags) in [0, flags::NOMMAP].into_iter().enumerate() {
            let path = dir.file(&format!("c{}-{}.tdb", ci, fi));
            let name = format!("{}{}", case.name, if fi == 1 { " (nommap)" } else { "" });
            let r = isolated(10, || {
                match run_case(&name, &case.bytes, &path, &keys, tdb_flags) {
                    Some(found) => [&[1u8][..], &encode(&found)].concat(),
                    None => vec![0u8],
                }
            });
            let rescued = match r {
                Ok(r) if r[0] == 1 => Some(decode(&r[1..])),
                Ok(_) => None,
                Err(e) => {
                    failures.push(format!("{}: {}", name, e));
                    continue;
                }
            };
            let Some(rescued) = rescued else {
                summary.push(format!("{}: open refused", name));
                continue;
            };
            if case.no_rescue {
                continue;
            }
            // Every intact live record must come back from rescue with its value.
            let mut missing = Vec::new();
            for r in recs
                .iter()
                .filter(|r| r.magic == LIVE && !case.touched.contains(&r.off))
            {
                let end = r.off + 24 + r.rec_len as usize;
                if end > case.bytes.len() || case.bytes[r.off..end] != base[r.off..end] {
                    continue;
                }
                let k = base[r.off + 24..r.off + 24 + r.key_len as usize].to_vec();
                let v = &base[r.off + 24 + r.key_len as usize
                    ..r.off + 24 + (r.key_len + r.data_len) as usize];
                if !model.contains_key(&k) {
                    continue; // a stale copy
                }
                if !rescued.iter().any(|(rk, rv)| *rk == k && rv[..] == v[..]) {
                    missing.push(String::from_utf8_lossy(&k).into_owned());
                }
            }
            if !missing.is_empty() {
                failures.push(format!(
                    "{}: rescue lost intact records {:?}",
                    name, missing
                ));
            }
            summary.push(format!(
                "{}: rescue returned {} records",
                name,
                rescued.len()
            ));
        }
    }
    eprintln!("{}", summary.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} corrupt-file runs fail:\n{}",
        failures.len(),
        total,
        failures.join("\n")
    );
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---- fuzz regressions ----

static DEAD_SPACE: AtomicBool = AtomicBool::new(false);
struct DeadSpaceLog;
impl Logger for DeadSpaceLog {
    fn log(&self, _: &Tdb, _: DebugLevel, m: &str) {
        if m.starts_with("Dead space") {
            DEAD_SPACE.store(true, Ordering::Relaxed);
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// What fuzz/fuzz_targets/open_ops.rs does with one input (keep the two in step).
fn fuzz_one(data: &[u8], path: &Path) {
    if data.is_empty() {
        return;
    }
    let o = data[0];
    std::fs::write(path, &data[1..]).unwrap();
    let mut tdb_flags = flags::NOSYNC;
    if o & 1 != 0 {
        tdb_flags |= flags::NOMMAP;
    }
    if o & 8 != 0 {
        tdb_flags |= flags::INCOMPATIBLE_HASH;
    }
    let options = OpenOptions {
        tdb_flags,
        open_flags: libc::O_RDWR,
        mode: 0o600,
        logger: Some(Arc::new(DeadSpaceLog)),
        ..Default::default()
    };
    let Ok(mut db) = Tdb::open(Some(&cpath(path)), options) else {
        return;
    };
    DEAD_SPACE.store(false, Ordering::Relaxed);
    let check_ok = db.check(None).is_ok() && !DEAD_SPACE.load(Ordering::Relaxed);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut f = |_: &mut Tdb, k: &[u8], _: &[u8]| {
        keys.push(k.to_vec());
        keys.len() > 10_000
    };
    let trav = db.traverse_read(Some(&mut f));
    for k in keys.iter().take(50) {
        let _ = db.fetch(k);
        let _ = db.exists(k);
    }
    let _ = db.fetch(b"fuzz-key");
    if let Ok(mut k) = db.firstkey() {
        for _ in 0..1000 {
            match db.nextkey(&k) {
                Ok(n) => k = n,
                Err(_) => break,
            }
        }
    }
    let mut rescued: Vec<Vec<u8>> = Vec::new();
    let mut r = |k: &[u8], _: &[u8]| rescued.push(k.to_vec());
    let rescue = db.rescue(&mut r);
    if check_ok && trav.is_ok() && rescue.is_ok() {
        for k in &keys {
            assert!(
                rescued.contains(k),
                "rescue lost key {:?} of a database that checks",
                k
            );
        }
    }
    let value = b"fuzz-value-0123456789";
    let txn = o & 2 != 0 && db.transaction_start().is_ok();
    let stored = if o & 16 != 0 {
        db.append(b"fuzz-key", value).is_ok()
    } else {
        db.store(b"fuzz-key", &[value], StoreFlag::Replace).is_ok()
    };
    let committed = if txn {
        db.transaction_commit().is_ok()
    } else {
        stored
    };
    if check_ok && stored && committed && o & 16 == 0 {
        assert_eq!(
            db.fetch(b"fuzz-key").as_deref().ok(),
            Some(&value[..]),
            "stored value not fetched back"
        );
        assert!(
            db.check(None).is_ok(),
            "a store broke a database that checked"
        );
    }
    let _ = db.delete(keys.first().map(|k| &k[..]).unwrap_or(b"x"));
    let mut n = 0;
    let mut w = |_: &mut Tdb, _: &[u8], _: &[u8]| {
        n += 1;
        n > 10_000
    };
    let _ = db.traverse(Some(&mut w));
    if o & 4 != 0 {
        let rp = db.repack();
        if check_ok && rp.is_ok() {
            assert!(
                db.check(None).is_ok(),
                "repack broke a database that checked"
            );
        }
    }
    let _ = db.check(None);
    let _ = db.close();
}

fn fuzz_inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "bin"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fuzz_regressions() {
    let _serial = serial();
    let dir = TempDir::new("fuzzreg");
    let inputs = fuzz_inputs();
    let mut failed = Vec::new();
    for (i, p) in inputs.iter().enumerate() {
        let data = std::fs::read(p).unwrap();
        let path = dir.file(&format!("f{}.tdb", i));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = isolated(10, || {
            fuzz_one(&data, &path);
            Vec::new()
        }) {
            failed.push(format!("{}: {}", name, e));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} fuzz regression inputs fail:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}
