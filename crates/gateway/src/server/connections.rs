//! The accept loop: a cap on open connections, and three timeouts hyper leaves to us.
//!
//! - **Header read:** a client has this long from its first byte of a request to the end
//!   of the request's headers (slowloris: headers trickled forever).
//! - **Body read:** enforced where the body is read ([`crate::routes::read_body`]).
//! - **Idle:** a connection with no request in flight and no bytes of a new one is closed
//!   after this long (keep-alive connections parked forever).
//!
//! A watchdog per connection checks these against the connection's own clock: the IO
//! wrapper notes when the first byte of a new request arrives, the service wrapper notes
//! when a request starts and when its response body is finished (or dropped). A streamed
//! answer in flight is never cut by these timeouts; its own deadlines live in dispatch.

use axum::body::Body;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// What the watchdog knows about one connection. Times are milliseconds since `epoch`;
/// 0 means "not set".
struct ConnState {
    epoch: Instant,
    /// Requests whose response has not finished.
    active: AtomicUsize,
    /// When the first byte of a request arrived that has not started yet.
    head_started: AtomicU64,
    /// When the connection last became idle (accepted, or its last response finished).
    idle_since: AtomicU64,
}

impl ConnState {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, l: &Limits) -> Option<&'static str> {
        if self.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let now = self.now();
        let head = self.head_started.load(Ordering::SeqCst);
        if head != 0 {
            return (now - head > l.header_timeout.as_millis() as u64).then_some("header read timeout");
        }
        let idle = self.idle_since.load(Ordering::SeqCst);
        (now.saturating_sub(idle) > l.idle_timeout.as_millis() as u64).then_some("idle timeout")
    }
}

/// Marks one request as in flight until dropped (with its response body), then writes
/// its access-log line: method, path, status, latency, the answering model and the
/// decision id — never a key or a prompt.
struct InFlight {
    conn: Arc<ConnState>,
    method: hyper::Method,
    path: String,
    started: Instant,
    /// Filled in when the response head is ready.
    status: u16,
    model: String,
    decision: String,
}

impl InFlight {
    fn start(s: &Arc<ConnState>, req: &hyper::Request<Incoming>) -> InFlight {
        s.active.fetch_add(1, Ordering::SeqCst);
        s.head_started.store(0, Ordering::SeqCst);
        InFlight {
            conn: s.clone(),
            method: req.method().clone(),
            path: req.uri().path().chars().take(128).collect(),
            started: Instant::now(),
            status: 0,
            model: String::new(),
            decision: String::new(),
        }
    }

    fn respond(&mut self, resp: &hyper::Response<Body>) {
        let h = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
        self.status = resp.status().as_u16();
        self.model = h("x-conductor-model");
        self.decision = h("x-conductor-decision-id");
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.conn;
        s.idle_since.store(s.now(), Ordering::SeqCst);
        s.active.fetch_sub(1, Ordering::SeqCst);
        tracing::info!(
            target: "access",
            "{} {} {} {:.1}ms model={} decision={}",
            self.method,
            self.path,
            self.status,
            self.started.elapsed().as_secs_f64() * 1e3,
            self.model,
            self.decision
        );
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TCP stream, noting when bytes of a new request arrive while none is in flight.
struct Watched {
    io: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let s = &self.state;
        if buf.filled().len() > before
            && s.active.load(Ordering::SeqCst) == 0
            && s.head_started.load(Ordering::SeqCst) == 0
        {
            s.head_started.store(s.now(), Ordering::SeqCst);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts and serves connections until `shutdown` turns true; then stops accepting, lets
/// in-flight requests finish (idle connections close at once) and returns when every
/// connection is gone. The caller bounds that wait with its grace period.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        // At the cap, wait for a connection to close before accepting the next one (the
        // kernel's backlog holds the rest).
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let _ = tcp.set_nodelay(true);
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(tcp, app, limits, shutdown).await;
            drop(permit);
        });
    }
    // Every connection holds a permit until it is done.
    let _ = permits.acquire_many(limits.max_connections.max(1) as u32).await;
}

async fn connection(tcp: TcpStream, app: Router, limits: Limits, mut shutdown: watch::Receiver<bool>) {
    let state = Arc::new(ConnState {
        epoch: Instant::now(),
        active: AtomicUsize::new(0),
        head_started: AtomicU64::new(0),
        idle_since: AtomicU64::new(1),
    });
    let io = TokioIo::new(Watched { io: tcp, state: state.clone() });
    let svc_state = state.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut guard = InFlight::start(&svc_state, &req);
        let mut app = app.clone();
        async move {
            let resp = tower_service::Service::call(&mut app, req.map(Body::new)).await?;
            guard.respond(&resp);
            Ok::<_, std::convert::Infallible>(resp.map(|b| Body::new(Guarded { inner: b, _guard: guard })))
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let tick =
        (limits.header_timeout.min(limits.idle_timeout) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = shutdown.wait_for(|s| *s), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                if let Some(why) = state.expired(&limits) {
                    tracing::debug!("closing connection: {why}");
                    return;
                }
            }
        }
    }
}
