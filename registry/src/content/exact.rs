//! A read stream adapter that yields exactly the length it was asked for or
//! ends in an error, never a clean end short of it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::storage::ByteStream;

/// Passes `len` bytes of `inner` through; if `inner` ends before that (the
/// object was cut short while being read) or runs past it, yields an error
/// instead of ending.
///
/// A blob response has already promised `Content-Length: len` when its body
/// starts. A body stream that merely ends early is sent as a complete one
/// where the protocol allows it (HTTP/2 ends the stream with END_STREAM and
/// leaves it to the client to notice the length), so a client could take a
/// truncated blob for the whole of it. A stream that errors is aborted
/// instead: hyper closes the HTTP/1.1 connection or resets the HTTP/2 stream.
pub struct ExactLength {
    inner: ByteStream,
    path: String,
    remaining: u64,
    finished: bool,
}

impl ExactLength {
    pub fn new(inner: ByteStream, path: impl Into<String>, len: u64) -> Self {
        ExactLength {
            inner,
            path: path.into(),
            remaining: len,
            finished: false,
        }
    }

    /// Ends the stream with `error`, logged: the client only sees its
    /// connection cut, so this is where an operator learns why.
    fn fail(&mut self, kind: io::ErrorKind, message: String) -> Poll<Option<io::Result<Bytes>>> {
        self.finished = true;
        tracing::warn!(path = %self.path, "aborting a read: {message}");
        Poll::Ready(Some(Err(io::Error::new(kind, message))))
    }
}

impl std::fmt::Debug for ExactLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactLength")
            .field("path", &self.path)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl Stream for ExactLength {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let len = chunk.len() as u64;
                if len > this.remaining {
                    let message = format!(
                        "{} yielded {} bytes more than it was asked for",
                        this.path,
                        len - this.remaining
                    );
                    return this.fail(io::ErrorKind::InvalidData, message);
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) if this.remaining > 0 => {
                let message = format!(
                    "{} ended {} bytes short (cut short while being read)",
                    this.path, this.remaining
                );
                this.fail(io::ErrorKind::UnexpectedEof, message)
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{StreamExt, stream};

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        Box::pin(stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        ))
    }

    async fn outcome(parts: &[&'static [u8]], len: u64) -> (Vec<u8>, Option<io::ErrorKind>) {
        let mut stream = ExactLength::new(chunks(parts), "blob", len);
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(e) => {
                    assert!(stream.next().await.is_none(), "nothing after the error");
                    return (got, Some(e.kind()));
                }
            }
        }
        (got, None)
    }

    #[tokio::test]
    async fn the_exact_length_ends_cleanly() {
        assert_eq!(
            outcome(&[b"abc", b"def"], 6).await,
            (b"abcdef".to_vec(), None)
        );
        assert_eq!(outcome(&[], 0).await, (Vec::new(), None));
    }

    #[tokio::test]
    async fn a_short_read_ends_in_an_error_not_a_clean_end() {
        assert_eq!(
            outcome(&[b"abc", b"de"], 6).await,
            (b"abcde".to_vec(), Some(io::ErrorKind::UnexpectedEof))
        );
        assert_eq!(
            outcome(&[], 1).await,
            (Vec::new(), Some(io::ErrorKind::UnexpectedEof))
        );
    }

    #[tokio::test]
    async fn a_long_read_fails_before_yielding_the_excess() {
        assert_eq!(
            outcome(&[b"abc", b"def"], 5).await,
            (b"abc".to_vec(), Some(io::ErrorKind::InvalidData))
        );
    }

    #[tokio::test]
    async fn an_error_from_storage_passes_through_and_ends_the_stream() {
        let inner: ByteStream = Box::pin(stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(io::Error::other("connection reset")),
            Ok(Bytes::from_static(b"cd")),
        ]));
        let mut stream = ExactLength::new(inner, "blob", 4);
        assert_eq!(stream.next().await.unwrap().unwrap(), "ab");
        assert_eq!(
            stream.next().await.unwrap().unwrap_err().kind(),
            io::ErrorKind::Other
        );
        assert!(stream.next().await.is_none());
    }
}
