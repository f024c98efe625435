//! Paginated listings: end-8 tags list and `/v2/_catalog`, with `n`, `last`
//! and an RFC 5988 `Link: <...>; rel="next"` header when more remain.

use axum::response::Response;
use http::StatusCode;
use http::header::LINK;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::query::Query;
use super::response::{header_value, json};
use crate::error::{Error, Result};
use crate::oci::RepositoryName;
use crate::state::AppState;

/// Characters escaped in the `last` query value: all but RFC 3986 unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One page of a sorted listing.
#[derive(Debug, PartialEq, Eq)]
struct Page<'a> {
    items: &'a [String],
    /// `last` for the next page, when there is one.
    next: Option<&'a str>,
}

/// Selects the entries after `last` (exclusive), at most `n` of them.
fn paginate<'a>(sorted: &'a [String], n: Option<usize>, last: Option<&str>) -> Page<'a> {
    let start = last.map_or(0, |last| {
        sorted.partition_point(|item| item.as_str() <= last)
    });
    let rest = &sorted[start..];
    match n {
        Some(0) => Page {
            items: &[],
            next: None,
        },
        Some(n) if n < rest.len() => Page {
            items: &rest[..n],
            next: Some(rest[n - 1].as_str()),
        },
        _ => Page {
            items: rest,
            next: None,
        },
    }
}

pub(super) fn parse_n(query: &Query) -> Result<Option<usize>> {
    query
        .get("n")
        .map(|n| {
            n.parse::<usize>().map_err(|_| {
                Error::PaginationInvalid(format!("n must be a non-negative integer, got {n:?}"))
            })
        })
        .transpose()
}

/// `Link: <path?n=..&last=..[&extra]>; rel="next"`, every value escaped.
pub(super) fn link_header(
    path: &str,
    n: usize,
    last: &str,
    extra: &[(&str, &str)],
) -> Result<(http::HeaderName, http::HeaderValue)> {
    let mut url = format!(
        "{path}?n={n}&last={}",
        utf8_percent_encode(last, QUERY_VALUE)
    );
    for (key, value) in extra {
        url.push_str(&format!(
            "&{key}={}",
            utf8_percent_encode(value, QUERY_VALUE)
        ));
    }
    Ok((LINK, header_value(&format!("<{url}>; rel=\"next\""))?))
}

/// end-8: GET `/v2/<name>/tags/list`.
pub async fn tags(state: &AppState, name: &RepositoryName, query: &Query) -> Result<Response> {
    let n = parse_n(query)?;
    let tags: Vec<String> = state
        .content
        .tags_of_existing_repository(name)
        .await?
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    let page = paginate(&tags, n, query.get("last"));
    let mut headers = Vec::new();
    if let (Some(next), Some(n)) = (page.next, n) {
        headers.push(link_header(&format!("/v2/{name}/tags/list"), n, next, &[])?);
    }
    json(
        StatusCode::OK,
        &json!({ "name": name.as_str(), "tags": page.items }),
        headers,
    )
}

/// GET `/v2/_catalog`; the page size defaults to `catalog.maxentries`, and a larger `n` is
/// refused with `PAGINATION_NUMBER_INVALID` as distribution does.
pub async fn catalog(state: &AppState, query: &Query) -> Result<Response> {
    let max = state.settings.catalog_max_entries;
    let n = match parse_n(query)? {
        Some(n) if n > max => {
            return Err(Error::PaginationInvalid(format!(
                "n must be no larger than {max} (catalog.maxentries), got {n}"
            )));
        }
        n => n.unwrap_or(max),
    };
    let page = state.content.catalog_page(query.get("last"), n).await?;
    let mut headers = Vec::new();
    if page.more
        && let Some(next) = page.repositories.last()
    {
        headers.push(link_header("/v2/_catalog", n, next, &[])?);
    }
    json(
        StatusCode::OK,
        &json!({ "repositories": page.repositories }),
        headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paginates_with_exclusive_last() {
        let all = items(&["a", "b", "c", "d"]);
        assert_eq!(paginate(&all, None, None).items, &all[..]);
        assert_eq!(
            paginate(&all, Some(2), None),
            Page {
                items: &all[..2],
                next: Some("b")
            }
        );
        assert_eq!(
            paginate(&all, Some(2), Some("b")),
            Page {
                items: &all[2..],
                next: None
            }
        );
        assert_eq!(paginate(&all, Some(10), Some("bb")).items, &all[2..]);
        assert_eq!(
            paginate(&all, Some(0), None),
            Page {
                items: &[],
                next: None
            }
        );
        assert!(paginate(&all, None, Some("z")).items.is_empty());
    }
}
