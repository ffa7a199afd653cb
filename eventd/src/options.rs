//! The command line, as Samba's ctdb-eventd reads it with popt:
//! `-P/--pid PID` (exit when that process is gone), `-S/--startup-fd FD`
//! (write to it once listening), `-?/--help`, `--usage`; and `-i` /
//! `--interactive`, which Samba's eventd spells as the environment variable
//! `CTDB_INTERACTIVE` (both work here).  Arguments that are not options are
//! ignored, as popt leaves them.

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The process to watch (`-P`), when given.
    pub watch_pid: Option<i32>,
    /// The descriptor to notify of a successful start (`-S`), when given.
    pub startup_fd: Option<i32>,
    /// Log to stderr at NOTICE instead of where ctdb.conf says.
    pub interactive: bool,
    /// Print the help text and exit.
    pub help: bool,
    /// Print the short usage text and exit.
    pub usage: bool,
}

/// A refused command line; the text is popt's description of the problem.
#[derive(Debug, PartialEq, Eq)]
pub struct BadOption {
    /// The offending argument as given.
    pub arg: String,
    /// popt's error text ("unknown option", "missing argument", ...).
    pub problem: &'static str,
}

impl std::fmt::Display for BadOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invalid options {}: {}", self.arg, self.problem)
    }
}

/// The help text popt prints for `--help`.
pub const HELP: &str = "Usage: ctdb-eventd [OPTION...]
  -P, --pid=PID           pid to wait for
  -S, --startup-fd=FD     file descriptor to notify of successful start
  -i, --interactive       log to stderr (as CTDB_INTERACTIVE)

Help options:
  -?, --help              Show this help message
      --usage             Display brief usage message
";

/// The text popt prints for `--usage`.
pub const USAGE: &str =
    "Usage: ctdb-eventd [-?i] [-P|--pid=PID] [-S|--startup-fd=FD] [-?|--help] [--usage]\n";

/// Which numeric option an argument sets.
#[derive(Clone, Copy)]
enum Numeric {
    Pid,
    StartupFd,
}

fn numeric_option(name: &str) -> Option<Numeric> {
    match name {
        "-P" | "--pid" => Some(Numeric::Pid),
        "-S" | "--startup-fd" => Some(Numeric::StartupFd),
        _ => None,
    }
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, BadOption> {
        let mut o = Options::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (name, inline) = split_option(&arg);
            if let Some(which) = numeric_option(name) {
                let value = match inline {
                    Some(v) => (v.to_string(), arg.clone()),
                    None => match it.next() {
                        Some(v) => (v.clone(), v),
                        None => return Err(bad(&arg, "missing argument")),
                    },
                };
                let n: i32 = value
                    .0
                    .parse()
                    .map_err(|_| bad(&value.1, "invalid numeric value"))?;
                match which {
                    Numeric::Pid => o.watch_pid = Some(n),
                    Numeric::StartupFd => o.startup_fd = Some(n),
                }
                continue;
            }
            match name {
                "-i" | "--interactive" => o.interactive = true,
                "-?" | "--help" => o.help = true,
                "--usage" => o.usage = true,
                _ if arg.starts_with('-') && arg.len() > 1 => {
                    return Err(bad(&arg, "unknown option"))
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// `--name=value` and `-Xvalue` split into the option and its value.
fn split_option(arg: &str) -> (&str, Option<&str>) {
    if let Some(long) = arg.strip_prefix("--") {
        return match long.split_once('=') {
            Some((n, v)) => (&arg[..2 + n.len()], Some(v)),
            None => (arg, None),
        };
    }
    if arg.len() > 2 && arg.starts_with('-') && arg.is_char_boundary(2) {
        let (n, v) = arg.split_at(2);
        if numeric_option(n).is_some() {
            return (n, Some(v));
        }
    }
    (arg, None)
}

fn bad(arg: &str, problem: &'static str) -> BadOption {
    BadOption {
        arg: arg.to_string(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, BadOption> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn accepted_forms() {
        let o = p(&["-P", "12", "--startup-fd=5", "-i"]).unwrap();
        assert_eq!(
            (o.watch_pid, o.startup_fd, o.interactive),
            (Some(12), Some(5), true)
        );
        let o = p(&["-P12", "--pid", "13", "-S7"]).unwrap();
        assert_eq!((o.watch_pid, o.startup_fd), (Some(13), Some(7)));
        assert!(p(&["--help"]).unwrap().help);
        assert_eq!(p(&["extra"]).unwrap(), Options::default());
    }

    #[test]
    fn refusals_read_like_popt() {
        assert_eq!(
            p(&["-x"]).unwrap_err().to_string(),
            "Invalid options -x: unknown option"
        );
        assert_eq!(
            p(&["-P"]).unwrap_err().to_string(),
            "Invalid options -P: missing argument"
        );
        assert_eq!(
            p(&["-P", "abc"]).unwrap_err().to_string(),
            "Invalid options abc: invalid numeric value"
        );
        assert_eq!(
            p(&["--pid=abc"]).unwrap_err().to_string(),
            "Invalid options --pid=abc: invalid numeric value"
        );
    }
}
