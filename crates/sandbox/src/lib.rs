//! Running untrusted generated code: a separate `python3 -I` process with an empty
//! environment, its own session (so the whole process group can be killed), rlimits on
//! memory, CPU time, file size and open files, a wall-clock limit, and a fresh network
//! namespace with no interfaces up (no network at all).
//!
//! One function, [`run`], serves both callers: scoring runs a program in a throw-away
//! directory and only looks at the exit status ([`run_python`]); an agent's `python` tool
//! runs it in the run's workspace, reads its stdout and may cancel it ([`Options`]).

use std::io::{Read, Seek};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resource limits for one run.
#[derive(Debug, Clone)]
pub struct Limits {
    pub wall: Duration,
    pub memory_bytes: u64,
    pub python: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self { wall: Duration::from_secs(10), memory_bytes: 1 << 30, python: "python3".into() }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed {
        code: i32,
        stderr_tail: String,
    },
    TimedOut,
    Killed {
        signal: i32,
        stderr_tail: String,
    },
    /// The cancel flag was raised; the process group was killed.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// The first [`Options::stdout_limit`] bytes of stdout (lossy UTF-8); empty when not captured.
    pub stdout: String,
    /// Whether stdout was longer than what `stdout` holds.
    pub stdout_truncated: bool,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
    pub fn summary(&self) -> String {
        match &self.outcome {
            Outcome::Passed => "tests passed".into(),
            Outcome::Failed { code, stderr_tail } => format!("exit {code}: {stderr_tail}"),
            Outcome::TimedOut => format!("timed out after {:.1}s", self.elapsed.as_secs_f64()),
            Outcome::Killed { signal, stderr_tail } => format!("killed by signal {signal}: {stderr_tail}"),
            Outcome::Cancelled => format!("cancelled after {:.1}s", self.elapsed.as_secs_f64()),
        }
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: plain syscall on a valid struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detach from the network: a new, empty network namespace (root), or a user namespace
/// that grants one (unprivileged). Failing both, refuse to run the code.
fn isolate_network() -> std::io::Result<()> {
    // SAFETY: unshare only affects the calling (child) process.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        return Ok(());
    }
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
        return Ok(());
    }
    Err(std::io::Error::other("cannot create a network namespace: refusing to run untrusted code with network access"))
}

fn tail(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    let start = s.char_indices().rev().nth(n.saturating_sub(1)).map(|(i, _)| i).unwrap_or(0);
    s[start..].to_string()
}

/// Where a run happens and what comes back, beyond its [`Limits`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Working directory (and `HOME`) of the program, left in place afterwards; `None`: a
    /// throw-away directory. The program and its stderr file never land here.
    pub workdir: Option<PathBuf>,
    /// Keep up to this many bytes of stdout; 0 discards it.
    pub stdout_limit: usize,
    /// Raised by another thread to stop the run: the whole process group is killed at the
    /// next poll (every 5 ms) and the outcome is [`Outcome::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Run `program` (Python source) under `limits` in a throw-away directory, stdout discarded.
pub fn run_python(program: &str, limits: &Limits) -> anyhow::Result<Run> {
    run(program, limits, &Options::default())
}

