//! The cluster lock as Samba takes it: a helper process that answers one
//! character ('0' held, '1' contended, '2' timeout, anything else an error)
//! and then holds the lock until it is killed or exits (its exit means the
//! lock is lost). `[cluster] cluster lock` is either `!command args...` or a
//! file path, for which Debian's fcntl helper is run on the file.

use crate::cluster::LockOutcome;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, TryRecvError};

/// Debian's fcntl lock helper, used for a plain file path.
pub const FCNTL_HELPER: &str = "/usr/libexec/ctdb/ctdb_mutex_fcntl_helper";

/// What the lock helper did since the last look.
#[derive(Debug, PartialEq, Eq)]
pub enum LockNews {
    /// The attempt answered.
    Answered(LockOutcome),
    /// The helper holding the lock exited: the lock is lost.
    Lost,
}

enum State {
    Free,
    Waiting(Child, Receiver<Option<u8>>),
    Held(Child),
}

/// The cluster lock of this node.
pub struct ClusterLock {
    argv: Vec<String>,
    state: State,
}

/// The helper command line for a `cluster lock` setting.
pub fn helper_argv(setting: &str) -> Vec<String> {
    match setting.strip_prefix('!') {
        Some(cmd) => split_command(cmd),
        None => vec![FCNTL_HELPER.to_string(), setting.to_string()],
    }
}

/// Splits a command line into words as a shell would for plain words,
/// single and double quotes and backslash escapes (no expansions).
fn split_command(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_with(String::new).push(n);
                }
            }
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn stop(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let _ = child.wait();
}

impl ClusterLock {
    /// The lock for a `cluster lock` setting; nothing runs yet.
    pub fn new(setting: &str) -> ClusterLock {
        ClusterLock {
            argv: helper_argv(setting),
            state: State::Free,
        }
    }

    /// Starts an attempt (a running attempt or a held lock is kept). A
    /// helper that cannot be started answers as an error at the next look.
    pub fn take(&mut self) -> Option<LockNews> {
        if !matches!(self.state, State::Free) {
            return None;
        }
        let Some((prog, args)) = self.argv.split_first() else {
            return Some(LockNews::Answered(LockOutcome::Error));
        };
        let spawned = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                crate::log_err!("Unable to run cluster lock helper {prog}: {e}");
                return Some(LockNews::Answered(LockOutcome::Error));
            }
        };
        let Some(mut out) = child.stdout.take() else {
            stop(child);
            return Some(LockNews::Answered(LockOutcome::Error));
        };
        let (tx, rx) = channel();
        let spawn = std::thread::Builder::new()
            .name("cluster-lock".into())
            .spawn(move || {
                let mut b = [0u8; 1];
                let answer = match out.read(&mut b) {
                    Ok(1) => Some(b[0]),
                    _ => None,
                };
                let _ = tx.send(answer);
            });
        if spawn.is_err() {
            stop(child);
            return Some(LockNews::Answered(LockOutcome::Error));
        }
        self.state = State::Waiting(child, rx);
        None
    }

    /// What happened since the last look, if anything.
    pub fn poll(&mut self) -> Option<LockNews> {
        match std::mem::replace(&mut self.state, State::Free) {
            State::Free => None,
            State::Waiting(child, rx) => match rx.try_recv() {
                Err(TryRecvError::Empty) => {
                    self.state = State::Waiting(child, rx);
                    None
                }
                Ok(Some(b)) if LockOutcome::from_helper_byte(b) == LockOutcome::Held => {
                    self.state = State::Held(child);
                    Some(LockNews::Answered(LockOutcome::Held))
                }
                Ok(b) => {
                    stop(child);
                    Some(LockNews::Answered(
                        b.map_or(LockOutcome::Error, LockOutcome::from_helper_byte),
                    ))
                }
                Err(TryRecvError::Disconnected) => {
                    stop(child);
                    Some(LockNews::Answered(LockOutcome::Error))
                }
            },
            State::Held(mut child) => match child.try_wait() {
                Ok(None) => {
                    self.state = State::Held(child);
                    None
                }
                _ => Some(LockNews::Lost),
            },
        }
    }

    /// Releases the lock or cancels the attempt (the helper is stopped).
    pub fn release(&mut self) {
        match std::mem::replace(&mut self.state, State::Free) {
            State::Free => {}
            State::Waiting(child, _) | State::Held(child) => stop(child),
        }
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait(lock: &mut ClusterLock) -> LockNews {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(n) = lock.poll() {
                return n;
            }
            assert!(Instant::now() < end, "no answer from the helper");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn settings_become_helper_command_lines() {
        assert_eq!(
            helper_argv("/tmp/x.lock"),
            vec![FCNTL_HELPER.to_string(), "/tmp/x.lock".into()]
        );
        assert_eq!(
            helper_argv("!/bin/helper a b"),
            vec!["/bin/helper", "a", "b"]
        );
    }

    #[test]
    fn a_command_helper_answers_and_its_exit_loses_the_lock() {
        let mut held = ClusterLock::new("!sh -c 'printf 0; sleep 0.3'");
        assert_eq!(held.take(), None);
        assert_eq!(wait(&mut held), LockNews::Answered(LockOutcome::Held));
        assert_eq!(wait(&mut held), LockNews::Lost);

        let mut busy = ClusterLock::new("!sh -c 'printf 1; sleep 5'");
        busy.take();
        assert_eq!(wait(&mut busy), LockNews::Answered(LockOutcome::Contended));

        let mut broken = ClusterLock::new("!/nonexistent/helper");
        assert_eq!(broken.take(), Some(LockNews::Answered(LockOutcome::Error)));
    }

    #[test]
    fn debians_fcntl_helper_gives_the_lock_to_one_holder() {
        if !std::path::Path::new(FCNTL_HELPER).exists() {
            panic!("{FCNTL_HELPER} missing: install Debian's ctdb (scripts/deps.sh)");
        }
        let dir = std::env::temp_dir().join(format!("clusterlock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lock");
        let setting = file.to_str().unwrap();
        let mut a = ClusterLock::new(setting);
        let mut b = ClusterLock::new(setting);
        a.take();
        assert_eq!(wait(&mut a), LockNews::Answered(LockOutcome::Held));
        b.take();
        assert_eq!(wait(&mut b), LockNews::Answered(LockOutcome::Contended));
        a.release();
        b.take();
        assert_eq!(wait(&mut b), LockNews::Answered(LockOutcome::Held));
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
