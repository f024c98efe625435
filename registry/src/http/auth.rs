//! The authentication layer of `/v2`: asks the authenticator about a
//! request's credentials and lets it through, answers the Basic challenge,
//! or refuses a client that failed too often with 429.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderValue, Method};

use super::path::Route;
use crate::auth::Credentials;
use crate::error::Error;
use crate::state::AppState;

/// The authenticated user of a request, for logs.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub String);

/// Middleware: lets a request through when its credentials are valid, or
/// when it is an anonymous pull and anonymous reads are allowed.
pub async fn require(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(auth) = &state.auth else {
        return next.run(request).await;
    };
    let header = request.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    // Set by the server for every connection; absent only when the router is
    // driven without one (then only the per-user limit applies).
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    match auth.check(header, client).await {
        Credentials::User(user) => {
            request.extensions_mut().insert(AuthenticatedUser(user));
            next.run(request).await
        }
        Credentials::Missing if auth.anonymous_read() && is_anonymous_read(&request) => {
            next.run(request).await
        }
        Credentials::Limited(wait) => too_many_failures(wait),
        _ => Error::Unauthorized {
            challenge: auth.challenge(),
        }
        .into_response(),
    }
}

/// Pull-only requests. `/v2/` still challenges so `docker login` and pushes
/// learn that credentials exist.
fn is_anonymous_read(request: &Request) -> bool {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let base = matches!(
        request.extensions().get::<Route>(),
        Some(Route::Base) | None
    );
    read && !base
}

/// 429 with the whole seconds until the client may try again (at least 1).
fn too_many_failures(wait: Duration) -> Response {
    // Not warn: a flood would fill the log; the access log shows the 429s.
    tracing::debug!(?wait, "too many failed logins; refusing with 429");
    let mut response = Error::TooManyRequests("too many failed login attempts; retry later".into())
        .into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
