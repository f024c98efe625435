//! The routing layer of `/v2`: parses the request path into a [`Route`] once,
//! as a request extension for every later layer and the handler, and labels
//! the response with it for the observing layer outside.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::path::{self, Route};

/// The low-cardinality route name a response answered, as a response
/// extension: the handler consumes the request's [`Route`], so layers outside
/// this one learn what was routed from the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLabel(pub &'static str);

/// The label of a path that is no API route.
pub const INVALID: RouteLabel = RouteLabel("invalid");

/// Middleware: inserts the [`Route`], or answers the path's error (before
/// authentication: a malformed path reveals nothing about the repository).
pub async fn route(mut request: Request, next: Next) -> Response {
    let (label, mut response) = match path::parse(request.uri().path(), request.method()) {
        Ok(route) => {
            let label = RouteLabel(route.label());
            request.extensions_mut().insert::<Route>(route);
            (label, next.run(request).await)
        }
        Err(error) => (INVALID, error.into_response()),
    };
    response.extensions_mut().insert(label);
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn;
    use http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    /// A stack of just this layer and a handler that reports the route it was given.
    fn app() -> Router {
        let handler =
            |request: Request| async move { format!("{:?}", request.extensions().get::<Route>()) };
        Router::new().fallback(handler).layer(from_fn(route))
    }

    async fn call(path: &str) -> Response {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn inserts_the_route_and_labels_the_response() {
        let response = call("/v2/library/alpine/tags/list").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.extensions().get::<RouteLabel>(),
            Some(&RouteLabel("tags"))
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert!(body.starts_with(b"Some(Tags("), "{body:?}");
    }

    #[tokio::test]
    async fn answers_a_bad_path_itself() {
        let response = call("/v2/Bad-Name/tags/list").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.extensions().get::<RouteLabel>(), Some(&INVALID));
        let response = call("/elsewhere").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.extensions().get::<RouteLabel>(), Some(&INVALID));
    }
}
