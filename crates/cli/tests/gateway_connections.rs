//! Connections cannot be held hostage: headers trickled slowly (slowloris), bodies sent
//! slowly and idle keep-alive connections are closed at their timeouts, and the number of
//! open connections is capped. Raw sockets, so nothing in a client library hides the
//! server's behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

mod gateway_support;

use gateway_support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn config(up: &Upstream, extra: &str) -> String {
    format!(
        "[server]\nheader_timeout_ms = 600\nbody_timeout_ms = 800\nidle_timeout_ms = 1000\n{extra}\n\
         [local]\nenabled = false\n[books]\npath = \"{{dir}}/books.sqlite\"\n\n\
         [[models]]\nid = \"m\"\nprovider = \"openai\"\nbase_url = \"{}\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
        up.base("ok")
    )
}

fn connect(s: &Server) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
fn until_closed(c: &mut TcpStream, started: Instant) -> (String, Duration) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&all).into_owned(), started.elapsed()),
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up, ""));
    let server = tokio::task::spawn_blocking(move || {
        // Slowloris: a header line every 200 ms, never finishing — closed near 600 ms.
        let mut c = connect(&s);
        let t = Instant::now();
        c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n").unwrap();
        let trickle = std::thread::spawn({
            let mut c = c.try_clone().unwrap();
            move || {
                for i in 0..40 {
                    std::thread::sleep(Duration::from_millis(200));
                    if c.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).is_err() {
                        return;
                    }
                }
            }
        });
        let (_, closed) = until_closed(&mut c, t);
        assert!(closed < Duration::from_secs(4), "slowloris held the connection for {closed:?}");
        let _ = trickle.join();

        // A body promised but sent slowly: 408 at the body timeout, then closed.
        let mut c = connect(&s);
        let t = Instant::now();
        c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\"").unwrap();
        let (resp, closed) = until_closed(&mut c, t);
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
        assert!(resp.contains("body_timeout"), "{resp}");
        assert!(closed < Duration::from_secs(4), "{closed:?}");

        // Idle keep-alive: one request, then silence — closed near 1 s, not kept forever.
        let mut c = connect(&s);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let t = Instant::now();
        let (_, closed) = until_closed(&mut c, t);
        assert!(
            closed >= Duration::from_millis(700) && closed < Duration::from_secs(4),
            "idle closed after {closed:?}"
        );

        // A connection that never sends a byte is idle too.
        let mut c = connect(&s);
        let t = Instant::now();
        let (_, closed) = until_closed(&mut c, t);
        assert!(closed < Duration::from_secs(4), "{closed:?}");
        s
    });
    let s = server.await.unwrap();
    // The server is still healthy after all that.
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_capped() {
    let up = start_upstream().await;
    let s = Server::start(&config(&up, "max_connections = 3"));
    let s = tokio::task::spawn_blocking(move || {
        // Three idle connections take every slot (each is served at once)...
        let held: Vec<TcpStream> = (0..3).map(|_| connect(&s)).collect();
        std::thread::sleep(Duration::from_millis(200));
        // ... so a fourth waits in the kernel's backlog: no answer while they are open.
        let mut fourth = connect(&s);
        fourth.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        fourth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        assert!(fourth.read(&mut buf).is_err(), "served beyond the cap");
        // Once they are gone (closed by the client or by the idle timeout) it is served.
        drop(held);
        fourth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = fourth.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s
    })
    .await
    .unwrap();
    drop(s);
}
