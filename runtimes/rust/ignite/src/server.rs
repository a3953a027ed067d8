//! The pod server: the pod protocol (docs/pod-protocol.md in the Ignite
//! repository) around one handler.
//!
//! It runs on a current-thread tokio runtime inside a `LocalSet`, so async
//! handlers need not be `Send`; each invocation is its own local task, which
//! is what turns a panic into a `500` instead of a dead pod. Sync handlers run
//! on tokio's blocking pool so they do not stall other requests.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Notify};
use tokio::task::{spawn_local, JoinError, LocalSet};

use crate::body::ResponseBody;
use crate::context::{Context, Stream};
use crate::error::Result;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// Paths under this prefix belong to the platform, never to the app.
const PLATFORM_PREFIX: &str = "/_ignite/";
/// Carries the invocation's id from the platform.
const EXECUTION_ID_HEADER: &str = "x-ignite-execution-id";
/// How many streamed chunks may wait for a slow client before `send` waits.
const STREAM_BUFFER: usize = 16;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A handler's result once the user's types are gone: a response or the
/// message of the `{"error": ...}` body.
type Outcome = std::result::Result<Response, String>;
type Invoke = Rc<dyn Fn(Request, Context) -> Pin<Box<dyn Future<Output = Outcome>>>>;

/// Serves an `async fn(Request, Context) -> Result<impl IntoResponse>`.
pub fn serve_async<F, Fut, R>(handler: F)
where
    F: Fn(Request, Context) -> Fut + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: IntoResponse,
{
    run(Rc::new(move |request, context| {
        let pending = handler(request, context);
        Box::pin(async move {
            pending
                .await
                .map(IntoResponse::into_response)
                .map_err(|e| e.to_string())
        })
    }))
}

/// Serves a `fn(Request, Context) -> Result<impl IntoResponse>`.
pub fn serve_sync<F, R>(handler: F)
where
    F: Fn(Request, Context) -> Result<R> + Send + Sync + 'static,
    R: IntoResponse,
{
    let handler = Arc::new(handler);
    run(Rc::new(move |request, context| {
        let handler = Arc::clone(&handler);
        Box::pin(async move {
            let call = move || {
                handler(request, context)
                    .map(IntoResponse::into_response)
                    .map_err(|e| e.to_string())
            };
            tokio::task::spawn_blocking(call)
                .await
                .unwrap_or_else(|e| Err(panic_message(e)))
        })
    }))
}

fn run(invoke: Invoke) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => exit_with(&format!("cannot start the async runtime: {error}")),
    };
    if let Err(error) = LocalSet::new().block_on(&runtime, serve(invoke)) {
        exit_with(&error.to_string());
    }
}

fn exit_with(message: &str) -> ! {
    eprintln!("ignite: {message}");
    std::process::exit(1)
}

