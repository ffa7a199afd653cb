//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

pub mod corpus;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use tdb_engine::{OpenOptions, Tdb};

/// A fresh temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir().join(format!(
            "tdb-rs-{}-{}-{}",
            tag,
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&base).unwrap();
        TempDir(base)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// Prints the engine's log messages to stderr (when TDB_TEST_LOG is set).
pub struct StderrLogger;

impl tdb_engine::Logger for StderrLogger {
    fn log(&self, tdb: &Tdb, level: tdb_engine::DebugLevel, message: &str) {
        eprint!("tdb({:?}) {:?}: {}", tdb.name(), level, message);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn test_logger() -> Option<std::sync::Arc<dyn tdb_engine::Logger>> {
    std::env::var_os("TDB_TEST_LOG")
        .map(|_| std::sync::Arc::new(StderrLogger) as std::sync::Arc<dyn tdb_engine::Logger>)
}

/// Opens `p` read-write, creating it, with `tdb_flags` and `hash_size`.
pub fn open(p: &Path, tdb_flags: u32, hash_size: i32) -> Box<Tdb> {
    Tdb::open(
        Some(&cpath(p)),
        OpenOptions {
            hash_size,
            tdb_flags,
            open_flags: libc::O_RDWR | libc::O_CREAT,
            mode: 0o600,
            logger: test_logger(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {}: {}", p.display(), e))
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Every record of the database, sorted.
pub fn contents(tdb: &mut Tdb) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v = Vec::new();
    let mut f = |_: &mut Tdb, k: &[u8], d: &[u8]| {
        v.push((k.to_vec(), d.to_vec()));
        false
    };
    tdb.traverse_read(Some(&mut f)).expect("traverse");
    v.sort();
    v
}
