//! The storage driver conformance suite: one set of tests that every driver
//! passes — the filesystem driver, and the S3 driver against SeaweedFS and
//! moto (real servers on loopback, see `common/s3.rs`).

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use registry::config::S3Config;
use registry::storage::fs::FsStorage;
use registry::storage::s3::S3Storage;
use registry::storage::s3::settings::BucketSettings;
use registry::storage::{AppendBody, PlainBody, Precondition, Storage, StorageError, Version};
use tokio::sync::mpsc;

use common::s3::{fresh_root, server};

/// A driver under test plus whatever keeps its backing alive.
struct Driver {
    storage: Arc<dyn Storage>,
    object_store: bool,
    _dir: Option<tempfile::TempDir>,
}

fn fs() -> Driver {
    let dir = tempfile::tempdir().unwrap();
    Driver {
        storage: Arc::new(FsStorage::open(dir.path()).unwrap()),
        object_store: false,
        _dir: Some(dir),
    }
}

/// The S3 driver on `name` under a fresh prefix, with small parts so that
/// multipart paths run with little data.
fn s3(name: &str, tweak: impl FnOnce(&mut S3Config)) -> Option<Driver> {
    let server = server(name)?;
    let mut config = server.config(&fresh_root("driver"));
    config.chunksize = Some(5 << 20);
    config.multipartcopychunksize = Some(5 << 20);
    config.multipartcopythresholdsize = Some(6 << 20);
    tweak(&mut config);
    let settings = BucketSettings::from_s3(&config).unwrap();
    Some(Driver {
        storage: Arc::new(S3Storage::open(settings).unwrap()),
        object_store: true,
        _dir: None,
    })
}

/// Generates one test per driver for each case.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod filesystem {
            $(#[tokio::test] async fn $case() { super::$case(super::fs()).await; })*
        }
        mod seaweedfs {
            $(#[tokio::test] async fn $case() {
                if let Some(driver) = super::s3("seaweedfs", |_| {}) { super::$case(driver).await; }
            })*
        }
        mod moto {
            $(#[tokio::test] async fn $case() {
                if let Some(driver) = super::s3("moto", |_| {}) { super::$case(driver).await; }
            })*
        }
    };
}

conformance!(
    objects_and_directories,
    missing_paths_are_not_found,
    conditional_writes,
    racing_creators_have_one_winner,
    appends_check_offsets_and_span_parts,
    append_keeps_what_arrived_before_a_body_error,
    checkpoints_travel_with_appends,
    sealing_publishes_exactly_the_verified_bytes,
    appends_and_seals_exclude_each_other,
    ranged_reads,
    copies_small_and_multipart,
    batched_deletes_count_what_existed,
    readiness_check,
    redirect_urls,
);

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn body(
    chunks: Vec<Vec<u8>>,
) -> PlainBody<impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin> {
    PlainBody(stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok(Bytes::from(c)))
            .collect::<Vec<_>>(),
    ))
}

