//! The Rust SDK of Ignite's managed Rust runtime.
//!
//! An app is one function annotated with [`macro@main`]:
//!
//! ```ignore
//! use ignite::prelude::*;
//!
//! #[ignite::main]
//! async fn handler(req: Request, ctx: Context) -> Result<impl IntoResponse> {
//!     let name: String = req.field("name").unwrap_or_else(|_| "world".to_string());
//!     Ok(json!({ "greeting": format!("Hello, {name}!"), "execution_id": ctx.execution_id() }))
//! }
//! ```
//!
//! The SDK owns the HTTP server that speaks the platform's pod protocol: it
//! listens on the unix socket named by `IGNITE_SOCKET` (or on `IGNITE_PORT`),
//! answers the readiness probe, hands every other request to the handler,
//! turns an `Err` or a panic into `500 {"error": ...}` and keeps serving, and
//! drains in-flight requests on `SIGTERM`.
//!
//! Built for `wasm32` (`wasm32-wasip2`), the program is instead a WASI command
//! that answers exactly one invocation: the platform's Wasmtime host serves
//! the pod protocol and runs the component once per request (see `wasm`).

#[cfg(not(target_arch = "wasm32"))]
mod body;
mod context;
mod error;
mod request;
mod response;
#[cfg(not(target_arch = "wasm32"))]
mod server;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use context::{Context, Env, Stream, TempStore};
pub use error::{Error, Result};
pub use ignite_macros::main;
pub use request::Request;
pub use response::{IntoResponse, Response};
pub use serde_json::json;

/// Everything a handler usually needs: `use ignite::prelude::*;`.
pub mod prelude {
    pub use crate::{json, Context, Error, IntoResponse, Request, Response, Result};
}

/// Called by the code `#[ignite::main]` generates; not a public API.
#[doc(hidden)]
pub mod __rt {
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::server::{serve_async, serve_sync};
    #[cfg(target_arch = "wasm32")]
    pub use crate::wasm::{serve_async, serve_sync};
}
