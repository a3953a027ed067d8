//! What a handler returns and how it becomes an HTTP response.

use bytes::Bytes;
use serde::Serialize;

/// A complete HTTP response. Handlers usually return a JSON value instead;
/// `Response` is for a different status, content type or headers.
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Response {
    /// `200` with `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response::bytes(body).with_header("content-type", "application/json"),
            Err(error) => Response::error(500, &format!("the response is not serializable: {error}")),
        }
    }

    /// `200` with `text` as `text/plain; charset=utf-8`.
    pub fn text(text: impl Into<String>) -> Self {
        Response::bytes(text.into()).with_header("content-type", "text/plain; charset=utf-8")
    }

    /// `200` with `body` as `application/octet-stream` unless a content-type
    /// header is set.
    pub fn bytes(body: impl Into<Bytes>) -> Self {
        Response {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same response with another status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same response with header `name` set to `value` (replacing it).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The pod protocol's error shape: `status` with `{"error": message}`.
    pub(crate) fn error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "error": message }).to_string();
        Response::bytes(body)
            .with_header("content-type", "application/json")
            .with_status(status)
    }
}

/// Anything a handler may return. Every `Serialize` type is sent as JSON with
/// status `200` (for example `json!({...})`, a `#[derive(Serialize)]` struct,
/// a `String`); a [`Response`] is sent as it is.
pub trait IntoResponse {
    /// The HTTP response for this value.
    fn into_response(self) -> Response;
}

impl<T: Serialize> IntoResponse for T {
    fn into_response(self) -> Response {
        Response::json(&self)
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}
