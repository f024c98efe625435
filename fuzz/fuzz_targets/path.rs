//! Fuzzes the `/v2/...` request path parser: it must never panic, and any
//! path it accepts must yield names that cannot escape the storage root.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use registry::http::path::{Route, parse};

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = &METHODS[usize::from(selector) % METHODS.len()];
    let Ok(route) = parse(path, method) else {
        return;
    };
    let name = match &route {
        Route::Base | Route::Catalog => return,
        Route::Tags(name)
        | Route::Manifest(name, _)
        | Route::Blob(name, _)
        | Route::UploadStart(name)
        | Route::Upload(name, _)
        | Route::Referrers(name, _) => name.as_str(),
    };
    // Every accepted name maps to a directory below `repositories/`.
    assert!(!name.is_empty() && !name.starts_with('/'), "{name:?}");
    for component in name.split('/') {
        assert!(
            !component.is_empty() && component != "." && component != "..",
            "unsafe name {name:?} from {path:?}"
        );
    }
});
