//! Registry errors and their OCI Distribution wire form:
//! `{"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":...}]}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header::{ALLOW, CONTENT_RANGE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::oci::{Digest, ManifestError, NameError};
use crate::storage::StorageError;

/// Result alias used by content operations and handlers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a registry request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob unknown to registry")]
    BlobUnknown(Digest),
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("provided digest did not match uploaded content")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("invalid digest: {0}")]
    DigestInvalid(String),
    #[error("manifest references a manifest or blob unknown to registry")]
    ManifestBlobUnknown(Digest),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest exceeds the {limit} byte limit")]
    ManifestTooLarge { limit: usize },
    #[error("manifest unknown to registry")]
    ManifestUnknown(String),
    #[error("manifest of type {media_type} is not acceptable to the client (Accept: {accept})")]
    ManifestNotAcceptable { media_type: String, accept: String },
    #[error("{0}")]
    NameInvalid(String),
    #[error("repository name not known to registry")]
    NameUnknown(String),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    #[error("upload chunk out of order: the upload has {current} bytes")]
    UploadOutOfOrder { current: u64, location: String },
    #[error("authentication required")]
    Unauthorized { challenge: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("unknown API endpoint")]
    NotFound,
    #[error("pagination parameter invalid: {0}")]
    PaginationInvalid(String),
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<NameError> for Error {
    fn from(err: NameError) -> Self {
        match err {
            NameError::InvalidDigest(e) => Error::DigestInvalid(e.to_string()),
            NameError::InvalidTag => Error::ManifestInvalid(err.to_string()),
            NameError::NameTooLong | NameError::InvalidName => Error::NameInvalid(err.to_string()),
        }
    }
}

impl From<ManifestError> for Error {
    fn from(err: ManifestError) -> Self {
        Error::ManifestInvalid(err.to_string())
    }
}

impl Error {
    /// HTTP status and spec error code.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            Error::BlobUploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            Error::BlobUploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            Error::DigestMismatch { .. } | Error::DigestInvalid(_) => {
                (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
            }
            Error::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            Error::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            Error::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID"),
            Error::ManifestUnknown(_) | Error::ManifestNotAcceptable { .. } => {
                (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
            }
            Error::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            Error::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            Error::SizeInvalid(_) => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
            Error::RangeNotSatisfiable { .. } | Error::UploadOutOfOrder { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID")
            }
            Error::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Error::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Error::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
            Error::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Error::PaginationInvalid(_) => (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID"),
            Error::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
            Error::Storage(StorageError::Source(_)) => {
                (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
            }
            Error::Storage(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        }
    }

    /// Machine-readable detail for the error body.
    fn detail(&self) -> serde_json::Value {
        match self {
            Error::BlobUnknown(digest) | Error::ManifestBlobUnknown(digest) => {
                json!({ "digest": digest.to_string() })
            }
            Error::DigestMismatch { expected, actual } => {
                json!({ "expected": expected.to_string(), "actual": actual.to_string() })
            }
            Error::ManifestUnknown(reference) => json!({ "reference": reference }),
            Error::NameUnknown(name) => json!({ "name": name }),
            Error::UploadOutOfOrder { current, .. } => json!({ "size": current }),
            _ => serde_json::Value::Null,
        }
    }

    /// Whether this is a server-side failure worth logging at error level.
    pub fn is_internal(&self) -> bool {
        self.status_and_code().0.is_server_error()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            // Details of internal failures go to the log, not to clients.
            tracing::error!(error = %self, "request failed");
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        let body =
            json!({ "errors": [{ "code": code, "message": message, "detail": self.detail() }] });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Error::Unauthorized { challenge } => {
                if let Ok(value) = HeaderValue::from_str(challenge) {
                    headers.insert(WWW_AUTHENTICATE, value);
                }
            }
            Error::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            Error::RangeNotSatisfiable { size } => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(CONTENT_RANGE, value);
                }
            }
            Error::UploadOutOfOrder { current, location } => {
                if let Ok(value) = HeaderValue::from_str(location) {
                    headers.insert(LOCATION, value);
                }
                let range = format!("0-{}", current.saturating_sub(1));
                if let Ok(value) = HeaderValue::from_str(&range) {
                    headers.insert("range", value);
                }
            }
            _ => {}
        }
        response
    }
}
