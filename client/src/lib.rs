//! A non-blocking CTDB client speaking Samba 4.17's wire protocol over the
//! daemon's unix socket: the safe core under the libctdb C API exported by
//! libtdb.so.1 (`src/ffi/ctdb.rs` in the root crate).
//!
//! - [`Connection`]: the socket, the output queue, requests matched to
//!   replies by reqid; [`Connection::service`] moves bytes when the caller's
//!   poll says so and returns [`Event`]s (completed requests, messages,
//!   traverse records).
//! - Databases are attached with their local tdb opened in this process;
//!   record locks are that tdb's chain locks, taken when this node is the
//!   record's dmaster and after a migration call otherwise, as Samba's
//!   clients do.
//! - [`Connection::wait`] is the blocking loop the synchronous API uses.
//! - [`Transaction`]: persistent database transactions (g_lock and
//!   TRANS3_COMMIT), synchronous, as Samba 4.17's client runs them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod database;
mod error;
mod getters;
mod request;
mod steps;
mod transaction;

pub use connection::{Connection, LockAttempt, LEADER_WAIT};
pub use database::{Database, DbHandle, HeldRecord};
pub use error::ClientError;
pub use getters::Getter;
pub use request::{Event, LockId, Outcome, RequestId};
pub use transaction::Transaction;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

impl Connection {
    /// Polls and services the connection until request `id` ended or the
    /// connection broke; `on_event` sees every event on the way (messages
    /// for the caller's handlers included).
    pub fn wait(&mut self, id: RequestId, mut on_event: impl FnMut(&mut Connection, Event)) {
        loop {
            for event in self.service(false, false) {
                on_event(self, event);
            }
            if self.is_done(id)
                || self.is_broken()
                || self.result(id) == Err(ClientError::UnknownRequest)
            {
                return;
            }
            let (readable, writable) = self.poll_once(1000);
            for event in self.service(readable, writable) {
                on_event(self, event);
            }
        }
    }

    /// One poll of the socket for up to `timeout_ms`: (readable, writable).
    pub fn poll_once(&self, timeout_ms: u16) -> (bool, bool) {
        let mut flags = PollFlags::POLLIN;
        if self.wants_write() {
            flags |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(self.socket(), flags)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(n) if n > 0 => {
                let got = fds[0].revents().unwrap_or(PollFlags::empty());
                let hup = got.intersects(PollFlags::POLLHUP | PollFlags::POLLERR);
                (
                    got.contains(PollFlags::POLLIN) || hup,
                    got.contains(PollFlags::POLLOUT),
                )
            }
            _ => (false, false),
        }
    }
}
