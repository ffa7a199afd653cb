//! SIGTERM/SIGINT as poll events: the handlers write the signal number to a
//! non-blocking self-pipe whose read end the loop polls.

use crate::log_notice;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::fcntl::OFlag;
use nix::sys::signal::{signal, SigHandler, Signal};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Poll token of the self-pipe's read end.
pub const SIGNALS: Token = Token(2);

/// The self-pipe's write end, or -1 before `SignalPipe::install`.  The
/// descriptor is never closed once stored.
static SIG_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIG_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe, fd is the pipe's write end
        // (never closed) and the one byte read from is on this stack frame.
        unsafe { libc::write(fd, std::ptr::from_ref(&b).cast(), 1) };
    }
}

/// The read end of the self-pipe, registered with the poll.
pub struct SignalPipe {
    read_end: OwnedFd,
}

impl SignalPipe {
    /// Creates the pipe, installs the handlers (SIGPIPE ignored) and
    /// registers the read end under `SIGNALS`.
    pub fn install(registry: &Registry) -> std::io::Result<SignalPipe> {
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // The handlers may run at any time from now on, so the write end
        // stays open for the rest of the process.
        SIG_WRITE_FD.store(write_end.into_raw_fd(), Ordering::Relaxed);
        // SAFETY: on_signal only loads an atomic and calls write(2), both
        // async-signal-safe, so it may interrupt any code.
        unsafe {
            signal(Signal::SIGTERM, SigHandler::Handler(on_signal))?;
            signal(Signal::SIGINT, SigHandler::Handler(on_signal))?;
            signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
        }
        registry.register(
            &mut SourceFd(&read_end.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        Ok(SignalPipe { read_end })
    }

    /// Drains the pipe; true when a signal asked the daemon to stop.
    pub fn stop_requested(&self) -> bool {
        let mut stop = false;
        let mut b = [0u8; 16];
        while let Ok(n @ 1..) = nix::unistd::read(&self.read_end, &mut b) {
            for sig in &b[..n] {
                log_notice!("Received signal {}, shutting down", sig);
                stop = true;
            }
        }
        stop
    }
}
