//! end-12: GET `/v2/<name>/referrers/<digest>` — an image index of the
//! manifests whose `subject` is the digest; never 404.

use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::query::Query;
use super::response::{OCI_FILTERS_APPLIED, json};
use crate::error::Result;
use crate::oci::media_type::OCI_INDEX;
use crate::oci::{Digest, RepositoryName};
use crate::state::AppState;

pub async fn list(
    state: &AppState,
    name: &RepositoryName,
    subject: &Digest,
    query: &Query,
) -> Result<Response> {
    let artifact_type = query.get("artifactType");
    let manifests = state
        .content
        .referrers(name, subject, artifact_type)
        .await?;
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))];
    if artifact_type.is_some() {
        headers.push((
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        ));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    json(StatusCode::OK, &index, headers)
}
