//! Running one program as Samba's event daemon does: a child in its own
//! process group, stdout and stderr into one pipe, argv[0] chosen by the
//! caller, the daemon's environment and stdin; an exec failure is reported
//! as exit status 64 + errno.  The exit status maps to a script result as
//! Samba maps it.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::stat::stat;
use nix::sys::wait::WaitStatus;
use nix::unistd::{dup2_stderr, dup2_stdout, execv, fork, pipe2, setpgid, ForkResult, Pid};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How a child ended, as Samba records it: a signal, an errno (exec or
/// start failure, timeout, or exit status 64..=254), or an exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcResult {
    /// The signal that killed it, or 0.
    pub sig: i32,
    /// An errno, or 0.
    pub err: i32,
    /// The exit status, or 0.
    pub status: i32,
}

impl ProcResult {
    /// A result that is only an errno (the child never ran, or timed out).
    pub fn errno(err: Errno) -> Self {
        ProcResult {
            err: err as i32,
            ..ProcResult::default()
        }
    }

    /// The result of a reaped child; exit statuses 64 to 254 are errnos
    /// from the child's failed exec (Samba reads every such status so).
    pub fn from_wait(status: WaitStatus) -> Option<Self> {
        match status {
            WaitStatus::Exited(_, code) if (64..255).contains(&code) => Some(ProcResult {
                err: code - 64,
                ..ProcResult::default()
            }),
            WaitStatus::Exited(_, code) => Some(ProcResult {
                status: code,
                ..ProcResult::default()
            }),
            WaitStatus::Signaled(_, sig, _) => Some(ProcResult {
                sig: sig as i32,
                ..ProcResult::default()
            }),
            _ => None,
        }
    }

    /// The script result Samba reports: -EINTR for a signal, -ENOEXEC for
    /// EACCES (not executable), -errno for other errnos, else the status.
    pub fn script_result(&self) -> i32 {
        if self.sig > 0 {
            -libc::EINTR
        } else if self.err > 0 {
            if self.err == libc::EACCES {
                -libc::ENOEXEC
            } else {
                -self.err
            }
        } else {
            self.status
        }
    }
}

/// Why a program was not started: ENOENT and the like from stat, EACCES
/// when the owner may not execute it.
pub fn check_runnable(path: &Path) -> Result<(), Errno> {
    let st = stat(path)?;
    if st.st_mode & libc::S_IXUSR == 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// A started child: its pid (also its process group) and the read end of
/// its output pipe (non-blocking, close-on-exec).
#[derive(Debug)]
pub struct Spawned {
    /// The child's pid and process group id.
    pub pid: Pid,
    /// Where its stdout and stderr arrive.
    pub output: OwnedFd,
}

/// Forks and execs `path` with `argv` (argv[0] included).  Only the fork
/// and pipe can fail here; exec failures come back as the child's exit
/// status.
pub fn spawn(path: &Path, argv: &[String]) -> Result<Spawned, Errno> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let c_argv = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| Errno::EINVAL))
        .collect::<Result<Vec<_>, _>>()?;
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the child runs only async-signal-safe calls (dup2, setpgid,
    // signal, execv, _exit) on values prepared before the fork, so it is
    // sound even when the parent has other threads (the unit tests).
    match unsafe { fork() }? {
        ForkResult::Child => exec_child(&c_path, &c_argv, &write_end),
        ForkResult::Parent { child } => {
            drop(write_end);
            nix::fcntl::fcntl(&read_end, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            Ok(Spawned {
                pid: child,
                output: read_end,
            })
        }
    }
}

/// The child side of [`spawn`]: never returns.
fn exec_child(path: &CString, argv: &[CString], out: &OwnedFd) -> ! {
    let fail = |e: Errno| -> ! {
        // SAFETY: _exit is async-signal-safe and ends the child at once.
        unsafe { libc::_exit(64 + e as i32) }
    };
    if let Err(e) = dup2_stdout(out) {
        fail(e);
    }
    if let Err(e) = dup2_stderr(out) {
        fail(e);
    }
    if let Err(e) = setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
        fail(e);
    }
    // The daemon ignores SIGPIPE; scripts get the default back.
    // SAFETY: restoring the default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    match execv(path, argv) {
        Err(e) => fail(e),
        Ok(never) => match never {},
    }
}