async fn read_all(storage: &dyn Storage, path: &str, offset: u64, len: u64) -> Vec<u8> {
    let mut data = storage.read(path, offset, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = data.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn objects_and_directories(driver: Driver) {
    let s = driver.storage.as_ref();
    s.put("r/a/one/link", Bytes::from_static(b"1"))
        .await
        .unwrap();
    s.put("r/a/two/link", Bytes::from_static(b"22"))
        .await
        .unwrap();
    s.put("r/a/file", Bytes::from_static(b"333")).await.unwrap();
    s.put("r/b/link", Bytes::from_static(b"4")).await.unwrap();
    let mut names = s.list("r/a").await.unwrap();
    names.sort();
    assert_eq!(names, ["file", "one", "two"]);
    assert_eq!(&s.get("r/a/two/link").await.unwrap()[..], b"22");
    assert_eq!(s.stat("r/a/file").await.unwrap().size, 3);
    // Replacing is atomic and complete.
    s.put("r/a/file", Bytes::from_static(b"55555"))
        .await
        .unwrap();
    assert_eq!(&s.get("r/a/file").await.unwrap()[..], b"55555");
    // A directory is not an object.
    assert!(s.stat("r/a").await.unwrap_err().is_not_found());
    // Deleting a prefix removes everything below it, and nothing beside it.
    s.delete("r/a").await.unwrap();
    assert!(s.get("r/a/one/link").await.unwrap_err().is_not_found());
    assert!(s.list("r/a").await.unwrap_err().is_not_found());
    assert_eq!(s.list("r").await.unwrap(), ["b"]);
    s.delete("r/b/link").await.unwrap();
    assert!(s.get("r/b/link").await.unwrap_err().is_not_found());
    // Paths that could escape are refused before reaching the backend.
    for bad in ["../x", "a//b", "", "a/./b", "/abs"] {
        assert!(
            matches!(s.get(bad).await, Err(StorageError::InvalidPath(_))),
            "{bad}"
        );
    }
}

async fn missing_paths_are_not_found(driver: Driver) {
    let s = driver.storage.as_ref();
    assert!(s.get("nope/link").await.unwrap_err().is_not_found());
    assert!(s.stat("nope/link").await.unwrap_err().is_not_found());
    assert!(
        s.read("nope/link", 0, 1)
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
    assert!(s.list("nope").await.unwrap_err().is_not_found());
    assert!(s.delete("nope").await.unwrap_err().is_not_found());
    assert!(
        s.append_state("nope/data")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.seal("nope/data", 0, "x/data")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.get_versioned("nope/link")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

async fn conditional_writes(driver: Driver) {
    let s = driver.storage.as_ref();
    let first = s
        .put_if("lock", Bytes::from_static(b"a"), Precondition::Absent)
        .await
        .unwrap();
    let again = s
        .put_if("lock", Bytes::from_static(b"b"), Precondition::Absent)
        .await;
    assert!(matches!(again, Err(StorageError::Conflict(_))), "{again:?}");
    let (data, version) = s.get_versioned("lock").await.unwrap();
    assert_eq!((&data[..], &version), (&b"a"[..], &first));
    let second = s
        .put_if(
            "lock",
            Bytes::from_static(b"c"),
            Precondition::Matches(version.clone()),
        )
        .await
        .unwrap();
    assert_ne!(second, first);
    let stale = s
        .put_if(
            "lock",
            Bytes::from_static(b"d"),
            Precondition::Matches(version),
        )
        .await;
    assert!(matches!(stale, Err(StorageError::Conflict(_))), "{stale:?}");
    let missing = s
        .put_if(
            "other",
            Bytes::from_static(b"e"),
            Precondition::Matches(Version("x".into())),
        )
        .await;
    assert!(
        matches!(
            missing,
            Err(StorageError::Conflict(_)) | Err(StorageError::NotFound(_))
        ),
        "{missing:?}"
    );
    assert_eq!(&s.get("lock").await.unwrap()[..], b"c");
}

async fn racing_creators_have_one_winner(driver: Driver) {
    for round in 0..5 {
        let path = format!("race/{round}");
        let attempts = (0..8).map(|i| {
            let storage = driver.storage.clone();
            let path = path.clone();
            tokio::spawn(async move {
                storage
                    .put_if(&path, Bytes::from(vec![i]), Precondition::Absent)
                    .await
            })
        });
        let results = futures_util::future::join_all(attempts).await;
        let winners = results
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
    }
}

async fn appends_check_offsets_and_span_parts(driver: Driver) {
    let s = driver.storage.as_ref();
    let data = bytes_of(12 << 20, 7);
    // Three requests: the first crosses a 5 MiB part boundary mid-chunk,
    // the second is small, the third carries the rest in uneven chunks.
    let first = data[..(5 << 20) + 1000].to_vec();
    let second = data[(5 << 20) + 1000..(5 << 20) + 3000].to_vec();
    let third: Vec<Vec<u8>> = data[(5 << 20) + 3000..]
        .chunks(700_001)
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(
        s.append("u/1/data", 0, &mut body(vec![first]))
            .await
            .unwrap(),
        (5 << 20) + 1000
    );
    let wrong = s
        .append("u/1/data", 5, &mut body(vec![b"x".to_vec()]))
        .await;
    assert!(
        matches!(wrong, Err(StorageError::OffsetMismatch { expected: 5, actual }) if actual == (5 << 20) + 1000),
        "{wrong:?}"
    );
    assert_eq!(
        s.append("u/1/data", (5 << 20) + 1000, &mut body(vec![second]))
            .await
            .unwrap(),
        (5 << 20) + 3000
    );
    let end = s
        .append("u/1/data", (5 << 20) + 3000, &mut body(third))
        .await
        .unwrap();
    assert_eq!(end, data.len() as u64);
    assert_eq!(s.append_state("u/1/data").await.unwrap().size, end);
    s.seal("u/1/data", end, "blobs/one/data").await.unwrap();
    assert_eq!(s.stat("blobs/one/data").await.unwrap().size, end);
    assert!(
        read_all(s, "blobs/one/data", 0, end).await == data,
        "sealed bytes differ"
    );
    // Appending to a missing object anywhere but at 0 is refused.
    let missing = s
        .append("u/2/data", 3, &mut body(vec![b"x".to_vec()]))
        .await;
    assert!(
        matches!(missing, Err(StorageError::NotFound(_))),
        "{missing:?}"
    );
}

async fn append_keeps_what_arrived_before_a_body_error(driver: Driver) {
    let s = driver.storage.as_ref();
    let mut failing = PlainBody(stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(io::Error::other("client went away")),
    ]));
    let error = s.append("u/e/data", 0, &mut failing).await.unwrap_err();
    assert!(matches!(error, StorageError::Source(_)), "{error:?}");
    assert_eq!(s.append_state("u/e/data").await.unwrap().size, 3);
    assert_eq!(
        s.append("u/e/data", 3, &mut body(vec![b"def".to_vec()]))
            .await
            .unwrap(),
        6
    );
    s.seal("u/e/data", 6, "out/data").await.unwrap();
    assert_eq!(&s.get("out/data").await.unwrap()[..], b"abcdef");
}

/// A body that hands over a checkpoint naming its length.
struct Counted<S> {
    inner: S,
    seen: usize,
}

impl<S: futures_util::Stream<Item = io::Result<Bytes>> + Unpin> futures_util::Stream
    for Counted<S>
{
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(chunk))) = &polled {
            self.seen += chunk.len();
        }
        polled
    }
}

