//! Object store failures as [`StorageError`]s that name the bucket, the path
//! and the S3 error code (`AccessDenied`, `NoSuchBucket`, ...). Request
//! signatures travel in headers, so messages never contain credentials.

use crate::storage::StorageError;

/// Maps an `object_store` error for `path`.
pub(super) fn from_object_store(
    bucket: &str,
    path: &str,
    error: object_store::Error,
) -> StorageError {
    match error {
        object_store::Error::NotFound { .. } => StorageError::NotFound(path.to_owned()),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            StorageError::Conflict(path.to_owned())
        }
        other => remote(bucket, path, &other.to_string()),
    }
}

/// A failure described by `text` (an error chain or a response body).
pub(super) fn remote(bucket: &str, path: &str, text: &str) -> StorageError {
    let (code, message) = describe(text);
    if code == "AccessDenied" {
        // S3 answers 403 instead of 404 for a missing key when the caller
        // may not list the bucket, so a missing permission looks like this.
        return StorageError::Remote {
            bucket: bucket.to_owned(),
            path: path.to_owned(),
            code,
            message: format!(
                "{message} (Berth needs s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload)"
            ),
        };
    }
    StorageError::Remote {
        bucket: bucket.to_owned(),
        path: path.to_owned(),
        code,
        message,
    }
}

/// The S3 error code and message in `text`, or a short description when it
/// carries no S3 error document (connection failures, bare HTTP statuses).
pub(super) fn describe(text: &str) -> (String, String) {
    if let Some(code) = element(text, "Code") {
        let message = element(text, "Message").unwrap_or_default();
        return (code, message);
    }
    let code = status_of(text).map_or_else(|| "RequestFailed".to_owned(), |s| format!("HTTP{s}"));
    (code, text.chars().take(300).collect())
}

/// The text of the first `<name>...</name>` element.
pub(super) fn element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(text[start..end].trim().to_owned())
}

/// The HTTP status in object_store's "status code: 403 Forbidden" text.
fn status_of(text: &str) -> Option<u16> {
    let rest = text.split("status code: ").nth(1)?;
    rest.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_s3_code_and_bucket() {
        let text = "Error performing GET http://127.0.0.1:1/b/k in 2ms - Server returned non-2XX status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let error = remote("b", "docker/k", text);
        let shown = error.to_string();
        assert!(shown.contains("bucket b"), "{shown}");
        assert!(
            shown.contains("NoSuchBucket: The specified bucket does not exist"),
            "{shown}"
        );
        let denied = remote(
            "b",
            "k",
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        );
        assert!(denied.to_string().contains("s3:ListBucket"));
        assert_eq!(
            describe("status code: 503 Service Unavailable").0,
            "HTTP503"
        );
        assert_eq!(describe("connection refused").0, "RequestFailed");
    }
}
