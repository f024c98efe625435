//! Parses `/v2/...` request paths into routes. Repository names contain
//! slashes, so the path is matched from its end; everything is validated
//! here, so nothing from a URL reaches storage unchecked.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::content::{Access, UploadId};
use crate::error::{Error, Result};
use crate::oci::{Digest, NameError, Reference, RepositoryName};

/// An OCI Distribution API endpoint with its validated parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// end-1 `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// end-8 `/v2/<name>/tags/list`
    Tags(RepositoryName),
    /// end-3, end-7, end-9 `/v2/<name>/manifests/<reference>`
    Manifest(RepositoryName, Reference),
    /// end-2, end-10 `/v2/<name>/blobs/<digest>`
    Blob(RepositoryName, Digest),
    /// end-4, end-11 `/v2/<name>/blobs/uploads/`
    UploadStart(RepositoryName),
    /// end-5, end-6, end-13, cancel `/v2/<name>/blobs/uploads/<id>`
    Upload(RepositoryName, UploadId),
    /// end-12 `/v2/<name>/referrers/<digest>`
    Referrers(RepositoryName, Digest),
}

impl Route {
    /// Low-cardinality name for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags(_) => "tags",
            Route::Manifest(..) => "manifest",
            Route::Blob(..) => "blob",
            Route::UploadStart(_) | Route::Upload(..) => "blob_upload",
            Route::Referrers(..) => "referrers",
        }
    }

    /// What `method` on this route does to storage; a method the route does
    /// not allow reads nothing (it is answered `405 METHOD NOT ALLOWED`).
    pub fn access(&self, method: &Method) -> Access {
        match (self, method.clone()) {
            (Route::Manifest(..), Method::PUT)
            | (Route::UploadStart(_), Method::POST)
            | (Route::Upload(..), Method::PATCH | Method::PUT | Method::DELETE) => Access::Write,
            (Route::Manifest(..) | Route::Blob(..), Method::DELETE) => Access::Delete,
            _ => Access::Read,
        }
    }

    /// The `Allow` header for a 405 on this route.
    pub fn allowed_methods(&self) -> &'static str {
        match self {
            Route::Base | Route::Catalog | Route::Tags(_) | Route::Referrers(..) => "GET, HEAD",
            Route::Manifest(..) => "GET, HEAD, PUT, DELETE",
            Route::Blob(..) => "GET, HEAD, DELETE",
            Route::UploadStart(_) => "POST",
            Route::Upload(..) => "GET, PATCH, PUT, DELETE",
        }
    }
}

/// Parses a request path. Paths outside `/v2` are [`Error::NotFound`].
/// A malformed tag is 404 `MANIFEST_UNKNOWN` for reads (no such manifest can
/// exist, and the conformance suite expects 404) but 400 for pushes.
pub fn parse(raw_path: &str, method: &Method) -> Result<Route> {
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| Error::NameInvalid("request path is not valid UTF-8".into()))?;
    let path = decoded.as_ref();
    let rest = match path.strip_prefix("/v2") {
        Some("" | "/") => return Ok(Route::Base),
        Some(rest) => rest.strip_prefix('/').ok_or(Error::NotFound)?,
        None => return Err(Error::NotFound),
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let name_of = |len: usize| -> Result<RepositoryName> {
        if len == 0 {
            return Err(Error::NotFound);
        }
        Ok(segments[..len].join("/").parse()?)
    };
    let n = segments.len();
    let tail = |k: usize| if n >= k { &segments[n - k..] } else { &[][..] };

    match tail(3) {
        ["blobs", "uploads", ""] => return Ok(Route::UploadStart(name_of(n - 3)?)),
        ["blobs", "uploads", id] => {
            let name = name_of(n - 3)?;
            return Ok(Route::Upload(name, id.parse()?));
        }
        _ => {}
    }
    match tail(2) {
        ["tags", "list"] => Ok(Route::Tags(name_of(n - 2)?)),
        ["blobs", "uploads"] => Ok(Route::UploadStart(name_of(n - 2)?)),
        ["manifests", reference] => {
            let name = name_of(n - 2)?;
            let parsed = reference.parse::<Reference>().map_err(|e| match e {
                NameError::InvalidTag if method != Method::PUT => {
                    Error::ManifestUnknown((*reference).to_owned())
                }
                other => Error::from(other),
            })?;
            Ok(Route::Manifest(name, parsed))
        }
        ["blobs", digest] => {
            let name = name_of(n - 2)?;
            Ok(Route::Blob(name, parse_digest(digest)?))
        }
        ["referrers", digest] => {
            let name = name_of(n - 2)?;
            Ok(Route::Referrers(name, parse_digest(digest)?))
        }
        _ => Err(Error::NotFound),
    }
}

