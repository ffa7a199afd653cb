//! SIGTERM/SIGINT as poll events: the handlers write the signal number to a
//! non-blocking self-pipe whose read end the loop polls.

use crate::log_notice;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// Poll token of the self-pipe's read end.
pub const SIGNALS: Token = Token(2);

static SIG_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIG_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the byte is on the stack.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// The read end of the self-pipe, registered with the poll.
pub struct SignalPipe {
    fd: RawFd,
}

impl SignalPipe {
    /// Creates the pipe, installs the handlers (SIGPIPE ignored) and
    /// registers the read end under `SIGNALS`.
    pub fn install(registry: &Registry) -> std::io::Result<SignalPipe> {
        let mut fds = [0; 2];
        // SAFETY: fds is a two-element array as pipe2 requires.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        SIG_WRITE_FD.store(fds[1], Ordering::Relaxed);
        // SAFETY: installing plain handlers; on_signal only calls write(2).
        unsafe {
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        registry.register(&mut SourceFd(&fds[0]), SIGNALS, Interest::READABLE)?;
        Ok(SignalPipe { fd: fds[0] })
    }

    /// Drains the pipe; true when a signal asked the daemon to stop.
    pub fn stop_requested(&self) -> bool {
        let mut stop = false;
        let mut b = [0u8; 16];
        loop {
            // SAFETY: b is writable for its length and fd is the pipe's read end.
            let n = unsafe { libc::read(self.fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
            if n <= 0 {
                break;
            }
            for sig in &b[..n as usize] {
                log_notice!("Received signal {}, shutting down", sig);
                stop = true;
            }
        }
        stop
    }
}
