//! One component's event runs, by Samba's rules (run_event.c): runs are
//! queued and go one at a time; a new run cancels a running monitor
//! (-ECANCELED to its client), and a monitor asked for while another event
//! runs is refused with ECANCELED; a run lists the scripts when it starts,
//! runs them in order until the first failure (or all of them with
//! RUN_ALL), and its result is kept per event for STATUS.  This module
//! decides; the server runs the processes and sends the replies.

use crate::child::ProcResult;
use crate::scripts;
use crate::{log_notice, logging};
use ctdb_protocol::event::{ScriptStatus, StatusReply};
use ctdb_protocol::wire::Timeval;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

/// The name of the event that other events cancel.
pub const MONITOR: &str = "monitor";

/// Who gets a run's reply: a client and the request id, or nobody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// The client's id.
    pub client: u64,
    /// The request id to answer.
    pub reqid: u32,
}

/// A run asked for and not started yet.
#[derive(Clone, Debug)]
pub struct PendingRun {
    /// Who gets the reply.
    pub waiter: Option<Waiter>,
    /// The event name.
    pub event: String,
    /// The arguments after the event name, space separated.
    pub args: Option<String>,
    /// When the whole run must be over (set when it was asked for).
    pub deadline: Instant,
    /// Go on after a failing script (RUN_ALL).
    pub run_all: bool,
}

/// The run in progress.
#[derive(Debug)]
pub struct ActiveRun {
    /// Who gets the reply.
    pub waiter: Option<Waiter>,
    /// The event name.
    pub event: String,
    /// argv of every script: the script name, the event, the arguments.
    argv: Vec<String>,
    /// When the whole run must be over.
    pub deadline: Instant,
    run_all: bool,
    scripts: Vec<ScriptStatus>,
    index: usize,
    summary: i32,
    /// The script process running now, if any.
    pub running: Option<Pid>,
}

impl ActiveRun {
    /// True for a monitor run (which other runs cancel).
    pub fn is_monitor(&self) -> bool {
        self.event == MONITOR
    }
}

/// What asking for a run led to.
#[derive(Debug)]
pub enum Admission {
    /// Queued; a running monitor it cancelled is returned so its process
    /// can be killed and its client told ECANCELED.
    Queued {
        /// The cancelled monitor run.
        cancelled: Option<ActiveRun>,
    },
    /// A monitor refused because another event is running (ECANCELED).
    Refused(PendingRun),
}

/// What starting the next queued run led to.
#[derive(Debug)]
pub enum Begin {
    /// The scripts could not be listed: reply this errno.
    Failed(Option<Waiter>, Errno),
    /// There are no scripts: the (empty) result is kept, reply 0.
    Empty(Option<Waiter>),
    /// The first script is to be started.
    Started,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    /// Who gets the reply.
    pub waiter: Option<Waiter>,
    /// The reply's result: 0, ENOEXEC (a script failed) or ETIMEDOUT.
    pub result: i32,
    /// The event name.
    pub event: String,
    /// A timed-out script's process to hand to the debug script.
    pub hung: Option<Pid>,
}

/// What a finished script led to.
#[derive(Debug)]
pub enum Step {
    /// Start the next script.
    Next,
    /// The run is over.
    Done(Finished),
}

/// A component: its directory, its queue, its current run and the last
/// result of every event run in it.
#[derive(Debug)]
pub struct Component {
    /// The directory holding its scripts.
    pub dir: PathBuf,
    queue: VecDeque<PendingRun>,
    /// The run in progress.
    pub active: Option<ActiveRun>,
    results: HashMap<String, StatusReply>,
    /// A debug script for a hung script of this component is running.
    pub debug_running: bool,
}

impl Component {
    /// The component in `dir`: ENOENT (or another stat errno) when there is
    /// no such directory, ENOTDIR when it is not a directory.
    pub fn open(dir: PathBuf) -> Result<Component, Errno> {
        let st = nix::sys::stat::stat(&dir)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(Component {
            dir,
            queue: VecDeque::new(),
            active: None,
            results: HashMap::new(),
            debug_running: false,
        })
    }

    /// Queues `run` unless it is a monitor while another event runs; a
    /// running monitor is cancelled by any new run.
    pub fn admit(&mut self, run: PendingRun) -> Admission {
        let mut cancelled = None;
        if let Some(active) = &self.active {
            if active.is_monitor() {
                cancelled = self.active.take();
            } else if run.event == MONITOR {
                return Admission::Refused(run);
            }
        }
        self.queue.push_back(run);
        Admission::Queued { cancelled }
    }

