//! Signals as poll events: the handlers write the signal number to the
//! self-pipe of every daemon in the process (one in the program; several
//! in the unit tests), whose read ends the loops poll.

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::fcntl::OFlag;
use nix::sys::signal::{signal, SigHandler, Signal};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// How many self-pipes may be registered at once.
const SLOTS: usize = 32;

/// Write ends of the registered self-pipes (-1: free slot).  A write end
/// stored here is never closed, so a handler never writes to a reused fd.
static WRITE_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

extern "C" fn on_signal(sig: libc::c_int) {
    let b = sig as u8;
    for slot in &WRITE_FDS {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe, fd is a pipe write end
            // that is never closed, and the byte lives on this stack frame.
            unsafe { libc::write(fd, std::ptr::from_ref(&b).cast(), 1) };
        }
    }
}

/// The read end of one daemon's self-pipe.
#[derive(Debug)]
pub struct SignalPipe {
    read_end: OwnedFd,
}

/// The signals the daemon handles.
const HANDLED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
];

impl SignalPipe {
    /// Creates a self-pipe, installs the handlers (SIGPIPE ignored) and
    /// registers the read end under `token`.
    pub fn install(registry: &Registry, token: Token) -> std::io::Result<SignalPipe> {
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let raw = write_end.into_raw_fd();
        let stored = WRITE_FDS.iter().any(|slot| {
            slot.compare_exchange(-1, raw, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
        if !stored {
            return Err(std::io::Error::other("too many signal pipes"));
        }
        // SAFETY: on_signal only loads atomics and calls write(2), both
        // async-signal-safe, so it may interrupt any code.
        unsafe {
            for sig in HANDLED {
                signal(sig, SigHandler::Handler(on_signal))?;
            }
            signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
        }
        registry.register(
            &mut SourceFd(&read_end.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(SignalPipe { read_end })
    }

    /// The signals received since the last call, in order.
    pub fn drain(&self) -> Vec<i32> {
        let mut got = Vec::new();
        let mut b = [0u8; 64];
        while let Ok(n @ 1..) = nix::unistd::read(&self.read_end, &mut b) {
            got.extend(b[..n].iter().map(|&s| i32::from(s)));
        }
        got
    }
}
