//! The authentication layer of `/v2`: asks the [`Authenticator`] about a
//! request's credentials and lets it through, or answers the Basic challenge.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use http::header::AUTHORIZATION;

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
    match auth.check(header).await {
        Credentials::User(user) => {
            request.extensions_mut().insert(AuthenticatedUser(user));
            next.run(request).await
        }
        Credentials::Missing if auth.anonymous_read() && is_anonymous_read(&request) => {
            next.run(request).await
        }
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
