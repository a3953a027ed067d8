//! The invocation's HTTP request as the handler sees it.

use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// The request that invoked the app: the raw body plus the HTTP method, path,
/// query and headers. The body is parsed as JSON the first time a typed
/// accessor ([`Request::field`], [`Request::body`]) needs it.
pub struct Request {
    method: String,
    path: String,
    query: String,
    /// (name, value) in arrival order; names are lowercase.
    headers: Vec<(String, String)>,
    raw: Bytes,
    json: OnceLock<std::result::Result<Value, String>>,
}

impl Request {
    pub(crate) fn new(
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        raw: Bytes,
    ) -> Self {
        Request {
            method,
            path,
            query,
            headers,
            raw,
            json: OnceLock::new(),
        }
    }

    /// The top-level field `key` of the JSON body, deserialized into `T`.
    /// Fails when the body is not a JSON object, the field is missing, or it
    /// does not fit `T`.
    pub fn field<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let value = self
            .json()?
            .get(key)
            .ok_or_else(|| Error::msg(format!("the request body has no field {key:?}")))?;
        T::deserialize(value).map_err(|e| Error::msg(format!("field {key:?}: {e}")))
    }

    /// The whole JSON body deserialized into `T`.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.raw)?)
    }

    /// The body's bytes, unparsed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The HTTP method, e.g. `"POST"`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request path, e.g. `"/"`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// The first value of header `name` (case-insensitive), when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Result<&Value> {
        self.json
            .get_or_init(|| {
                serde_json::from_slice(&self.raw).map_err(|e| format!("the request body is not JSON: {e}"))
            })
            .as_ref()
            .map_err(Error::msg)
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and
/// `%XX` a byte; malformed escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex_value(bytes[i + 1]).zip(hex_value(bytes[i + 2])),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some((high, low))) => {
                decoded.push(high << 4 | low);
                i += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                i += 1;
            }
            (byte, None) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, body: &str) -> Request {
        Request::new(
            "POST".into(),
            "/".into(),
            query.into(),
            vec![("content-type".into(), "application/json".into())],
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn query_params_are_decoded() {
        let req = request("a=1&name=hi+there%21%zz&empty", "");
        assert_eq!(req.query_param("name").as_deref(), Some("hi there!%zz"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
    }

    #[test]
    fn fields_are_typed() {
        let req = request("", r#"{"message": "hi", "n": 3}"#);
        assert_eq!(req.field::<String>("message").unwrap(), "hi");
        assert_eq!(req.field::<u32>("n").unwrap(), 3);
        assert!(req.field::<String>("n").is_err());
        assert!(req.field::<String>("absent").is_err());
        assert_eq!(req.header("Content-Type"), Some("application/json"));
    }
}
