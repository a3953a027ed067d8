//! The wasm32 (WASI command) side of `#[ignite::main]`.
//!
//! The platform's Wasmtime host (`runtimes/wasm/ignite_wasm_host.py` in the
//! Ignite repository) serves the pod protocol and runs the component once per
//! invocation. One run reads one invocation envelope, a JSON object, from
//! stdin:
//!
//! ```json
//! {"method": "POST", "path": "/", "query": "", "headers": {"name": "value"},
//!  "body_b64": "...", "execution_id": "...", "function_id": "org/name",
//!  "organization_id": "org"}
//! ```
//!
//! calls the handler, and writes one response envelope as the last line of
//! stdout: `{"status": 200, "headers": {"name": "value"}, "body_b64": "..."}`.
//! An `Err` becomes `500 {"error": ...}`. Panics abort on wasm (there is no
//! unwinding), so a panic hook writes the `500` envelope first; the host
//! reads it after the run traps.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::context::{Context, Stream};
use crate::error::Result;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A handler's result once the user's types are gone: a response or the
/// message of the `{"error": ...}` body.
type Outcome = std::result::Result<Response, String>;

/// Runs an `async fn(Request, Context) -> Result<impl IntoResponse>` on the
/// invocation read from stdin.
pub fn serve_async<F, Fut, R>(handler: F)
where
    F: Fn(Request, Context) -> Fut + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: IntoResponse,
{
    run(|request, context| {
        block_on(handler(request, context))
            .and_then(|result| result.map(IntoResponse::into_response).map_err(|e| e.to_string()))
    })
}

/// Runs a `fn(Request, Context) -> Result<impl IntoResponse>` on the
/// invocation read from stdin.
pub fn serve_sync<F, R>(handler: F)
where
    F: Fn(Request, Context) -> Result<R> + 'static,
    R: IntoResponse,
{
    run(|request, context| {
        handler(request, context)
            .map(IntoResponse::into_response)
            .map_err(|e| e.to_string())
    })
}

#[derive(Deserialize)]
struct Invocation {
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body_b64: String,
    #[serde(default)]
    execution_id: String,
    #[serde(default)]
    function_id: String,
    #[serde(default)]
    organization_id: String,
}

#[derive(Serialize)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body_b64: String,
}

fn run(invoke: impl FnOnce(Request, Context) -> Outcome) {
    std::panic::set_hook(Box::new(|info| {
        let detail = info
            .payload()
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        let message = format!("the handler panicked: {detail}");
        eprintln!("ignite: {message}");
        write_reply(Response::error(500, &message));
    }));

    let mut input = Vec::new();
    let invocation = std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Invocation>(&input).map_err(|e| e.to_string()))
        .and_then(|invocation| {
            let body = decode_base64(&invocation.body_b64)?;
            Ok((invocation, body))
        });
    let (invocation, body) = match invocation {
        Ok(parsed) => parsed,
        Err(error) => {
            write_reply(Response::error(
                400,
                &format!("unreadable invocation envelope: {error}"),
            ));
            return;
        }
    };
    let buffer: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let stream = Stream::new(Arc::clone(&buffer));
    let content_type = stream.content_type_handle();
    let context = Context::new(
        invocation.execution_id.clone(),
        invocation.function_id,
        invocation.organization_id,
        stream,
    );
    let headers = invocation
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let request = Request::new(
        invocation.method,
        invocation.path,
        invocation.query,
        headers,
        Bytes::from(body),
    );
    let outcome = invoke(request, context);
    let streamed = buffer.lock().unwrap_or_else(|e| e.into_inner()).take();
    let response = match (streamed, outcome) {
        // As natively: once streaming began the return value is not sent,
        // and an error can only be logged.
        (Some(body), outcome) => {
            if let Err(message) = outcome {
                eprintln!(
                    "ignite: execution {} failed after streaming began: {message}",
                    invocation.execution_id
                );
            }
            let content_type = content_type.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Response::bytes(body).with_header("content-type", &content_type)
        }
        (None, Ok(response)) => response,
        (None, Err(message)) => {
            eprintln!("ignite: execution {} failed: {message}", invocation.execution_id);
            Response::error(500, &message)
        }
    };
    write_reply(response);
}

/// Writes the response envelope as one line; anything the handler printed
/// to stdout before stays on the lines above it.
fn write_reply(response: Response) {
    let mut headers = BTreeMap::new();
    for (name, value) in response.headers {
        headers.insert(name.to_ascii_lowercase(), value);
    }
    let reply = Reply {
        status: response.status,
        headers,
        body_b64: encode_base64(&response.body),
    };
    let line = serde_json::to_string(&reply).expect("the envelope serializes");
    let mut stdout = std::io::stdout().lock();
    // Nothing is left to tell when stdout is gone: the host then answers 500.
    let _ = writeln!(stdout, "\n{line}");
    let _ = stdout.flush();
}

/// Set when the future asks to be polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Drives a future to completion without an async runtime. A wasm run has
/// no reactor or timers, so a future that stays pending without waking
/// itself would wait forever: that is reported as the handler's error.
fn block_on<T>(future: impl Future<Output = T>) -> std::result::Result<T, String> {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut task = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut task) {
            return Ok(value);
        }
        if !flag.0.swap(false, Ordering::SeqCst) {
            return Err(
                "the handler awaited something that needs an async runtime (I/O or a timer), \
                        which wasm apps do not have"
                    .to_string(),
            );
        }
    }
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn encode_base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[(bits >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; whitespace is not accepted.
fn decode_base64(text: &str) -> std::result::Result<Vec<u8>, String> {
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for &digit in digits {
        let value = match digit {
            b'A'..=b'Z' => digit - b'A',
            b'a'..=b'z' => digit - b'a' + 26,
            b'0'..=b'9' => digit - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err("body_b64 is not base64".to_string()),
        };
        bits = bits << 6 | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Ok(out)
}