/// Accepts until SIGTERM (or SIGINT), then waits for in-flight invocations.
async fn serve(invoke: Invoke) -> io::Result<()> {
    let listener = Listener::from_env()?;
    let identity = Rc::new(Identity::from_env());
    let in_flight = Rc::new(InFlight::default());
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(connection) => {
                    let state = Shared { invoke: invoke.clone(), identity: identity.clone(), in_flight: in_flight.clone() };
                    spawn_local(serve_connection(connection, state));
                }
                Err(error) => {
                    eprintln!("ignite: accept failed: {error}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    // Closing the listener refuses new connections; requests already read
    // run to completion.
    drop(listener);
    in_flight.wait_idle().await;
    Ok(())
}

struct Identity {
    function_id: String,
    organization_id: String,
}

impl Identity {
    fn from_env() -> Self {
        Identity {
            function_id: std::env::var("IGNITE_FUNCTION_ID").unwrap_or_default(),
            organization_id: std::env::var("IGNITE_ORGANIZATION_ID").unwrap_or_default(),
        }
    }
}

#[derive(Clone)]
struct Shared {
    invoke: Invoke,
    identity: Rc<Identity>,
    in_flight: Rc<InFlight>,
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Connection {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Listener {
    /// The socket a pre-started pod's launcher handed over
    /// (`IGNITE_LISTEN_FD`), else the unix socket `IGNITE_SOCKET`, else TCP
    /// port `IGNITE_PORT`.
    fn from_env() -> io::Result<Self> {
        if let Ok(fd) = std::env::var("IGNITE_LISTEN_FD") {
            return Self::inherited(&fd).map(Listener::Unix);
        }
        if let Ok(path) = std::env::var("IGNITE_SOCKET") {
            // A socket file left behind by an earlier pod would make bind fail.
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
            return UnixListener::bind(&path).map(Listener::Unix);
        }
        if let Ok(port) = std::env::var("IGNITE_PORT") {
            let port: u16 = port.parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("IGNITE_PORT={port:?} is not a port"),
                )
            })?;
            let listener = std::net::TcpListener::bind(("0.0.0.0", port))?;
            listener.set_nonblocking(true)?;
            return TcpListener::from_std(listener).map(Listener::Tcp);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither IGNITE_SOCKET nor IGNITE_PORT is set",
        ))
    }

    /// The listening unix socket the exec launcher left open across exec
    /// (docs/pod-protocol.md): requests may already wait on it.
    fn inherited(fd: &str) -> io::Result<UnixListener> {
        use std::os::fd::FromRawFd;
        let number: std::os::fd::RawFd = fd.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("IGNITE_LISTEN_FD={fd:?} is not a file descriptor"),
            )
        })?;
        // SAFETY: the launcher opened this socket for this process, which
        // owns it from here on; nothing else in the process uses it.
        let handed = unsafe { std::os::unix::net::UnixListener::from_raw_fd(number) };
        // A close-on-exec duplicate, so no process the app starts inherits it.
        let listener = handed.try_clone()?;
        drop(handed);
        listener.set_nonblocking(true)?;
        UnixListener::from_std(listener)
    }

    async fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Unix(listener) => listener
                .accept()
                .await
                .map(|(stream, _)| Connection::Unix(stream)),
            Listener::Tcp(listener) => listener.accept().await.map(|(stream, _)| Connection::Tcp(stream)),
        }
    }
}

async fn serve_connection(connection: Connection, state: Shared) {
    match connection {
        Connection::Unix(stream) => serve_http1(stream, state).await,
        Connection::Tcp(stream) => serve_http1(stream, state).await,
    }
}

async fn serve_http1<S>(stream: S, state: Shared)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let service = service_fn(move |request| handle(request, state.clone()));
    // A client hanging up mid-request is routine, not worth a log line.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    request: hyper::Request<Incoming>,
    state: Shared,
) -> std::result::Result<hyper::Response<ResponseBody>, Infallible> {
    let path = request.uri().path();
    let response = if path == "/_ignite/health" {
        // The handler is compiled in: ready as soon as the socket accepts.
        to_hyper(Response::json(&serde_json::json!({ "ok": true })))
    } else if path == "/_ignite/load" {
        to_hyper(Response::error(
            409,
            "this runtime starts with its code and cannot be loaded",
        ))
    } else if path.starts_with(PLATFORM_PREFIX) {
        to_hyper(Response::error(404, "unknown platform endpoint"))
    } else {
        invoke(request, state).await
    };
    Ok(response)
}