/// Run `program` (Python source) under `limits` as `options` say.
pub fn run(program: &str, limits: &Limits, options: &Options) -> anyhow::Result<Run> {
    // The program and its stderr live apart from the working directory, so a workspace
    // sees only what the program itself writes.
    let dir = tempfile::tempdir()?;
    let workdir = options.workdir.clone().unwrap_or_else(|| dir.path().to_path_buf());
    let file = dir.path().join("program.py");
    std::fs::write(&file, program)?;
    let stderr_path = dir.path().join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path)?;
    // Unnamed, so it shows in no directory; RLIMIT_FSIZE bounds what it can grow to.
    let mut stdout_file = if options.stdout_limit > 0 { Some(tempfile::tempfile()?) } else { None };
    let stdout = match &stdout_file {
        Some(f) => Stdio::from(f.try_clone()?),
        None => Stdio::null(),
    };
    let cpu_secs = limits.wall.as_secs().max(1) + 1;
    let memory = limits.memory_bytes;
    let mut cmd = Command::new(&limits.python);
    cmd.arg("-I")
        .arg(&file)
        .current_dir(&workdir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &workdir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            set_limit(libc::RLIMIT_AS, memory)?;
            set_limit(libc::RLIMIT_CPU, cpu_secs)?;
            set_limit(libc::RLIMIT_FSIZE, 16 << 20)?;
            set_limit(libc::RLIMIT_NOFILE, 64)?;
            set_limit(libc::RLIMIT_CORE, 0)?;
            isolate_network()
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", limits.python))?;
    let pid = child.id() as i32;
    let cancelled = || options.cancel.as_ref().is_some_and(|c| c.load(Ordering::Acquire));
    let stopped = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        if cancelled() {
            break Err(Outcome::Cancelled);
        }
        if start.elapsed() >= limits.wall {
            break Err(Outcome::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    // Kill the whole session, whatever happened: the program may have forked, and anything
    // it left running in its group goes too.
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let (stdout, stdout_truncated) = match stdout_file.as_mut() {
        Some(f) => read_head(f, options.stdout_limit)?,
        None => (String::new(), false),
    };
    let status = match stopped {
        Ok(status) => status,
        Err(outcome) => {
            let _ = child.wait();
            return Ok(Run { outcome, elapsed, stdout, stdout_truncated });
        }
    };
    let err = tail(&std::fs::read(&stderr_path).unwrap_or_default(), 400);
    let outcome = match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Passed,
        (Some(code), _) => Outcome::Failed { code, stderr_tail: err },
        (None, Some(signal)) => Outcome::Killed { signal, stderr_tail: err },
        (None, None) => Outcome::Failed { code: -1, stderr_tail: err },
    };
    Ok(Run { outcome, elapsed, stdout, stdout_truncated })
}

/// The first `limit` bytes of `file` as text, and whether there was more.
fn read_head(file: &mut std::fs::File, limit: usize) -> std::io::Result<(String, bool)> {
    file.rewind()?;
    let mut buf = Vec::with_capacity(limit.min(64 << 10));
    file.take(limit as u64 + 1).read_to_end(&mut buf)?;
    let truncated = buf.len() > limit;
    buf.truncate(limit);
    Ok((String::from_utf8_lossy(&buf).into_owned(), truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Run {
        run_python(src, &Limits { wall: Duration::from_secs(3), ..Default::default() }).unwrap()
    }

    #[test]
    fn passing_and_failing_programs() {
        assert!(run("assert 1 + 1 == 2").passed());
        let r = run("assert 1 + 1 == 3, 'math is broken'");
        assert!(
            matches!(&r.outcome, Outcome::Failed { code: 1, stderr_tail } if stderr_tail.contains("math is broken")),
            "{r:?}"
        );
    }

    #[test]
    fn infinite_loop_is_killed_at_the_wall_clock_limit() {
        let r = run("while True:\n    pass\n");
        assert_eq!(r.outcome, Outcome::TimedOut);
        assert!(r.elapsed < Duration::from_secs(6));
    }

    #[test]
    fn forked_children_do_not_outlive_the_run() {
        let r = run("import os, time\nif os.fork() == 0:\n    time.sleep(30)\nelse:\n    time.sleep(30)\n");
        assert_eq!(r.outcome, Outcome::TimedOut);
    }

    #[test]
    fn network_is_unreachable() {
        // A server that is really listening on this machine's loopback...
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let src = format!("import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\n");
        // ...can be reached from an ordinary process...
        assert_eq!(Command::new("python3").arg("-c").arg(&src).status().unwrap().code(), Some(0));
        // ...but not from the sandbox.
        let r = run(&src);
        let Outcome::Failed { stderr_tail, .. } = &r.outcome else { panic!("{r:?}") };
        assert!(stderr_tail.contains("unreachable") || stderr_tail.contains("Error"), "{stderr_tail}");
    }

    #[test]
    fn memory_is_capped() {
        let r = run("x = bytearray(4 * 1024 * 1024 * 1024)\n");
        let Outcome::Failed { stderr_tail, .. } = &r.outcome else { panic!("{r:?}") };
        assert!(stderr_tail.contains("MemoryError"), "{stderr_tail}");
    }

    #[test]
    fn runs_in_a_throwaway_directory_with_no_environment() {
        assert!(run("import os\nassert os.listdir('.') == ['program.py', 'stderr.txt'] or sorted(os.listdir('.')) == ['program.py', 'stderr.txt']\nassert 'CARGO' not in ''.join(os.environ)").passed());
    }

    #[test]
    fn runs_in_the_given_directory_and_captures_bounded_stdout() {
        let work = tempfile::tempdir().unwrap();
        let options = Options { workdir: Some(work.path().to_path_buf()), stdout_limit: 10, cancel: None };
        let limits = Limits { wall: Duration::from_secs(3), ..Default::default() };
        let r = super::run("open('out.txt', 'w').write('hi')\nprint('0123456789abc')\n", &limits, &options).unwrap();
        assert!(r.passed(), "{r:?}");
        assert_eq!((r.stdout.as_str(), r.stdout_truncated), ("0123456789", true));
        // Only what the program wrote lands in the working directory.
        let names: Vec<_> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out.txt"]);
    }

    #[test]
    fn raising_the_cancel_flag_kills_the_process_group() {
        let work = tempfile::tempdir().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let options =
            Options { workdir: Some(work.path().to_path_buf()), stdout_limit: 0, cancel: Some(cancel.clone()) };
        let flag = cancel.clone();
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Release);
        });
        let src = "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(30)\n";
        let r = super::run(src, &Limits { wall: Duration::from_secs(20), ..Default::default() }, &options).unwrap();
        raiser.join().unwrap();
        assert_eq!(r.outcome, Outcome::Cancelled);
        assert!(r.elapsed < Duration::from_secs(2), "{r:?}");
        let pid: i32 = std::fs::read_to_string(work.path().join("pid")).unwrap().parse().unwrap();
        // SAFETY: signal 0 only checks whether the process exists.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "process {pid} outlived the cancel");
    }
}
