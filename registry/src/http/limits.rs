//! Request body limits for `/v2`: an idle timeout so a stalled or trickling
//! body cannot hold a connection (and an upload) forever, and a cap on upload
//! bodies received at once so memory and file descriptors stay bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONNECTION, RETRY_AFTER};
use http::{HeaderValue, Method, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::path::Route;
use crate::config::HttpConfig;
use crate::error::Error;

/// `http.timeouts.bodyidle` unless configured.
pub const DEFAULT_BODY_IDLE: Duration = Duration::from_secs(60);
/// `http.limits.concurrentuploads` unless configured.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 256;
/// What a refused upload is told to wait: long enough for a typical chunk to finish.
const RETRY_AFTER_SECS: &str = "5";

/// A request body delivered no bytes for the configured idle time.
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes received for {0:?}; the connection is closed, resume the upload")]
pub struct BodyIdle(pub Duration);

/// Shared limits; cloning shares the upload slots.
#[derive(Debug, Clone)]
pub struct Limits {
    body_idle: Duration,
    uploads: Arc<Semaphore>,
}

impl Limits {
    pub fn new(body_idle: Duration, concurrent_uploads: usize) -> Self {
        Limits {
            body_idle,
            uploads: Arc::new(Semaphore::new(concurrent_uploads)),
        }
    }

    /// Limits from `http.timeouts` and `http.limits`, with defaults.
    pub fn from_config(http: &HttpConfig) -> Self {
        let body_idle = http
            .timeouts
            .as_ref()
            .and_then(|t| t.bodyidle)
            .map_or(DEFAULT_BODY_IDLE, |d| d.0);
        let uploads = http
            .limits
            .as_ref()
            .and_then(|l| l.concurrentuploads)
            .unwrap_or(DEFAULT_CONCURRENT_UPLOADS);
        Limits::new(body_idle, uploads)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(DEFAULT_BODY_IDLE, DEFAULT_CONCURRENT_UPLOADS)
    }
}

/// Whether a request carries an upload body (end-4b, end-5, end-6 with data).
fn is_upload_body(request: &Request) -> bool {
    let upload_method = match request.extensions().get::<Route>() {
        Some(Route::UploadStart(_)) => request.method() == Method::POST,
        Some(Route::Upload(..)) => matches!(*request.method(), Method::PATCH | Method::PUT),
        _ => false,
    };
    // Session starts, mounts and body-less commits are cheap; only data transfers take a slot.
    upload_method && request.body().size_hint().exact() != Some(0)
}

/// Middleware: takes an upload slot (or answers 429) and watches the body for idleness.
pub async fn limit(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let _slot = if is_upload_body(&request) {
        match Arc::clone(&limits.uploads).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                // Not warn: a flood would fill the log; the access log shows the 429s.
                tracing::debug!("too many concurrent uploads; refusing with 429");
                let mut response =
                    Error::TooManyRequests("too many concurrent uploads; retry later".into())
                        .into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
                return response;
            }
        }
    } else {
        None
    };
    let fired = Arc::new(AtomicBool::new(false));
    let http1 = request.version() < Version::HTTP_2;
    let request =
        request.map(|body| Body::new(IdleBody::new(body, limits.body_idle, Arc::clone(&fired))));
    let mut response = next.run(request).await;
    if fired.load(Ordering::Acquire) {
        tracing::warn!(idle = ?limits.body_idle, "request body stalled; closing the connection");
        // The handler already answered with its error (and kept what arrived, so
        // the upload can resume); say why and drop the connection, whose unread
        // body would otherwise be waited for.
        *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
        if http1 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// A body that fails with [`BodyIdle`] when no frame arrives within `idle`
/// while it is being read. The timer only runs while the handler waits for
/// data, so slow storage on the server side never counts against the client.
struct IdleBody {
    inner: Body,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    fired: Arc<AtomicBool>,
}

impl IdleBody {
    fn new(inner: Body, idle: Duration, fired: Arc<AtomicBool>) -> Self {
        IdleBody {
            inner,
            idle,
            timer: None,
            fired,
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.fired.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyIdle(this.idle)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => {
                this.timer = None;
                return ready;
            }
        }
        let idle = this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if timer.as_mut().poll(cx).is_ready() {
            this.timer = None;
            this.fired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyIdle(idle)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_stalled_body_fails_after_the_idle_time() {
        let (tx, inner) = stream_body();
        let fired = Arc::new(AtomicBool::new(false));
        let mut body = IdleBody::new(inner, Duration::from_millis(200), Arc::clone(&fired));
        tx.try_send(Ok(Bytes::from_static(b"abc"))).unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abc");
        let started = std::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("no request body bytes"), "{err}");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        // The sender is still open: only idleness ended the body.
        drop(tx);
        assert!(fired.load(Ordering::Acquire));
    }

    type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

    /// A streaming body fed by the test.
    fn stream_body() -> (Sender, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (tx, Body::from_stream(stream))
    }
}
