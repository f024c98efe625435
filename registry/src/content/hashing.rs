//! A body stream adapter that hashes bytes as they pass and enforces a length limit.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::oci::Hasher;
use crate::storage::AppendBody;

/// Hashes every chunk it yields and fails once more than `limit` bytes arrive.
///
/// A chunk that would cross the limit is not yielded (nor hashed), so the
/// bytes written by the consumer always equal the bytes hashed.
pub struct HashingStream<S> {
    inner: S,
    hasher: Hasher,
    seen: u64,
    limit: Option<u64>,
}

impl<S> HashingStream<S> {
    pub fn new(inner: S, hasher: Hasher, limit: Option<u64>) -> Self {
        HashingStream {
            inner,
            hasher,
            seen: 0,
            limit,
        }
    }

    /// Bytes yielded so far.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// The hash state after everything yielded so far.
    pub fn into_hasher(self) -> Hasher {
        self.hasher
    }
}

impl<S> AppendBody for HashingStream<S>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    fn checkpoint(&self) -> Option<Bytes> {
        Some(Bytes::from(self.hasher.checkpoint()))
    }
}

impl<S> std::fmt::Debug for HashingStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingStream")
            .field("seen", &self.seen)
            .field("limit", &self.limit)
            .finish()
    }
}

impl<S> Stream for HashingStream<S>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let total = this.seen + chunk.len() as u64;
                if this.limit.is_some_and(|limit| total > limit) {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request body is longer than its declared length",
                    ))));
                }
                this.seen = total;
                this.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Algorithm;
    use futures_util::{StreamExt, stream};

    #[tokio::test]
    async fn hashes_what_it_yields_and_stops_at_the_limit() {
        let chunks = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"def")),
        ];
        let mut hashing =
            HashingStream::new(stream::iter(chunks), Algorithm::Sha256.hasher(), Some(4));
        assert_eq!(hashing.next().await.unwrap().unwrap(), "abc");
        assert!(hashing.next().await.unwrap().is_err());
        assert_eq!(hashing.bytes_seen(), 3);
        assert_eq!(
            hashing.into_hasher().finish(),
            Algorithm::Sha256.digest_of(b"abc")
        );
    }
}
