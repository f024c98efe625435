//! The connection loop: plain or TLS, HTTP/1.1 and HTTP/2, header read
//! timeouts against slow clients, per-client connection and per-connection
//! stream limits against greedy ones, and graceful shutdown that lets
//! in-flight requests finish (up to a drain timeout).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::HttpConfig;
use crate::connections::{
    ConnectionLimit, DEFAULT_CONNECTIONS_PER_CLIENT, DEFAULT_STREAMS_PER_CONNECTION,
};
use crate::tls::TlsReloader;

/// Clients must send complete request headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// TLS handshakes must complete within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// `http.limits.connectionsperclient` and `streamsperconnection`.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub per_client: Arc<ConnectionLimit>,
    pub streams_per_connection: u32,
}

impl ConnectionLimits {
    pub fn from_config(http: &HttpConfig) -> Self {
        let limits = http.limits.as_ref();
        ConnectionLimits {
            per_client: ConnectionLimit::new(
                limits
                    .and_then(|l| l.connectionsperclient)
                    .unwrap_or(DEFAULT_CONNECTIONS_PER_CLIENT),
            ),
            streams_per_connection: limits
                .and_then(|l| l.streamsperconnection)
                .unwrap_or(DEFAULT_STREAMS_PER_CONNECTION),
        }
    }

    /// For listeners that are private by deployment (the debug listener).
    pub fn unlimited() -> Self {
        ConnectionLimits {
            per_client: ConnectionLimit::new(0),
            streams_per_connection: DEFAULT_STREAMS_PER_CONNECTION,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and waits up to `drain` for open requests to complete.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsReloader>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.streams_per_connection);
    let builder = Arc::new(builder);

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limits.per_client.admit(peer.ip()) else {
            // Closed before any byte is read: the client's other connections
            // keep working and it may retry. Debug: a flood must not fill the log.
            tracing::debug!(%peer, "too many connections from this client; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = Arc::clone(&builder);
        // Each request carries its peer address, as axum's own server does, for
        // per-client limits.
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        // The config of the moment: certificate and client CA reloads apply to new connections.
        let acceptor = tls.as_ref().map(|tls| TlsAcceptor::from(tls.current()));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match acceptor {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder
                                .serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(drain) => tracing::warn!(?drain, "drain timeout reached; closing remaining connections"),
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
