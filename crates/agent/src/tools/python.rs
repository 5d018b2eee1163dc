//! `python`: run a program in the evals sandbox (`python3 -I`, own process group, rlimits,
//! no network), in the run's workspace so files persist between calls. A cancelled or
//! timed-out call kills the program's whole process group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conductor_sandbox::{self as sandbox, Limits, Options, Outcome};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{parse_args, Tool, ToolContext, ToolError, MAX_OUTPUT_BYTES};

/// The `python` tool. Its memory cap and interpreter come from `limits`; the wall clock is
/// each call's timeout.
#[derive(Debug, Clone, Default)]
pub struct Python {
    pub limits: Limits,
}

#[derive(serde::Deserialize)]
struct Args {
    code: String,
}

/// Raises the sandbox's cancel flag when dropped, so the process dies even if the call's
/// future is abandoned instead of cancelled.
struct KillOnDrop(Arc<AtomicBool>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Tool for Python {
    fn name(&self) -> &str {
        "python"
    }

    fn description(&self) -> &str {
        "Run a Python 3 program and return what it prints. Use print() for anything you want to see. \
         The working directory is your workspace (files persist between calls); there is no network access."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The complete Python program to run."}},
            "required": ["code"],
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        // The runner's timeout fires first; the sandbox's own wall clock is the backstop.
        let limits = Limits { wall: ctx.timeout + Duration::from_secs(1), ..self.limits.clone() };
        Box::pin(async move {
            let Args { code } = parse_args(args)?;
            let flag = Arc::new(AtomicBool::new(false));
            let _kill = KillOnDrop(flag.clone());
            let options = Options {
                workdir: Some(ctx.workspace.clone()),
                stdout_limit: MAX_OUTPUT_BYTES,
                cancel: Some(flag.clone()),
            };
            let mut job = tokio::task::spawn_blocking(move || sandbox::run(&code, &limits, &options));
            let joined = tokio::select! {
                joined = &mut job => joined,
                _ = ctx.cancel.cancelled() => {
                    flag.store(true, Ordering::Release);
                    // Wait for the kill and reap (one 5 ms poll) so the process is gone on return.
                    let _ = job.await;
                    return Err(ToolError::Cancelled);
                }
            };
            let run = joined
                .map_err(|e| ToolError::Failed(format!("the sandbox crashed: {e}")))?
                .map_err(|e| ToolError::Failed(format!("could not run python: {e:#}")))?;
            let stdout = if run.stdout_truncated { format!("{}\n[stdout truncated]", run.stdout) } else { run.stdout };
            match run.outcome {
                Outcome::Passed if stdout.trim().is_empty() => Ok("(the program printed nothing)".into()),
                Outcome::Passed => Ok(stdout),
                Outcome::Failed { code, stderr_tail } => Err(ToolError::Failed(with_stdout(
                    format!("the program exited with code {code}:\n{stderr_tail}"),
                    &stdout,
                ))),
                Outcome::Killed { signal, stderr_tail } => Err(ToolError::Failed(with_stdout(
                    format!("the program was killed by signal {signal} (out of memory or CPU time?):\n{stderr_tail}"),
                    &stdout,
                ))),
                Outcome::TimedOut => Err(ToolError::timed_out(run.elapsed)),
                Outcome::Cancelled => Err(ToolError::Cancelled),
            }
        })
    }
}

fn with_stdout(message: String, stdout: &str) -> String {
    if stdout.trim().is_empty() {
        message
    } else {
        format!("{message}\nIt printed before that:\n{stdout}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::context;
    use super::super::ToolSet;
    use super::*;

    fn set() -> ToolSet {
        ToolSet::builtin(&["python"]).unwrap()
    }

    fn code(src: &str) -> String {
        json!({ "code": src }).to_string()
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks whether the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    fn pid_in(ws: &std::path::Path) -> i32 {
        std::fs::read_to_string(ws.join("pid")).unwrap().trim().parse().unwrap()
    }

    #[tokio::test]
    async fn prints_come_back_and_files_stay_in_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let out = set().run("python", &code("open('a.txt','w').write('x')\nprint(6*7)"), context(ws.path())).await;
        assert_eq!(out.unwrap(), "42\n");
        assert_eq!(std::fs::read_to_string(ws.path().join("a.txt")).unwrap(), "x");
        let out = set().run("python", &code("print(open('a.txt').read())"), context(ws.path())).await;
        assert_eq!(out.unwrap(), "x\n");
        let out = set().run("python", &code("x = 1"), context(ws.path())).await;
        assert_eq!(out.unwrap(), "(the program printed nothing)");
    }

    #[tokio::test]
    async fn a_failing_program_reports_its_exit_code_traceback_and_output() {
        let ws = tempfile::tempdir().unwrap();
        let err = set().run("python", &code("print('start')\n1/0"), context(ws.path())).await.unwrap_err();
        let ToolError::Failed(message) = &err else { panic!("{err:?}") };
        assert!(message.starts_with("the program exited with code 1"), "{message}");
        assert!(message.contains("ZeroDivisionError") && message.contains("start"), "{message}");
    }

    #[tokio::test]
    async fn a_hanging_program_times_out_and_is_killed() {
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext { timeout: Duration::from_secs(1), ..context(ws.path()) };
        let src = "import os\nopen('pid','w').write(str(os.getpid()))\nwhile True:\n    pass\n";
        let err = set().run("python", &code(src), ctx).await.unwrap_err();
        assert_eq!(err, ToolError::TimedOut { ms: 1000 });
        assert!(!alive(pid_in(ws.path())), "the program outlived its timeout");
    }

    #[tokio::test]
    async fn cancel_kills_the_program_within_a_second() {
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext { timeout: Duration::from_secs(60), ..context(ws.path()) };
        let cancel = ctx.cancel.clone();
        let pid_file = ws.path().join("pid");
        // Cancel 300 ms after the program is surely running (it has written its pid).
        let canceller = tokio::spawn(async move {
            while !pid_file.exists() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel();
            Instant::now()
        });
        let src = "import os, time\nopen('pid','w').write(str(os.getpid()))\ntime.sleep(30)\n";
        let err = set().run("python", &code(src), ctx).await.unwrap_err();
        let returned = Instant::now();
        let cancelled = canceller.await.unwrap();
        assert_eq!(err, ToolError::Cancelled);
        let took = returned - cancelled;
        assert!(took < Duration::from_secs(1), "cancel took {took:?}");
        assert!(!alive(pid_in(ws.path())), "the program outlived the cancel");
    }
}
