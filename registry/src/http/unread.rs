//! A response sent before its HTTP/1 request body was read to the end (a
//! 401 on a push, a refused write) says `Connection: close`: the server
//! cannot reuse that connection (the unread bytes are still in it), and a
//! client that is not told so may send its next request on it and get EOF.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONNECTION;
use http::{HeaderValue, Version};
use http_body::{Body as _, Frame, SizeHint};

/// Middleware: marks responses to HTTP/1 requests whose body was left unread.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let has_body = request.body().size_hint().exact() != Some(0);
    if request.version() >= Version::HTTP_2 || !has_body {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let tracked = Arc::clone(&finished);
    let request = request.map(|inner| {
        Body::new(TrackedBody {
            inner,
            finished: tracked,
        })
    });
    let mut response = next.run(request).await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A body that records when it has been read to its end.
struct TrackedBody {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
