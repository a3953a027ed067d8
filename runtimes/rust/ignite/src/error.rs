//! The error a handler returns; its message becomes `{"error": ...}`.

use std::fmt;

/// A handler's error. Any `std::error::Error` converts into it with `?`;
/// [`Error::msg`] makes one from a message.
pub struct Error {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result<T, ignite::Error>`, the handler's return type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message and no underlying cause.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
            source: None,
        }
    }

    /// The underlying error, when this one was converted from another.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

// Error deliberately does not implement std::error::Error: that would make
// this blanket conversion overlap with `From<T> for T`.
impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Error {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}