/// A child's output as Samba accumulates it: each chunk read is appended
/// where the text so far ends (at its first NUL), and nothing read at all
/// is no output.
#[derive(Clone, Debug, Default)]
pub struct Output {
    bytes: Option<Vec<u8>>,
}

impl Output {
    /// Appends one chunk read from the pipe.
    pub fn push(&mut self, chunk: &[u8]) {
        let b = self.bytes.get_or_insert_with(Vec::new);
        if let Some(nul) = b.iter().position(|&c| c == 0) {
            b.truncate(nul);
        }
        b.extend_from_slice(chunk);
    }

    /// The text so far (up to its first NUL), `None` when nothing was read;
    /// the buffer is left empty.
    pub fn take(&mut self) -> Option<String> {
        let b = self.bytes.take()?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Some(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// What a read from an output pipe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeState {
    /// More may come later.
    Open,
    /// The write end is closed (or the pipe failed): stop watching it.
    Closed,
}

/// Reads everything available from `fd` into `out`.
pub fn drain(fd: &OwnedFd, out: &mut Output) -> PipeState {
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return PipeState::Closed,
            Ok(n) => out.push(&buf[..n]),
            Err(Errno::EAGAIN) => return PipeState::Open,
            Err(Errno::EINTR) => continue,
            Err(_) => return PipeState::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::waitpid;

    fn run(script: &str) -> (ProcResult, Option<String>) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("eventd-child-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.script");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let child = spawn(&path, &["name0".into(), "ev".into(), "x".into()]).unwrap();
        let status = waitpid(child.pid, None).unwrap();
        let mut out = Output::default();
        nix::fcntl::fcntl(&child.output, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        while drain(&child.output, &mut out) == PipeState::Open {}
        std::fs::remove_dir_all(&dir).unwrap();
        (ProcResult::from_wait(status).unwrap(), out.take())
    }

    #[test]
    fn output_args_and_own_process_group() {
        let (r, out) = run(
            "#!/bin/sh\necho \"$0 $1 $2\"; echo err >&2; ps -o pgid= -p $$ | tr -d ' '; echo $$\n",
        );
        assert_eq!(r.script_result(), 0);
        let out = out.unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert!(lines[0].ends_with("s.script ev x"), "{out}");
        assert_eq!(lines[1], "err");
        assert_eq!(lines[2], lines[3], "pgid equals pid: {out}");
    }

    #[test]
    fn statuses_map_like_samba() {
        assert_eq!(run("#!/bin/sh\nexit 3\n").0.script_result(), 3);
        assert_eq!(run("#!/bin/sh\nexit 64\n").0.script_result(), 0);
        assert_eq!(run("#!/bin/sh\nexit 66\n").0.script_result(), -2);
        assert_eq!(
            run("#!/bin/sh\nexit 77\n").0.script_result(),
            -libc::ENOEXEC
        );
        assert_eq!(run("#!/bin/sh\nexit 255\n").0.script_result(), 255);
        assert_eq!(
            run("#!/bin/sh\nkill -9 $$\n").0.script_result(),
            -libc::EINTR
        );
        // No interpreter line: execv fails with ENOEXEC, reported as 64+8.
        let (r, out) = run("echo hi\n");
        assert_eq!((r.err, out), (libc::ENOEXEC, None));
        assert_eq!(
            ProcResult::errno(Errno::ETIMEDOUT).script_result(),
            -libc::ETIMEDOUT
        );
    }

    #[test]
    fn output_stops_at_nul_like_samba() {
        let mut o = Output::default();
        assert_eq!(o.clone().take(), None);
        o.push(b"ab\0cd");
        o.push(b"ef");
        assert_eq!(o.take().as_deref(), Some("abef"));
        o.push(b"\0");
        assert_eq!(o.take().as_deref(), Some(""));
    }

    #[test]
    fn not_executable_and_missing_are_refused_before_running() {
        assert_eq!(
            check_runnable(Path::new("/nonexistent/x")),
            Err(Errno::ENOENT)
        );
        let plain = std::env::temp_dir().join(format!("eventd-plain-{}", std::process::id()));
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        assert_eq!(check_runnable(&plain), Err(Errno::EACCES));
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(check_runnable(Path::new("/bin/sh")), Ok(()));
    }
}