impl<S: futures_util::Stream<Item = io::Result<Bytes>> + Send + Unpin> AppendBody for Counted<S> {
    fn checkpoint(&self) -> Option<Bytes> {
        Some(Bytes::from(format!("seen {}", self.seen)))
    }
}

async fn checkpoints_travel_with_appends(driver: Driver) {
    let s = driver.storage.as_ref();
    let mut counted = Counted {
        inner: stream::iter(vec![Ok(Bytes::from_static(b"12345"))]),
        seen: 0,
    };
    s.append("u/c/data", 0, &mut counted).await.unwrap();
    let state = s.append_state("u/c/data").await.unwrap();
    assert_eq!(state.size, 5);
    if driver.object_store {
        // Object stores cannot read an upload back, so they must keep it.
        assert_eq!(state.checkpoint.as_deref(), Some(&b"seen 5"[..]));
    } else {
        assert!(matches!(
            state.checkpoint.as_deref(),
            None | Some(b"seen 5")
        ));
    }
}

async fn sealing_publishes_exactly_the_verified_bytes(driver: Driver) {
    let s = driver.storage.as_ref();
    s.append("u/s/data", 0, &mut body(vec![b"hello".to_vec()]))
        .await
        .unwrap();
    let wrong = s.seal("u/s/data", 4, "blob/data").await;
    assert!(
        matches!(wrong, Err(StorageError::OffsetMismatch { actual: 5, .. })),
        "{wrong:?}"
    );
    s.seal("u/s/data", 5, "blob/data").await.unwrap();
    assert_eq!(&s.get("blob/data").await.unwrap()[..], b"hello");
    // Nothing more can be appended, and the object cannot be sealed twice.
    let late = s
        .append("u/s/data", 5, &mut body(vec![b"!".to_vec()]))
        .await;
    assert!(matches!(late, Err(StorageError::NotFound(_))), "{late:?}");
    assert!(
        s.seal("u/s/data", 5, "blob2/data")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(&s.get("blob/data").await.unwrap()[..], b"hello");
    // Sealing replaces whatever is at the target.
    s.put("blob3/data", Bytes::from_static(b"corrupt-and-longer"))
        .await
        .unwrap();
    s.append("u/t/data", 0, &mut body(vec![b"right".to_vec()]))
        .await
        .unwrap();
    s.seal("u/t/data", 5, "blob3/data").await.unwrap();
    assert_eq!(&s.get("blob3/data").await.unwrap()[..], b"right");
    // Deleting an upload directory removes its data whatever state it is in.
    s.append("u/v/data", 0, &mut body(vec![bytes_of(6 << 20, 1)]))
        .await
        .unwrap();
    s.delete("u/v").await.unwrap();
    assert!(s.append_state("u/v/data").await.unwrap_err().is_not_found());
}

/// A body whose chunks a test feeds by hand, to keep an append in flight.
fn held_body() -> (
    mpsc::Sender<io::Result<Bytes>>,
    PlainBody<tokio_stream_shim::Receiver>,
) {
    let (tx, rx) = mpsc::channel(4);
    (tx, PlainBody(tokio_stream_shim::Receiver(rx)))
}

mod tokio_stream_shim {
    use super::*;

    pub struct Receiver(pub mpsc::Receiver<io::Result<Bytes>>);

    impl futures_util::Stream for Receiver {
        type Item = io::Result<Bytes>;

        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.0.poll_recv(cx)
        }
    }
}

