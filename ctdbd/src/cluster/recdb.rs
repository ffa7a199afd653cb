//! The recovery database: a scratch tdb (from `tdb_engine`) that pulled
//! records stream into, one record buffer at a time, keeping the newer copy
//! of each record (`merge::newer`); the push then walks it one hash chain at
//! a time into record buffers of bounded size. The database is never held
//! in memory: only the buffer being merged or sent is.

use super::merge;
use ctdb_protocol::ltdb::{LtdbHeader, RecBuffer, RecData, REC_DATA_FIXED_LEN};
use ctdb_protocol::{DbId, Pnn};
use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use tdb_engine::{flags, OpenOptions, StoreFlag, Tdb, TdbError};

/// Why the recovery database failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecdbError {
    /// The scratch file could not be created or opened.
    Open {
        /// The file.
        path: String,
        /// The errno text.
        reason: String,
    },
    /// A store, fetch or walk failed in the engine.
    Engine(String),
    /// A pulled record is shorter than its record header.
    ShortRecord,
}

impl fmt::Display for RecdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecdbError::Open { path, reason } => {
                write!(f, "cannot create recovery database {path}: {reason}")
            }
            RecdbError::Engine(e) => write!(f, "recovery database: {e}"),
            RecdbError::ShortRecord => write!(f, "pulled record shorter than its header"),
        }
    }
}

fn engine(e: TdbError) -> RecdbError {
    RecdbError::Engine(e.to_string())
}

/// One database's scratch store for a recovery.
pub struct RecoveryDb {
    tdb: Box<Tdb>,
    path: Option<PathBuf>,
    db_id: DbId,
    persistent: bool,
    leader: Pnn,
    next_chain: u32,
}

impl RecoveryDb {
    /// Creates an empty store for `db_id`: a file `recdb.<name>` in `dir`
    /// (replacing a leftover one; removed again when dropped), or an
    /// in-memory tdb when `dir` is `None`. `leader` is the node running the
    /// recovery (it decides ties in the merge and becomes dmaster).
    pub fn create(
        dir: Option<&Path>,
        name: &str,
        db_id: DbId,
        persistent: bool,
        leader: Pnn,
        hash_size: u32,
    ) -> Result<RecoveryDb, RecdbError> {
        let path = dir.map(|d| d.join(format!("recdb.{name}")));
        let mut tdb_flags = flags::NOLOCK | flags::INCOMPATIBLE_HASH | flags::DISALLOW_NESTING;
        let cname = match &path {
            Some(p) => {
                let _ = std::fs::remove_file(p);
                Some(CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| {
                    RecdbError::Open {
                        path: p.display().to_string(),
                        reason: "path contains NUL".into(),
                    }
                })?)
            }
            None => {
                tdb_flags |= flags::INTERNAL;
                None
            }
        };
        let opts = OpenOptions {
            hash_size: hash_size as i32,
            tdb_flags,
            open_flags: libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            mode: 0o600,
            ..Default::default()
        };
        let tdb = Tdb::open(cname.as_deref(), opts).map_err(|e| RecdbError::Open {
            path: path
                .as_ref()
                .map_or("(memory)".into(), |p| p.display().to_string()),
            reason: std::io::Error::from_raw_os_error(e.errno).to_string(),
        })?;
        Ok(RecoveryDb {
            tdb,
            path,
            db_id,
            persistent,
            leader,
            next_chain: 0,
        })
    }

    /// Merges one pulled record into the store; true when it was kept.
    pub fn add(&mut self, key: &[u8], data: &[u8]) -> Result<bool, RecdbError> {
        let (candidate, _) = LtdbHeader::split(data).map_err(|_| RecdbError::ShortRecord)?;
        match self.tdb.fetch(key) {
            Ok(prev) => {
                if let Ok((existing, _)) = LtdbHeader::split(&prev) {
                    if !merge::newer(&existing, &candidate, self.leader) {
                        return Ok(false);
                    }
                }
            }
            Err(TdbError::NoExist) => {}
            Err(e) => return Err(engine(e)),
        }
        self.tdb
            .store(key, &[data], StoreFlag::Replace)
            .map_err(engine)?;
        Ok(true)
    }

    /// Merges every record of a pulled buffer; returns how many it held.
    pub fn add_buffer(&mut self, buf: &RecBuffer) -> Result<u32, RecdbError> {
        for rec in &buf.records {
            self.add(&rec.key, &rec.data)?;
        }
        Ok(buf.records.len() as u32)
    }

    /// The next record buffer to push, walking whole hash chains until the
    /// buffer passes `max_bytes`; records that are not pushed
    /// (`merge::prepare_for_push`) are left out. `None` once every chain
    /// was walked. A buffer may be empty only when it is the last one.
    pub fn next_buffer(&mut self, max_bytes: usize) -> Result<Option<RecBuffer>, RecdbError> {
        let chains = self.tdb.hash_size();
        if self.next_chain >= chains {
            return Ok(None);
        }
        let mut buf = RecBuffer {
            db_id: self.db_id,
            records: Vec::new(),
        };
        let mut size = 0usize;
        let (persistent, leader) = (self.persistent, self.leader);
        while self.next_chain < chains && size <= max_bytes {
            let chain = self.next_chain;
            self.next_chain += 1;
            let mut visit = |_: &mut Tdb, key: &[u8], data: &[u8]| {
                if let Some(d) = merge::prepare_for_push(data, persistent, leader) {
                    size += REC_DATA_FIXED_LEN + key.len() + d.len();
                    buf.records.push(RecData {
                        reqid: 0,
                        key: key.to_vec(),
                        data: d,
                    });
                }
                false
            };
            self.tdb.traverse_chain(chain, &mut visit).map_err(engine)?;
        }
        Ok(Some(buf))
    }
}

