//! Request body limits for `/v2`: an idle timeout and a minimum transfer rate
//! so a stalled or trickling body cannot hold a connection (and an upload
//! slot) forever, and a cap on upload bodies received at once so memory and
//! file descriptors stay bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
/// `http.timeouts.bodyminrate` unless configured: 10 KiB/s, far below any
/// real link, far above a client trickling bytes to keep a slot.
pub const DEFAULT_BODY_MIN_RATE: u64 = 10 * 1024;
/// `http.limits.concurrentuploads` unless configured.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 256;
/// What a refused upload is told to wait: long enough for a typical chunk to finish.
const RETRY_AFTER_SECS: &str = "5";

/// Why a request body was cut off.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyTooSlow {
    #[error(
        "no request body bytes received for {0:?}; the connection is closed, resume the upload"
    )]
    Idle(Duration),
    #[error(
        "request body arrived at {rate} bytes/s over {window:?}, below the minimum of {min} \
         bytes/s; the connection is closed, resume the upload"
    )]
    BelowMinRate {
        rate: u64,
        min: u64,
        window: Duration,
    },
}

/// How slow a body may be: no bytes for `idle` ends it, and so does a rate
/// below `min_rate` bytes/s over any `idle`-long stretch of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    pub idle: Duration,
    /// 0 turns the rate check off.
    pub min_rate: u64,
}

/// Shared limits; cloning shares the upload slots.
#[derive(Debug, Clone)]
pub struct Limits {
    pace: BodyPace,
    uploads: Arc<Semaphore>,
}

impl Limits {
    pub fn new(pace: BodyPace, concurrent_uploads: usize) -> Self {
        Limits {
            pace,
            uploads: Arc::new(Semaphore::new(concurrent_uploads)),
        }
    }

    /// Limits from `http.timeouts` and `http.limits`, with defaults.
    pub fn from_config(http: &HttpConfig) -> Self {
        let timeouts = http.timeouts.as_ref();
        let pace = BodyPace {
            idle: timeouts
                .and_then(|t| t.bodyidle)
                .map_or(DEFAULT_BODY_IDLE, |d| d.0),
            min_rate: timeouts
                .and_then(|t| t.bodyminrate)
                .unwrap_or(DEFAULT_BODY_MIN_RATE),
        };
        let uploads = http
            .limits
            .as_ref()
            .and_then(|l| l.concurrentuploads)
            .unwrap_or(DEFAULT_CONCURRENT_UPLOADS);
        Limits::new(pace, uploads)
    }
}

impl Default for Limits {
    fn default() -> Self {
        let pace = BodyPace {
            idle: DEFAULT_BODY_IDLE,
            min_rate: DEFAULT_BODY_MIN_RATE,
        };
        Limits::new(pace, DEFAULT_CONCURRENT_UPLOADS)
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

/// Middleware: takes an upload slot (or answers 429) and watches the body's pace.
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
    let verdict = Arc::new(OnceLock::new());
    let http1 = request.version() < Version::HTTP_2;
    let request =
        request.map(|body| Body::new(PacedBody::new(body, limits.pace, Arc::clone(&verdict))));
    let mut response = next.run(request).await;
    if let Some(reason) = verdict.get() {
        tracing::warn!(%reason, "request body too slow; closing the connection");
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

/// A body that fails with [`BodyTooSlow`] when no frame arrives within
/// `pace.idle`, or when, after at least `pace.idle` of waiting, the bytes
/// received over that wait are below `pace.min_rate` per second. Only time
/// spent waiting for the client counts: slow storage on the server side
/// (which stops reading) never counts against it.
struct PacedBody {
    inner: Body,
    pace: BodyPace,
    timer: Option<Pin<Box<Sleep>>>,
    /// When the current wait for a frame began.
    waiting_since: Option<Instant>,
    /// Waiting time and bytes in the current rate window.
    waited: Duration,
    received: u64,
    verdict: Arc<OnceLock<BodyTooSlow>>,
}

impl PacedBody {
    fn new(inner: Body, pace: BodyPace, verdict: Arc<OnceLock<BodyTooSlow>>) -> Self {
        PacedBody {
            inner,
            pace,
            timer: None,
            waiting_since: None,
            waited: Duration::ZERO,
            received: 0,
            verdict,
        }
    }

    /// Accounts a frame that ended a wait; a window long enough whose rate is
    /// too low is the verdict, otherwise a full window starts over.
    fn account(&mut self, bytes: u64) -> Option<BodyTooSlow> {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.received += bytes;
        if self.waited < self.pace.idle {
            return None;
        }
        let rate = (self.received as f64 / self.waited.as_secs_f64()) as u64;
        if self.pace.min_rate > 0 && rate < self.pace.min_rate {
            return Some(BodyTooSlow::BelowMinRate {
                rate,
                min: self.pace.min_rate,
                window: self.waited,
            });
        }
        self.waited = Duration::ZERO;
        self.received = 0;
        None
    }

    fn fail(&self, reason: BodyTooSlow) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let reason = self.verdict.get_or_init(|| reason).clone();
        Poll::Ready(Some(Err(axum::Error::new(reason))))
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Some(reason) = this.verdict.get() {
            return Poll::Ready(Some(Err(axum::Error::new(reason.clone()))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            Poll::Ready(frame) => {
                this.timer = None;
                let bytes = match &frame {
                    Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => 0,
                };
                if let Some(reason) = this.account(bytes) {
                    return this.fail(reason);
                }
                return Poll::Ready(frame);
            }
        }
        this.waiting_since.get_or_insert_with(Instant::now);
        let idle = this.pace.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if timer.as_mut().poll(cx).is_ready() {
            this.timer = None;
            return this.fail(BodyTooSlow::Idle(idle));
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
        let verdict = Arc::new(OnceLock::new());
        let pace = BodyPace {
            idle: Duration::from_millis(200),
            min_rate: 0,
        };
        let mut body = PacedBody::new(inner, pace, Arc::clone(&verdict));
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
        assert!(matches!(verdict.get(), Some(BodyTooSlow::Idle(_))));
    }

    #[tokio::test]
    async fn a_trickle_below_the_minimum_rate_fails_after_one_window() {
        let (tx, inner) = stream_body();
        let verdict = Arc::new(OnceLock::new());
        let pace = BodyPace {
            idle: Duration::from_millis(300),
            min_rate: 1000,
        };
        let mut body = PacedBody::new(inner, pace, Arc::clone(&verdict));
        // One byte every 50 ms: never idle, 20 bytes/s.
        let feeder = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    return;
                }
            }
        });
        let started = std::time::Instant::now();
        let err = loop {
            match body.frame().await.unwrap() {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        let elapsed = started.elapsed();
        assert!(err.to_string().contains("below the minimum"), "{err}");
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(matches!(
            verdict.get(),
            Some(BodyTooSlow::BelowMinRate { .. })
        ));
        feeder.abort();
    }

    #[tokio::test]
    async fn a_body_above_the_minimum_rate_is_delivered_whole() {
        let (tx, inner) = stream_body();
        let verdict = Arc::new(OnceLock::new());
        let pace = BodyPace {
            idle: Duration::from_millis(100),
            min_rate: 1000,
        };
        let body = PacedBody::new(inner, pace, Arc::clone(&verdict));
        // 100 bytes every 20 ms (5,000 bytes/s) across several windows.
        tokio::spawn(async move {
            for _ in 0..25 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send(Ok(Bytes::from(vec![b'x'; 100]))).await.unwrap();
            }
        });
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 2500);
        assert!(verdict.get().is_none());
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
