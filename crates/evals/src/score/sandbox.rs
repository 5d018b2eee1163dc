//! Running untrusted generated code: a separate `python3 -I` process in a throw-away
//! directory with an empty environment, its own session (so the whole process group can
//! be killed), rlimits on memory, CPU time, file size and open files, a wall-clock
//! limit, and a fresh network namespace with no interfaces up (no network at all).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
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
    Failed { code: i32, stderr_tail: String },
    TimedOut,
    Killed { signal: i32, stderr_tail: String },
}

#[derive(Debug, Clone)]
pub struct Run {
    pub outcome: Outcome,
    pub elapsed: Duration,
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

/// Run `program` (Python source) under `limits`.
pub fn run_python(program: &str, limits: &Limits) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("program.py");
    std::fs::write(&file, program)?;
    let stderr_path = dir.path().join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path)?;
    let cpu_secs = limits.wall.as_secs().max(1) + 1;
    let memory = limits.memory_bytes;
    let mut cmd = Command::new(&limits.python);
    cmd.arg("-I")
        .arg(&file)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
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
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() >= limits.wall {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let Some(status) = status else {
        // Kill the whole session: the program may have forked.
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait();
        return Ok(Run { outcome: Outcome::TimedOut, elapsed });
    };
    // Anything the program left running in its group goes too.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let err = tail(&std::fs::read(&stderr_path).unwrap_or_default(), 400);
    let outcome = match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Passed,
        (Some(code), _) => Outcome::Failed { code, stderr_tail: err },
        (None, Some(signal)) => Outcome::Killed { signal, stderr_tail: err },
        (None, None) => Outcome::Failed { code: -1, stderr_tail: err },
    };
    Ok(Run { outcome, elapsed })
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
}
