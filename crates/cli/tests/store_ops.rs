//! Operating the store: `/readyz` (ready, then 503 while draining after SIGTERM — still
//! serving until `drain_delay_ms` is over), and `conductor store migrate|check` on the books
//! a real server wrote, including books that were tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn conductor(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conductor")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Asks `model`; returns the decision id of the answer.
async fn answered(s: &Server, model: &str, prompt: &str) -> String {
    let r = client().post(s.url("/v1/chat/completions")).json(&chat_body(model, prompt, false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["conductor"]["decision_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_turns_503_on_sigterm_while_the_server_keeps_serving_the_drain() {
    let up = start_upstream().await;
    let cfg = upstream_config(&up, &[("m", "ok", "small")], "[server]\ndrain_delay_ms = 1500\n");
    let mut s = Server::start(&cfg);
    let r = client().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!((v["checks"]["books_writer"].clone(), v["checks"]["books_reader"].clone()), (json!(true), json!(true)));

    Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap();
    let t = Instant::now();
    loop {
        let r = client().get(s.url("/readyz")).send().await.unwrap();
        if r.status() == 503 {
            assert_eq!(r.headers()["retry-after"], "1");
            assert_eq!(r.json::<Value>().await.unwrap()["status"], "draining");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(1), "never draining");
    }
    // Draining is not down: requests are still answered until the delay is over.
    let r =
        client().post(s.url("/v1/chat/completions")).json(&chat_body("m", "still there?", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let status = tokio::task::spawn_blocking(move || s.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() >= Duration::from_millis(1400), "the listener stayed open for the drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_check_passes_real_books_and_names_what_was_tampered_with() {
    let up = start_upstream().await;
    let s = Server::start(&upstream_config(&up, &[("m", "ok", "small")], ""));
    let mut ids = Vec::new();
    for p in ["one", "two", "three"] {
        ids.push(answered(&s, "auto", p).await);
    }
    let r =
        client().post(s.url("/v1/feedback")).json(&json!({"decision_id": ids[0], "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let books = s.books();
    let _dir = s.stop();
    let path = books.display().to_string();

    let (ok, out) = conductor(&["store", "migrate", "--books", &path]);
    assert!(ok && out.contains("already at schema version"), "{out}");
    let (ok, out) = conductor(&["store", "check", "--books", &path, "--json"]);
    assert!(ok, "{out}");
    let r: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (r["decisions"].clone(), r["feedback"].clone(), r["integrity"].clone()),
        (json!(3), json!(1), json!("ok"))
    );
    assert_eq!(r["problems"], json!([]));

    // A decision removed behind the server's back: its rating is orphaned, the rollups disagree.
    let c = conductor_gateway::books::open_connection(&books).unwrap();
    c.execute_batch(&format!("PRAGMA foreign_keys = OFF; DELETE FROM decisions WHERE id = '{}'", ids[0])).unwrap();
    drop(c);
    let (ok, out) = conductor(&["store", "check", "--books", &path]);
    assert!(!ok, "{out}");
    assert!(out.contains("1 feedback rows name no decision"), "{out}");
    assert!(out.contains("rollups per hour count 3 requests, the books 2"), "{out}");

    // Not a database at all: both commands say which file.
    let junk = _dir.path().join("junk.sqlite");
    std::fs::write(&junk, "not a database, just text that is long enough to be read as a header").unwrap();
    for cmd in ["check", "migrate"] {
        let (ok, out) = conductor(&["store", cmd, "--books", &junk.display().to_string()]);
        assert!(!ok && out.contains("junk.sqlite") && out.contains("not a database"), "{cmd}: {out}");
    }

    // New books: every step, once.
    let fresh = _dir.path().join("new.sqlite").display().to_string();
    let (ok, out) = conductor(&["store", "migrate", "--books", &fresh]);
    assert!(ok && out.contains("schema version 0 → 6") && out.contains("traffic rollups"), "{out}");
}

/// The store goes away (another process holds the write lock past the busy timeout) and
/// comes back: feedback is refused with 503 + Retry-After (not recorded), `/readyz` says not
/// ready, requests are still answered and their decisions kept; afterwards everything
/// answered during the outage is in the books and feedback works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_gives_503s_then_normal_service_with_nothing_answered_lost() {
    let up = start_upstream().await;
    let s = Server::start(&upstream_config(&up, &[("m", "ok", "small")], ""));
    let before = answered(&s, "m", "hello").await;
    // Let its row be committed before the lock is taken.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blocker = conductor_gateway::books::open_connection(&s.books()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let during = answered(&s, "m", "hello").await; // answered: the model does not need the books
    let r =
        client().post(s.url("/v1/feedback")).json(&json!({"decision_id": before, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(assert_error_shape(&v)["code"], "store_unavailable", "{v}");
    let r = client().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["checks"]["books_writer"], false);

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    let t = Instant::now();
    while client().get(s.url("/readyz")).send().await.unwrap().status() != 200 {
        assert!(t.elapsed() < Duration::from_secs(15), "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r =
        client().post(s.url("/v1/feedback")).json(&json!({"decision_id": during, "score": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200, "the decision answered during the outage is in the books");
    let books = s.books();
    let _dir = s.stop();
    let rows = conductor_gateway::books::Reader::open(&books).unwrap().recent(10, 0).unwrap();
    assert!(rows.iter().any(|d| d.id == before) && rows.iter().any(|d| d.id == during));
}
