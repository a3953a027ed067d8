//! The response body type the server hands to hyper: either one buffer or
//! the chunks a handler streams through `ctx.stream()`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

pub(crate) enum ResponseBody {
    /// A complete body; sent with a Content-Length.
    Full(Option<Bytes>),
    /// `first`, then whatever arrives until every sender is dropped; sent
    /// chunked.
    Streaming {
        first: Option<Bytes>,
        rest: mpsc::Receiver<Bytes>,
    },
}

impl ResponseBody {
    pub(crate) fn full(data: Bytes) -> Self {
        ResponseBody::Full(Some(data))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            ResponseBody::Streaming { first, rest } => match first.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => rest
                    .poll_recv(cx)
                    .map(|data| data.map(|data| Ok(Frame::data(data)))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Streaming { .. } => SizeHint::default(),
        }
    }
}