    /// Starts the next queued run when none is active; `None` when there
    /// is nothing to start.
    pub fn begin_next(&mut self) -> Option<Begin> {
        if self.active.is_some() {
            return None;
        }
        let run = self.queue.pop_front()?;
        let list = match scripts::list(&self.dir) {
            Ok(l) => l,
            Err(e) => {
                if e == Errno::ENOENT {
                    crate::log_warn!("event script dir {} removed", self.dir.display());
                } else {
                    crate::log_warn!(
                        "failed to get script list for {}, ret={}",
                        self.dir.display(),
                        e as i32
                    );
                }
                crate::log_err!("get_script_list() failed, ret={}", e as i32);
                return Some(Begin::Failed(run.waiter, e));
            }
        };
        crate::log_debug!(
            "Running event {} with args \"{}\"",
            run.event,
            run.args.as_deref().unwrap_or("(null)")
        );
        if list.is_empty() {
            self.results.insert(run.event, StatusReply::default());
            return Some(Begin::Empty(run.waiter));
        }
        let mut argv = vec![String::new(), run.event.clone()];
        if let Some(args) = &run.args {
            argv.extend(args.split(' ').filter(|a| !a.is_empty()).map(String::from));
        }
        let scripts = list
            .into_iter()
            .map(|e| ScriptStatus {
                name: e.name,
                result: if e.enabled { 0 } else { -libc::ENOEXEC },
                ..ScriptStatus::default()
            })
            .collect();
        self.active = Some(ActiveRun {
            waiter: run.waiter,
            event: run.event,
            argv,
            deadline: run.deadline,
            run_all: run.run_all,
            scripts,
            index: 0,
            summary: 0,
            running: None,
        });
        Some(Begin::Started)
    }

    /// The current script's path and argv; records its start time.
    pub fn script_to_run(&mut self) -> Option<(PathBuf, Vec<String>)> {
        let run = self.active.as_mut()?;
        let script = run.scripts.get_mut(run.index)?;
        script.begin = Timeval::now();
        let path = self
            .dir
            .join(format!("{}{}", script.name, scripts::SCRIPT_SUFFIX));
        let mut argv = run.argv.clone();
        argv[0] = script.name.clone();
        crate::log_debug!(
            "Running {} with args \"{} {}\"",
            path.display(),
            argv[0],
            argv[1]
        );
        Some((path, argv))
    }

    /// Records how the current script ended (`hung`: its process, still
    /// running, when it timed out) and decides what comes next.
    pub fn script_done(
        &mut self,
        result: ProcResult,
        output: Option<String>,
        hung: Option<Pid>,
    ) -> Step {
        let Some(run) = self.active.as_mut() else {
            return Step::Next;
        };
        run.running = None;
        let index = run.index;
        let Some(script) = run.scripts.get_mut(index) else {
            return Step::Next;
        };
        script.end = Timeval::now();
        if let Some(out) = &output {
            logging::log_lines(&script.name, out);
        }
        crate::log_debug!(
            "Script {} finished sig={}, err={}, status={}",
            script.name,
            result.sig,
            result.err,
            result.status
        );
        script.output = output;
        script.result = result.script_result();
        let failed = script.result != 0 && script.result != -libc::ENOEXEC;
        if failed {
            run.summary = script.result;
            if !run.run_all {
                run.scripts.truncate(index + 1);
                let timed_out = run.summary == -libc::ETIMEDOUT;
                log_notice!(
                    "{} event {}",
                    run.event,
                    if timed_out { "timed out" } else { "failed" }
                );
                return Step::Done(self.finish(if timed_out { hung } else { None }));
            }
        }
        run.index += 1;
        if run.index >= run.scripts.len() {
            return Step::Done(self.finish(None));
        }
        Step::Next
    }

    /// Ends the active run: keeps its result and says what to reply.
    fn finish(&mut self, hung: Option<Pid>) -> Finished {
        let Some(run) = self.active.take() else {
            return Finished {
                waiter: None,
                result: libc::EIO,
                event: String::new(),
                hung: None,
            };
        };
        let result = match run.summary {
            0 => 0,
            s if s == -libc::ETIMEDOUT => libc::ETIMEDOUT,
            _ => libc::ENOEXEC,
        };
        self.results.insert(
            run.event.clone(),
            StatusReply {
                summary: run.summary,
                scripts: run.scripts,
            },
        );
        Finished {
            waiter: run.waiter,
            result,
            event: run.event,
            hung,
        }
    }