fn parse_digest(text: &str) -> Result<Digest> {
    text.parse()
        .map_err(|e: crate::oci::DigestError| Error::DigestInvalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const UPLOAD: &str = "0a9e4a5d-7c43-4c31-9d0c-2f3a6f3e4b10";

    fn parse_get(path: &str) -> Result<Route> {
        parse(path, &Method::GET)
    }

    fn name(s: &str) -> RepositoryName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(parse_get("/v2/").unwrap(), Route::Base);
        assert_eq!(parse_get("/v2").unwrap(), Route::Base);
        assert_eq!(parse_get("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            parse_get("/v2/a/b/tags/list").unwrap(),
            Route::Tags(name("a/b"))
        );
        assert_eq!(
            parse_get("/v2/a/manifests/latest").unwrap(),
            Route::Manifest(name("a"), "latest".parse().unwrap())
        );
        assert_eq!(
            parse_get(&format!("/v2/a/blobs/{DIGEST}")).unwrap(),
            Route::Blob(name("a"), DIGEST.parse().unwrap())
        );
        assert_eq!(
            parse_get("/v2/a/blobs/uploads/").unwrap(),
            Route::UploadStart(name("a"))
        );
        assert_eq!(
            parse_get(&format!("/v2/a/blobs/uploads/{UPLOAD}")).unwrap(),
            Route::Upload(name("a"), UPLOAD.parse().unwrap())
        );
        assert_eq!(
            parse_get(&format!("/v2/a/referrers/{DIGEST}")).unwrap(),
            Route::Referrers(name("a"), DIGEST.parse().unwrap())
        );
    }

    #[test]
    fn classifies_what_each_endpoint_does_to_storage() {
        let manifest = Route::Manifest(name("a"), "v1".parse().unwrap());
        let blob = Route::Blob(name("a"), DIGEST.parse().unwrap());
        let start = Route::UploadStart(name("a"));
        let upload = Route::Upload(name("a"), UPLOAD.parse().unwrap());
        let cases = [
            (&manifest, Method::GET, Access::Read),
            (&manifest, Method::PUT, Access::Write),
            (&manifest, Method::DELETE, Access::Delete),
            (&blob, Method::HEAD, Access::Read),
            (&blob, Method::DELETE, Access::Delete),
            // Not an endpoint: left to the 405 METHOD NOT ALLOWED answer.
            (&blob, Method::PUT, Access::Read),
            (&start, Method::POST, Access::Write),
            (&upload, Method::GET, Access::Read),
            (&upload, Method::PATCH, Access::Write),
            (&upload, Method::PUT, Access::Write),
            (&upload, Method::DELETE, Access::Write),
            (&Route::Catalog, Method::DELETE, Access::Read),
        ];
        for (route, method, access) in cases {
            assert_eq!(route.access(&method), access, "{method} {route:?}");
        }
    }

    #[test]
    fn malformed_tags_are_unknown_for_reads_and_invalid_for_pushes() {
        let read = parse("/v2/a/manifests/.INVALID", &Method::HEAD).unwrap_err();
        assert!(matches!(read, Error::ManifestUnknown(_)));
        let push = parse("/v2/a/manifests/.INVALID", &Method::PUT).unwrap_err();
        assert!(matches!(push, Error::ManifestInvalid(_)));
    }

    #[test]
    fn names_may_contain_endpoint_words() {
        assert_eq!(
            parse_get(&format!("/v2/x/blobs/blobs/{DIGEST}")).unwrap(),
            Route::Blob(name("x/blobs"), DIGEST.parse().unwrap())
        );
        assert_eq!(
            parse_get("/v2/manifests/tags/list").unwrap(),
            Route::Tags(name("manifests"))
        );
    }

    #[test]
    fn decodes_percent_encoded_digests() {
        let encoded = DIGEST.replace(':', "%3A");
        assert_eq!(
            parse_get(&format!("/v2/a/blobs/{encoded}")).unwrap(),
            Route::Blob(name("a"), DIGEST.parse().unwrap())
        );
    }

    #[test]
    fn rejects_hostile_paths() {
        let cases = [
            ("/v2/../etc/tags/list", "NAME_INVALID"),
            ("/v2/%2e%2e/%2e%2e/tags/list", "NAME_INVALID"),
            ("/v2/a/%2e%2e/b/tags/list", "NAME_INVALID"),
            ("/v2//etc/tags/list", "NAME_INVALID"),
            ("/v2/UPPER/tags/list", "NAME_INVALID"),
            ("/v2/a/blobs/sha256:..%2f..%2fetc", "NOT_FOUND"),
            ("/v2/a/blobs/sha256:..", "DIGEST_INVALID"),
            ("/v2/a/blobs/md5:abc", "DIGEST_INVALID"),
            ("/v2/a/manifests/..", "NOT_FOUND"),
            ("/v2/a/blobs/uploads/../../x", "NOT_FOUND"),
            ("/v2/a/blobs/uploads/not-a-uuid", "BLOB_UPLOAD_UNKNOWN"),
            ("/v2/tags/list", "NOT_FOUND"),
            ("/v2/a/unknown", "NOT_FOUND"),
            ("/v3/a/tags/list", "NOT_FOUND"),
        ];
        for (path, code) in cases {
            let err = parse_get(path).unwrap_err();
            let response = axum::response::IntoResponse::into_response(err);
            let expected_status = match code {
                "NOT_FOUND" | "BLOB_UPLOAD_UNKNOWN" => 404,
                _ => 400,
            };
            assert_eq!(response.status().as_u16(), expected_status, "{path}");
        }
    }
}