async fn appends_and_seals_exclude_each_other(driver: Driver) {
    let storage = driver.storage.clone();
    storage
        .append("u/x/data", 0, &mut body(vec![b"first".to_vec()]))
        .await
        .unwrap();
    let (tx, mut held) = held_body();
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move { storage.append("u/x/data", 5, &mut held).await })
    };
    tx.send(Ok(Bytes::from_static(b"-more"))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While the append is in flight, neither another append nor a seal gets in.
    let second = storage
        .append("u/x/data", 5, &mut body(vec![b"zzz".to_vec()]))
        .await;
    assert!(matches!(second, Err(StorageError::Busy(_))), "{second:?}");
    let seal = storage.seal("u/x/data", 5, "sealed/data").await;
    assert!(matches!(seal, Err(StorageError::Busy(_))), "{seal:?}");
    assert!(
        storage
            .stat("sealed/data")
            .await
            .unwrap_err()
            .is_not_found()
    );
    drop(tx);
    assert_eq!(writer.await.unwrap().unwrap(), 10);
    storage.seal("u/x/data", 10, "sealed/data").await.unwrap();
    assert_eq!(
        &storage.get("sealed/data").await.unwrap()[..],
        b"first-more"
    );
}

async fn ranged_reads(driver: Driver) {
    let s = driver.storage.as_ref();
    let data = bytes_of(100_000, 3);
    s.put("blob/r", Bytes::from(data.clone())).await.unwrap();
    assert_eq!(read_all(s, "blob/r", 0, 100_000).await, data);
    assert_eq!(read_all(s, "blob/r", 99_990, 10).await, &data[99_990..]);
    assert_eq!(read_all(s, "blob/r", 5, 0).await, Vec::<u8>::new());
    assert_eq!(read_all(s, "blob/r", 1234, 4321).await, &data[1234..5555]);
}

