//! htpasswd authentication (files made by Apache's `htpasswd -B`, as users
//! of registry:2 do), anonymous pulls, and TLS with certificate and client CA rotation.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::{Client, Method, StatusCode};

/// Writes an htpasswd file with the real `htpasswd` tool (bcrypt, `$2y$`).
fn htpasswd(path: &Path, users: &[(&str, &str)]) {
    let mut text = String::new();
    for (user, password) in users {
        let output = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apache2-utils) is installed");
        assert!(output.status.success());
        text.push_str(String::from_utf8(output.stdout).unwrap().trim());
        text.push('\n');
    }
    assert!(text.contains("$2y$"));
    std::fs::write(path, text).unwrap();
}

fn auth_config(root: &Path, anonymous_read: bool) -> String {
    let path = root.parent().unwrap().join("htpasswd");
    config_yaml(
        root,
        &format!(
            "auth:\n  htpasswd:\n    realm: Berth Test\n    path: {}\n    anonymousread: {anonymous_read}\n",
            path.display()
        ),
    )
}

#[tokio::test]
async fn htpasswd_protects_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    htpasswd(
        &dir.path().join("htpasswd"),
        &[("admin", "s3cret"), ("ci", "token")],
    );
    let registry = TestRegistry::start_on(&root, &auth_config(&root, false)).await;

    let response = registry.get("/v2/").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"Berth Test\""
    );
    assert_eq!(error_code(response).await, "UNAUTHORIZED");
    assert_eq!(
        registry.get("/v2/x/tags/list").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let wrong = registry
        .request(Method::GET, "/v2/")
        .basic_auth("admin", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = registry
        .request(Method::GET, "/v2/")
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);

    // A push with credentials works end to end.
    let data = random_bytes(100);
    let digest = registry::oci::Algorithm::Sha256.digest_of(&data);
    let response = registry
        .request(
            Method::POST,
            &format!("/v2/private/blobs/uploads/?digest={digest}"),
        )
        .basic_auth("ci", Some("token"))
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        registry
            .get(&format!("/v2/private/blobs/{digest}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Operational endpoints stay open for probes and scrapers.
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(registry.get("/metrics").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn anonymous_read_with_authenticated_write() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    htpasswd(&dir.path().join("htpasswd"), &[("admin", "pw")]);
    let registry = TestRegistry::start_on(&root, &auth_config(&root, true)).await;

    let data = random_bytes(64);
    let digest = registry::oci::Algorithm::Sha256.digest_of(&data);
    let anonymous_push = registry
        .request(
            Method::POST,
            &format!("/v2/public/blobs/uploads/?digest={digest}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_push.status(), StatusCode::UNAUTHORIZED);
    let push = registry
        .request(
            Method::POST,
            &format!("/v2/public/blobs/uploads/?digest={digest}"),
        )
        .basic_auth("admin", Some("pw"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), StatusCode::CREATED);
    let pull = registry.get(&format!("/v2/public/blobs/{digest}")).await;
    assert_eq!(pull.status(), StatusCode::OK);
    assert_eq!(pull.bytes().await.unwrap(), data);
    // Empty Basic credentials (what skopeo sends without a login) are anonymous, not wrong.
    let empty = registry
        .request(Method::GET, &format!("/v2/public/blobs/{digest}"))
        .basic_auth("", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    // `/v2/` still challenges so clients learn to log in for pushes.
    assert_eq!(
        registry.get("/v2/").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Anonymous deletes are writes.
    assert_eq!(
        registry
            .delete(&format!("/v2/public/blobs/{digest}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Wrong credentials are refused even for reads.
    let wrong = registry
        .request(Method::GET, &format!("/v2/public/blobs/{digest}"))
        .basic_auth("admin", Some("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn htpasswd_changes_are_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let file = dir.path().join("htpasswd");
    htpasswd(&file, &[("before", "pw")]);
    let registry = TestRegistry::start_on(&root, &auth_config(&root, false)).await;
    let login = |user: &'static str| {
        registry
            .request(Method::GET, "/v2/")
            .basic_auth(user, Some("pw"))
            .send()
    };
    assert_eq!(login("before").await.unwrap().status(), StatusCode::OK);

    let next = dir.path().join("htpasswd.next");
    htpasswd(&next, &[("after", "pw")]);
    std::fs::rename(&next, &file).unwrap();
    eventually(
        "the new user logging in",
        Duration::from_secs(30),
        async || match login("after").await.unwrap().status() {
            StatusCode::OK => Ok(()),
            status => Err(status),
        },
    )
    .await;
    assert_eq!(
        login("before").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

/// An htpasswd registry with failed-login limits (`limits`: YAML keys under `auth.htpasswd`).
async fn limited_registry(dir: &Path, users: &[(&str, &str)], limits: &str) -> TestRegistry {
    let root = dir.join("storage");
    let path = dir.join("htpasswd");
    htpasswd(&path, users);
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: R\n    path: {}\n{limits}",
        path.display()
    );
    TestRegistry::start_on(&root, &config_yaml(&root, &auth)).await
}

/// A client whose connections come from another loopback address (all of 127/8 is local).
fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(Some(ip.parse().unwrap()))
        .build()
        .unwrap()
}

async fn login(registry: &TestRegistry, client: &Client, user: &str, password: &str) -> StatusCode {
    client
        .get(format!("{}/v2/", registry.url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
}

/// A login refused with 429 `TOOMANYREQUESTS`; returns its `Retry-After` seconds.
async fn refused_retry_after(
    registry: &TestRegistry,
    client: &Client,
    user: &str,
    password: &str,
) -> u64 {
    let refused = client
        .get(format!("{}/v2/", registry.url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(error_code(refused).await, "TOOMANYREQUESTS");
    retry
}

#[tokio::test]
async fn a_flood_of_failed_logins_is_refused_without_limiting_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let users = [("admin", "s3cret"), ("ci", "token")];
    let limits = "    failurelimit: 3\n    failurewindow: 1m\n";
    let registry = limited_registry(dir.path(), &users, limits).await;
    let local = &registry.client;
    // Logged in before the attack: cached, so never limited.
    assert_eq!(
        login(&registry, local, "admin", "s3cret").await,
        StatusCode::OK
    );

    // Guesses at once: three are checked, the rest refused without bcrypt.
    let guesses = (0..30).map(|n| {
        let registry = &registry;
        async move { login(registry, local, "admin", &format!("guess{n}")).await }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED);
    assert_eq!(checked.count(), 3, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS)
    );

    // A third of the window frees a slot.
    let retry = refused_retry_after(&registry, local, "admin", "another guess").await;
    assert!((15..=20).contains(&retry), "{retry}");

    // The cached login still works; a right password not yet verified is
    // indistinguishable from a guess and waits too.
    assert_eq!(
        login(&registry, local, "admin", "s3cret").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&registry, local, "ci", "token").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other clients are not limited.
    let other = client_from("127.0.0.2");
    assert_eq!(
        login(&registry, &other, "ci", "token").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&registry, &other, "admin", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_failed_login_limit_expires_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let users = [("admin", "s3cret")];
    let limits = "    failurelimit: 2\n    failurewindow: 4s\n";
    let registry = limited_registry(dir.path(), &users, limits).await;
    let local = &registry.client;
    for _ in 0..2 {
        assert_eq!(
            login(&registry, local, "admin", "wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let retry = refused_retry_after(&registry, local, "admin", "wrong").await;
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        login(&registry, local, "admin", "s3cret").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A window without failures forgets them all: both attempts are checked again.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        login(&registry, local, "admin", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&registry, local, "admin", "s3cret").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_of_one_user_are_limited_across_clients() {
    let dir = tempfile::tempdir().unwrap();
    let users = [("admin", "s3cret"), ("ci", "token")];
    let limits = "    failurelimit: 10\n    userfailurelimit: 2\n";
    let registry = limited_registry(dir.path(), &users, limits).await;
    for ip in ["127.0.0.2", "127.0.0.3"] {
        assert_eq!(
            login(&registry, &client_from(ip), "admin", "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let fresh = client_from("127.0.0.4");
    // Half the default minute frees a slot.
    let retry = refused_retry_after(&registry, &fresh, "admin", "s3cret").await;
    assert!((29..=30).contains(&retry), "{retry}");
    assert_eq!(
        login(&registry, &fresh, "ci", "token").await,
        StatusCode::OK
    );
}

/// A CA and a serving certificate for 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn client_trusting(ca_pem: &str) -> Client {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_serves_and_reloads_rotated_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = pki("first");
    std::fs::write(&cert, &first.cert_pem).unwrap();
    std::fs::write(&key, &first.key_pem).unwrap();
    let yaml = config_yaml(&root, "").replace(
        "http:\n",
        &format!(
            "http:\n  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let registry = TestRegistry::start_on(&root, &yaml).await;
    assert!(registry.url.starts_with("https://"));
    let url = format!("{}/v2/", registry.url);
    assert_eq!(
        client_trusting(&first.ca_pem)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Rotate: write the new pair via renames, as Secret volume updates do.
    let second = pki("second");
    std::fs::write(dir.path().join("new.crt"), &second.cert_pem).unwrap();
    std::fs::write(dir.path().join("new.key"), &second.key_pem).unwrap();
    std::fs::rename(dir.path().join("new.key"), &key).unwrap();
    std::fs::rename(dir.path().join("new.crt"), &cert).unwrap();
    let new_client = client_trusting(&second.ca_pem);
    eventually(
        "the rotated certificate served",
        Duration::from_secs(30),
        async || match new_client.get(&url).send().await {
            Ok(response) if response.status() == StatusCode::OK => Ok(()),
            Ok(response) => Err(response.status().to_string()),
            Err(e) => Err(e.to_string()),
        },
    )
    .await;
    assert!(
        client_trusting(&first.ca_pem)
            .get(&url)
            .send()
            .await
            .is_err()
    );

    // A broken rotation (key does not match) keeps serving the last good pair.
    std::fs::write(&key, pki("third").key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(6000)).await;
    assert_eq!(
        new_client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn tls_minimum_version_and_plain_http_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let pki = pki("only13");
    std::fs::write(dir.path().join("c.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &pki.key_pem).unwrap();
    let yaml = config_yaml(&root, "").replace(
        "http:\n",
        &format!(
            "http:\n  tls:\n    certificate: {}\n    key: {}\n    minimumtls: tls1.3\n",
            dir.path().join("c.pem").display(),
            dir.path().join("k.pem").display()
        ),
    );
    let registry = TestRegistry::start_on(&root, &yaml).await;
    let tls12_only = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(
        tls12_only
            .get(format!("{}/v2/", registry.url))
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        client_trusting(&pki.ca_pem)
            .get(format!("{}/v2/", registry.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let plain = format!("http://{}/v2/", registry.host());
    assert!(
        reqwest::get(plain)
            .await
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true)
    );
}

/// A client CA and a client certificate it signed, as a PEM identity (certificate + key).
struct ClientPki {
    ca_pem: String,
    identity_pem: String,
}

fn client_pki(name: &str) -> ClientPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} client CA"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} client"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    ClientPki {
        ca_pem: ca_cert.pem(),
        identity_pem: format!("{}{}", cert.pem(), key.serialize_pem()),
    }
}

/// Whether a fresh client (no pooled connection, no TLS session to resume)
/// presenting `client` gets a 200 from `/v2/`.
async fn mtls_accepted(url: &str, server_ca: &str, client: &ClientPki) -> bool {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .identity(reqwest::Identity::from_pem(client.identity_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

#[tokio::test]
async fn client_ca_changes_are_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let server = pki("server");
    let (a, b) = (client_pki("a"), client_pki("b"));
    let (cert, key, cas) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("clientcas.pem"),
    );
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    std::fs::write(&cas, &a.ca_pem).unwrap();
    let yaml = config_yaml(&root, "").replace(
        "http:\n",
        &format!(
            "http:\n  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            cert.display(),
            key.display(),
            cas.display()
        ),
    );
    let registry = TestRegistry::start_on(&root, &yaml).await;
    let url = format!("{}/v2/", registry.url);
    assert!(mtls_accepted(&url, &server.ca_pem, &a).await);
    assert!(!mtls_accepted(&url, &server.ca_pem, &b).await);
    assert!(
        client_trusting(&server.ca_pem)
            .get(&url)
            .send()
            .await
            .is_err(),
        "a client without a certificate is refused"
    );

    // Swap the bundle for B's CA the way a Secret volume update does (rename).
    std::fs::write(dir.path().join("clientcas.next"), &b.ca_pem).unwrap();
    std::fs::rename(dir.path().join("clientcas.next"), &cas).unwrap();
    eventually(
        "a client certificate from the new CA accepted",
        Duration::from_secs(30),
        async || match mtls_accepted(&url, &server.ca_pem, &b).await {
            true => Ok(()),
            false => Err("refused"),
        },
    )
    .await;
    assert!(!mtls_accepted(&url, &server.ca_pem, &a).await);
}

/// A push refused before its body is read (401 here) tells the client the
/// connection ends: the unread body is still in it, and a client reusing it
/// got EOF on its next request (the OCI suite did, about one run in seven).
#[tokio::test]
async fn a_refused_push_with_an_unread_body_closes_the_connection() {
    use common::raw::{RawBody, send};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    htpasswd(&dir.path().join("htpasswd"), &[("admin", "s3cret")]);
    let registry = TestRegistry::start_on(&root, &auth_config(&root, false)).await;
    let keep_alive = [("Connection", "keep-alive".to_owned())];
    let refused = send(
        &registry.host(),
        "PUT",
        "/v2/app/manifests/v1",
        &keep_alive,
        RawBody::Fixed(vec![b'{'; 64 * 1024]),
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("connection"), Some("close"));
}
