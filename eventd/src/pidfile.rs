//! The pid file, as Samba's: created if missing, held with an fcntl write
//! lock for the daemon's life (a second daemon fails to lock it), holding
//! the pid; removed at exit.

use nix::fcntl::{fcntl, FcntlArg};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A locked pid file, removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _file: std::fs::File,
}

impl PidFile {
    /// Creates and locks `path` and writes this process's pid into it.
    pub fn create(path: &Path) -> std::io::Result<PidFile> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&file, FcntlArg::F_SETLK(&lock))?;
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