async fn copies_small_and_multipart(driver: Driver) {
    let s = driver.storage.as_ref();
    s.put("src/small", Bytes::from_static(b"tiny"))
        .await
        .unwrap();
    s.copy("src/small", "dst/small").await.unwrap();
    assert_eq!(&s.get("dst/small").await.unwrap()[..], b"tiny");
    // Above the (test) multipart copy threshold: copied in 5 MiB ranges.
    let big = bytes_of((13 << 20) + 17, 9);
    s.put("src/big", Bytes::from(big.clone())).await.unwrap();
    s.copy("src/big", "dst/big").await.unwrap();
    assert_eq!(s.stat("dst/big").await.unwrap().size, big.len() as u64);
    assert!(
        read_all(s, "dst/big", 0, big.len() as u64).await == big,
        "copy differs"
    );
    assert!(
        s.copy("src/missing", "dst/x")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

async fn batched_deletes_count_what_existed(driver: Driver) {
    let s = driver.storage.as_ref();
    for i in 0..30 {
        s.put(&format!("gc/{i}/data"), Bytes::from(vec![i as u8]))
            .await
            .unwrap();
    }
    let mut paths: Vec<String> = (0..30).map(|i| format!("gc/{i}")).collect();
    paths.push("gc/missing".into());
    assert_eq!(s.delete_batch(&paths).await.unwrap(), 30);
    assert!(s.list("gc").await.unwrap_err().is_not_found());
    assert_eq!(s.delete_batch(&paths).await.unwrap(), 0);
}

async fn readiness_check(driver: Driver) {
    let s = driver.storage.as_ref();
    s.check(false).await.unwrap();
    s.check(true).await.unwrap();
    // The write probe leaves nothing behind (object stores write it under `_berth/probes`).
    let probes = format!("{}/probes", registry::storage::layout::BERTH_DIR);
    match s.list(&probes).await {
        Ok(names) => assert!(names.is_empty(), "probes left behind: {names:?}"),
        Err(e) => assert!(e.is_not_found(), "{e}"),
    }
}

async fn redirect_urls(driver: Driver) {
    let s = driver.storage.as_ref();
    s.put("blob/u", Bytes::from_static(b"downloaded directly"))
        .await
        .unwrap();
    let url = s
        .presigned_url("blob/u", &http::Method::GET, Duration::from_secs(60))
        .await
        .unwrap();
    if !driver.object_store {
        assert!(url.is_none());
        return;
    }
    let url = url.expect("object stores sign URLs");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(&response.bytes().await.unwrap()[..], b"downloaded directly");
}

/// Failures name the bucket and the S3 error code, never the secret.
#[tokio::test]
async fn s3_errors_name_bucket_and_code_without_secrets() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let mut config = server.config(&fresh_root("errors"));
    config.bucket = "no-such-bucket-berth".into();
    let storage = S3Storage::open(BucketSettings::from_s3(&config).unwrap()).unwrap();
    let error = storage.check(false).await.unwrap_err().to_string();
    assert!(error.contains("no-such-bucket-berth"), "{error}");
    assert!(error.contains("NoSuchBucket"), "{error}");
    assert!(!error.contains(&server.secret_key), "{error}");

    let mut config = server.config(&fresh_root("errors"));
    config.secretkey = Some("wrong-secret-value".into());
    let storage = S3Storage::open(BucketSettings::from_s3(&config).unwrap()).unwrap();
    let error = storage.check(false).await.unwrap_err().to_string();
    assert!(error.contains(&server.bucket), "{error}");
    assert!(!error.contains("wrong-secret-value"), "{error}");
}

/// Without ListBucket, S3 answers 403 for a missing key: the error says
/// which permissions Berth needs instead of pretending the key exists.
#[tokio::test]
async fn s3_missing_keys_without_list_permission() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let root = fresh_root("nolist");
    let writer = S3Storage::open(BucketSettings::from_s3(&server.config(&root)).unwrap()).unwrap();
    writer
        .put("present/link", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let (access, secret) = server
        .reader
        .clone()
        .expect("seaweedfs has a reader identity");
    let mut config = server.config(&root);
    config.accesskey = Some(access);
    config.secretkey = Some(secret);
    let reader = S3Storage::open(BucketSettings::from_s3(&config).unwrap()).unwrap();
    assert_eq!(&reader.get("present/link").await.unwrap()[..], b"x");
    match reader.get("absent/link").await {
        Err(StorageError::NotFound(_)) => {}
        Err(StorageError::Remote { code, message, .. }) => {
            assert_eq!(code, "AccessDenied");
            assert!(message.contains("s3:ListBucket"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let listing = reader.list("present").await;
    assert!(
        matches!(listing, Err(StorageError::Remote { .. })),
        "{listing:?}"
    );
}