impl Drop for RecoveryDb {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctdb_protocol::Layout;

    fn rec(rsn: u64, dmaster: u32, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        LtdbHeader {
            rsn,
            dmaster: Pnn(dmaster),
            ..Default::default()
        }
        .encode(&mut v);
        v.extend_from_slice(value);
        v
    }

    fn drain(db: &mut RecoveryDb, max: usize) -> Vec<RecBuffer> {
        let mut out = Vec::new();
        while let Some(b) = db.next_buffer(max).unwrap() {
            out.push(b);
        }
        out
    }

    #[test]
    fn keeps_the_newer_copy_and_pushes_it_in_bounded_buffers() {
        let dir = std::env::temp_dir().join(format!("recdb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = RecoveryDb::create(Some(&dir), "t.tdb", DbId(7), false, Pnn(0), 131).unwrap();
        assert!(dir.join("recdb.t.tdb").exists());
        assert!(db.add(b"k", &rec(3, 1, b"old")).unwrap());
        assert!(db.add(b"k", &rec(5, 2, b"new")).unwrap());
        assert!(!db.add(b"k", &rec(4, 2, b"older")).unwrap());
        assert!(db.add(b"gone", &rec(9, 1, b"")).unwrap());
        for i in 0..200u32 {
            db.add(format!("key{i}").as_bytes(), &rec(1, 1, &[7u8; 100]))
                .unwrap();
        }
        let bufs = drain(&mut db, 2000);
        assert!(bufs.len() > 5, "{} buffers", bufs.len());
        let all: Vec<&RecData> = bufs.iter().flat_map(|b| b.records.iter()).collect();
        assert_eq!(all.len(), 201, "the empty record is not pushed");
        let k = all.iter().find(|r| r.key == b"k").unwrap();
        let (h, v) = k.header().unwrap();
        assert_eq!((h.rsn, h.dmaster, v), (5, Pnn(0), &b"new"[..]));
        for b in &bufs {
            assert_eq!(b.db_id, DbId(7));
            assert!(b.to_bytes().len() < 2000 + 4 * 200, "buffer too big");
        }
        drop(db);
        assert!(!dir.join("recdb.t.tdb").exists());
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn in_memory_store_works_the_same() {
        let mut db = RecoveryDb::create(None, "m", DbId(1), true, Pnn(2), 17).unwrap();
        db.add(b"a", &rec(1, 0, b"x")).unwrap();
        db.add(b"a", &rec(1, 1, b"y")).unwrap();
        let bufs = drain(&mut db, 1 << 20);
        let recs: Vec<_> = bufs.iter().flat_map(|b| b.records.clone()).collect();
        assert_eq!(recs.len(), 1);
        // Equal RSN and the held copy does not name the leader (2): kept.
        let (h, v) = recs[0].header().unwrap();
        assert_eq!((h.dmaster, v), (Pnn(0), &b"x"[..]));
    }
}