async fn invoke(request: hyper::Request<Incoming>, state: Shared) -> hyper::Response<ResponseBody> {
    let guard = state.in_flight.enter();
    let (parts, body) = request.into_parts();
    let raw = match read_body(body).await {
        Ok(raw) => raw,
        Err(error) => {
            return to_hyper(Response::error(
                400,
                &format!("could not read the request body: {error}"),
            ))
        }
    };
    let execution_id = parts
        .headers
        .get(EXECUTION_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (chunks, mut streamed) = mpsc::channel(STREAM_BUFFER);
    let stream = Stream::new(chunks);
    let content_type = stream.content_type_handle();
    let context = Context::new(
        execution_id.clone(),
        state.identity.function_id.clone(),
        state.identity.organization_id.clone(),
        stream,
    );
    let request = Request::new(
        parts.method.to_string(),
        parts.uri.path().to_string(),
        parts.uri.query().unwrap_or_default().to_string(),
        text_headers(&parts.headers),
        raw,
    );
    mark(&execution_id, "begin");
    let mut task = spawn_local((state.invoke)(request, context));

    // The response starts either when the handler finishes or when it sends
    // its first streamed chunk, whichever comes first.
    tokio::select! {
        biased;
        joined = &mut task => {
            let outcome = joined.unwrap_or_else(|e| Err(panic_message(e)));
            let response = match streamed.try_recv() {
                Ok(first) => {
                    report_after_stream(&execution_id, outcome);
                    streaming_response(first, streamed, &content_type)
                }
                Err(_) => to_hyper(outcome.unwrap_or_else(|message| {
                    eprintln!("ignite: execution {execution_id} failed: {message}");
                    Response::error(500, &message)
                })),
            };
            mark(&execution_id, "end");
            response
        }
        Some(first) = streamed.recv() => {
            spawn_local(async move {
                let outcome = task.await.unwrap_or_else(|e| Err(panic_message(e)));
                report_after_stream(&execution_id, outcome);
                mark(&execution_id, "end");
                drop(guard);
            });
            streaming_response(first, streamed, &content_type)
        }
    }
}

/// The request's headers whose values are text (names are lowercase in
/// hyper), the form `Request` keeps.
fn text_headers(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

fn report_after_stream(execution_id: &str, outcome: Outcome) {
    if let Err(message) = outcome {
        eprintln!("ignite: execution {execution_id} failed after streaming began: {message}");
    }
}

fn streaming_response(
    first: Bytes,
    rest: mpsc::Receiver<Bytes>,
    content_type: &Mutex<String>,
) -> hyper::Response<ResponseBody> {
    let content_type = content_type.lock().unwrap_or_else(|e| e.into_inner()).clone();
    hyper::Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(ResponseBody::Streaming {
            first: Some(first),
            rest,
        })
        .unwrap_or_else(|_| to_hyper(Response::error(500, "invalid streaming content type")))
}

fn to_hyper(response: Response) -> hyper::Response<ResponseBody> {
    let mut builder = hyper::Response::builder().status(response.status);
    let has_content_type = response
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !has_content_type {
        builder = builder.header("content-type", "application/octet-stream");
    }
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(ResponseBody::full(response.body))
        .unwrap_or_else(|error| {
            let fallback =
                Response::error(500, &format!("the handler's response is not valid HTTP: {error}"));
            hyper::Response::builder()
                .status(500)
                .header("content-type", "application/json")
                .body(ResponseBody::full(fallback.body))
                .expect("a static response is valid")
        })
}

async fn read_body(mut body: Incoming) -> std::result::Result<Bytes, hyper::Error> {
    let mut collected = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

fn panic_message(error: JoinError) -> String {
    if !error.is_panic() {
        return "the handler was cancelled".to_string();
    }
    let payload = error.into_panic();
    let detail = payload
        .downcast_ref::<&str>()
        .map(|message| message.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    format!("the handler panicked: {detail}")
}

/// Counts invocations in progress so SIGTERM can wait for them.
#[derive(Default)]
struct InFlight {
    count: Cell<usize>,
    idle: Notify,
}

struct InFlightGuard(Rc<InFlight>);

impl InFlight {
    fn enter(self: &Rc<Self>) -> InFlightGuard {
        self.count.set(self.count.get() + 1);
        InFlightGuard(Rc::clone(self))
    }

    async fn wait_idle(&self) {
        // Single-threaded: nothing runs between the check and registering
        // the waiter, so a wake-up cannot be missed.
        while self.count.get() > 0 {
            self.idle.notified().await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let remaining = self.0.count.get() - 1;
        self.0.count.set(remaining);
        if remaining == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Writes a begin or end mark of an execution to stdout and stderr
/// (docs/pod-protocol.md, "Logs"): in each pipe's own order, the lines a
/// handler prints between the two marks are the execution's, however late
/// the platform reads them.
fn mark(execution_id: &str, event: &str) {
    use std::io::Write;
    if execution_id.is_empty() {
        return;
    }
    let record = format!(
        "\u{1e}{}\n",
        serde_json::json!({"execution_id": execution_id, "event": event})
    );
    let _ = io::stdout().lock().write_all(record.as_bytes());
    let _ = io::stderr().lock().write_all(record.as_bytes());
}