    /// The last completed run of `event`; EINVAL when it never ran.
    pub fn result(&self, event: &str) -> Result<&StatusReply, Errno> {
        self.results.get(event).ok_or(Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir_with(tag: &str, scripts: &[(&str, u32)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("eventd-comp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (name, mode) in scripts {
            let p = d.join(format!("{name}.script"));
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        d
    }

    fn pending(event: &str, client: u64, run_all: bool) -> PendingRun {
        PendingRun {
            waiter: Some(Waiter { client, reqid: 1 }),
            event: event.into(),
            args: Some("a  b".into()),
            deadline: Instant::now(),
            run_all,
        }
    }

    fn exit(status: i32) -> ProcResult {
        ProcResult {
            status,
            ..ProcResult::default()
        }
    }

    #[test]
    fn open_refuses_missing_and_non_directories() {
        assert_eq!(
            Component::open("/nonexistent/x".into()).unwrap_err(),
            Errno::ENOENT
        );
        assert_eq!(
            Component::open("/etc/hostname".into()).unwrap_err(),
            Errno::ENOTDIR
        );
    }

    #[test]
    fn first_failure_stops_the_run_and_is_kept() {
        let d = dir_with(
            "fail",
            &[
                ("01.a", 0o755),
                ("02.off", 0o644),
                ("03.b", 0o755),
                ("04.c", 0o755),
            ],
        );
        let mut c = Component::open(d.clone()).unwrap();
        assert_eq!(c.result("startup").unwrap_err(), Errno::EINVAL);
        assert!(matches!(
            c.admit(pending("startup", 1, false)),
            Admission::Queued { cancelled: None }
        ));
        assert!(matches!(c.begin_next(), Some(Begin::Started)));
        let (path, argv) = c.script_to_run().unwrap();
        assert_eq!(path, d.join("01.a.script"));
        assert_eq!(argv, ["01.a", "startup", "a", "b"]);
        assert!(matches!(
            c.script_done(exit(0), Some("hi\n".into()), None),
            Step::Next
        ));
        c.script_to_run().unwrap();
        let off = ProcResult::errno(Errno::EACCES);
        assert!(matches!(c.script_done(off, None, None), Step::Next));
        c.script_to_run().unwrap();
        let Step::Done(f) = c.script_done(exit(7), None, None) else {
            panic!("run goes on after a failure")
        };
        assert_eq!((f.result, f.hung), (libc::ENOEXEC, None));
        let r = c.result("startup").unwrap();
        assert_eq!(r.summary, 7);
        let got: Vec<_> = r
            .scripts
            .iter()
            .map(|s| (s.name.as_str(), s.result))
            .collect();
        assert_eq!(got, [("01.a", 0), ("02.off", -libc::ENOEXEC), ("03.b", 7)]);
        assert_eq!(r.scripts[0].output.as_deref(), Some("hi\n"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn run_all_goes_on_and_timeout_names_the_hung_process() {
        let d = dir_with("all", &[("01.a", 0o755), ("02.b", 0o755)]);
        let mut c = Component::open(d.clone()).unwrap();
        c.admit(pending("monitor", 1, true));
        c.begin_next();
        c.script_to_run();
        assert!(matches!(c.script_done(exit(1), None, None), Step::Next));
        c.script_to_run();
        let Step::Done(f) = c.script_done(exit(0), None, None) else {
            panic!("two scripts")
        };
        assert_eq!(f.result, libc::ENOEXEC);
        assert_eq!(c.result("monitor").unwrap().scripts.len(), 2);
        c.admit(pending("takeip", 1, false));
        c.begin_next();
        c.script_to_run();
        let pid = Pid::from_raw(4242);
        let Step::Done(f) = c.script_done(ProcResult::errno(Errno::ETIMEDOUT), None, Some(pid))
        else {
            panic!("timeout ends the run")
        };
        assert_eq!((f.result, f.hung), (libc::ETIMEDOUT, Some(pid)));
        assert_eq!(c.result("takeip").unwrap().summary, -libc::ETIMEDOUT);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn monitor_is_cancelled_by_others_and_refused_behind_them() {
        let d = dir_with("cancel", &[("01.a", 0o755)]);
        let mut c = Component::open(d.clone()).unwrap();
        c.admit(pending("monitor", 1, false));
        c.begin_next();
        let Admission::Queued { cancelled: Some(m) } = c.admit(pending("takeip", 2, false)) else {
            panic!("monitor not cancelled")
        };
        assert_eq!(m.waiter.unwrap().client, 1);
        assert!(
            c.result("monitor").is_err(),
            "a cancelled run keeps no result"
        );
        assert!(matches!(c.begin_next(), Some(Begin::Started)));
        assert!(matches!(
            c.admit(pending("monitor", 3, false)),
            Admission::Refused(_)
        ));
        assert!(matches!(
            c.admit(pending("releaseip", 4, false)),
            Admission::Queued { cancelled: None }
        ));
        assert!(c.begin_next().is_none(), "one run at a time");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn empty_directory_gives_an_empty_kept_result_and_missing_fails() {
        let d = dir_with("empty", &[]);
        let mut c = Component::open(d.clone()).unwrap();
        c.admit(pending("startup", 1, false));
        assert!(matches!(c.begin_next(), Some(Begin::Empty(Some(_)))));
        assert_eq!(c.result("startup").unwrap(), &StatusReply::default());
        std::fs::remove_dir_all(&d).unwrap();
        c.admit(pending("startup", 1, false));
        assert!(matches!(
            c.begin_next(),
            Some(Begin::Failed(_, Errno::ENOENT))
        ));
    }
}
