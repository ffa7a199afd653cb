//! Databases.  The event loop keeps the catalogue (id, name, flags, path);
//! the tdb handles live on one helper thread that does every tdb call, so a
//! slow open, lock or fsync never stalls the loop.  Finished jobs come back
//! through a crossbeam channel and wake the loop with a mio::Waker.

use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;

use crate::protocol::{DB_FLAGS_PERSISTENT, DB_FLAGS_REPLICATED};

/// The db_id of a database: Jenkins hash of its name including the NUL.
pub fn db_id(name: &str) -> u32 {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    tdb::hash::jenkins_hash(&k)
}

/// tdb flags used for a database of this kind (what DB_OPEN_FLAGS reports
/// and what clients pass to tdb_open on the same file).
pub fn tdb_flags(db_flags: u8, mutexes: bool) -> u32 {
    use tdb::flags::*;
    let mut f = if db_flags & DB_FLAGS_PERSISTENT != 0 {
        DEFAULT
    } else if db_flags & DB_FLAGS_REPLICATED != 0 {
        NOSYNC | CLEAR_IF_FIRST | INCOMPATIBLE_HASH
    } else {
        let mut f = NOSYNC | CLEAR_IF_FIRST | INCOMPATIBLE_HASH;
        if mutexes && tdb::mutex::runtime_check_for_robust_mutexes() {
            f |= MUTEX_LOCKING;
        }
        f
    };
    f |= DISALLOW_NESTING;
    f
}

#[derive(Clone, Debug)]
pub struct DbInfo {
    pub id: u32,
    pub name: String,
    pub flags: u8,
    pub path: PathBuf,
    pub tdb_flags: u32,
    /// Opened on the helper thread; until then attach replies wait.
    pub ready: bool,
    pub unhealthy: Option<String>,
}

pub enum Job {
    Open { id: u32, path: PathBuf, hash_size: u32, tdb_flags: u32, max_dead: u32 },
    Stop,
}

pub enum Done {
    Opened { id: u32, result: Result<(), String> },
}

/// Starts the helper thread; `wake` is called after each reply is queued.
pub fn spawn(wake: Arc<dyn Fn() + Send + Sync>) -> (Sender<Job>, Receiver<Done>, std::thread::JoinHandle<()>) {
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let h = std::thread::Builder::new()
        .name("ctdbd-db".into())
        .spawn(move || {
            let mut open: HashMap<u32, Box<tdb::Tdb>> = HashMap::new();
            for job in job_rx {
                match job {
                    Job::Open { id, path, hash_size, tdb_flags, max_dead } => {
                        let result = open_tdb(&path, hash_size, tdb_flags).map(|mut t| {
                            t.set_max_dead(max_dead as i32);
                            open.insert(id, t);
                        });
                        let _ = done_tx.send(Done::Opened { id, result });
                        wake();
                    }
                    Job::Stop => break,
                }
            }
            for (_, t) in open.drain() {
                let _ = t.close();
            }
        })
        .expect("spawn db thread");
    (job_tx, done_rx, h)
}

fn open_tdb(path: &std::path::Path, hash_size: u32, tdb_flags: u32) -> Result<Box<tdb::Tdb>, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "path contains NUL".to_string())?;
    let opts = tdb::OpenOptions {
        hash_size: hash_size as i32,
        tdb_flags,
        open_flags: libc::O_CREAT | libc::O_RDWR,
        mode: 0o600,
        ..Default::default()
    };
    tdb::Tdb::open(Some(&c), opts).map_err(|e| format!("Failed to open tdb '{}': {}", path.display(), std::io::Error::from_raw_os_error(e.errno)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_ids_match_samba() {
        // Values printed by Debian's ctdbd for the same names.
        assert_eq!(db_id("foo.tdb"), 0x88127240);
        assert_eq!(db_id("bar.tdb"), 0xc36f2793);
        assert_eq!(db_id("rep.tdb"), 0x64c8480e);
    }

    #[test]
    fn helper_thread_opens_and_reports() {
        let dir = std::env::temp_dir().join(format!("ctdbd-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, rx, h) = spawn(Arc::new(|| {}));
        let path = dir.join("t.tdb.0");
        tx.send(Job::Open { id: 1, path: path.clone(), hash_size: 131, tdb_flags: tdb_flags(0, false), max_dead: 5 }).unwrap();
        match rx.recv().unwrap() {
            Done::Opened { id, result } => {
                assert_eq!(id, 1);
                result.unwrap();
            }
        }
        assert!(path.exists());
        tx.send(Job::Open { id: 2, path: dir.join("no/such/dir.tdb"), hash_size: 131, tdb_flags: 0, max_dead: 5 }).unwrap();
        match rx.recv().unwrap() {
            Done::Opened { id, result } => {
                assert_eq!(id, 2);
                assert!(result.is_err());
            }
        }
        tx.send(Job::Stop).unwrap();
        h.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
