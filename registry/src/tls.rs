//! TLS with rustls: PEM certificate and key from files, optional client CA
//! verification (mTLS), minimum version, and certificate reload when the
//! files change (cert-manager and the operator rotate them) without a
//! restart. A half-written or mismatched pair keeps the previous certificate.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("cannot read private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("certificate {cert} does not match key {key}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("client CA bundle {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The TLS part of the config, resolved.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_cas: Vec<PathBuf>,
    pub tls13_only: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls server config and the resolver that reloads certificates.
pub fn server_config(
    settings: &TlsSettings,
) -> Result<(Arc<ServerConfig>, CertificateReloader), TlsError> {
    let provider = provider();
    let reloader =
        CertificateReloader::load(&settings.certificate, &settings.key, provider.clone())?;
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if settings.client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for path in &settings.client_cas {
            let certs = read_certs(path).map_err(|message| TlsError::ClientCa {
                path: path.clone(),
                message,
            })?;
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_cert_resolver(Arc::new(reloader.clone()));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), reloader))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificates found".into());
    }
    Ok(certs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp(meta.modified().ok()?, meta.len(), meta.ino()))
}

struct ReloaderInner {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Option<Stamp>, Option<Stamp>)>,
}

/// Serves the current certificate and swaps in a new one when the files change.
#[derive(Clone)]
pub struct CertificateReloader(Arc<ReloaderInner>);

impl fmt::Debug for CertificateReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateReloader")
            .field("cert", &self.0.cert_path)
            .finish()
    }
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = read_certs(cert_path).map_err(|message| TlsError::Certificate {
        path: cert_path.to_owned(),
        message,
    })?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.to_owned(),
        message: e.to_string(),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: key_path.to_owned(),
            message: e.to_string(),
        })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
    })?;
    Ok(certified)
}

impl CertificateReloader {
    fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let stamps = (stamp(cert_path), stamp(key_path));
        let certified = load_pair(cert_path, key_path, &provider)?;
        Ok(CertificateReloader(Arc::new(ReloaderInner {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new((Arc::new(certified), stamps.0, stamps.1)),
        })))
    }

    /// Reloads when either file changed; returns whether a new certificate is in use.
    pub fn reload_if_changed(&self) -> bool {
        let inner = &self.0;
        let now = (stamp(&inner.cert_path), stamp(&inner.key_path));
        let unchanged = inner
            .current
            .read()
            .map(|guard| (guard.1, guard.2) == now)
            .unwrap_or(true);
        if unchanged {
            return false;
        }
        match load_pair(&inner.cert_path, &inner.key_path, &inner.provider) {
            Ok(certified) => {
                if let Ok(mut guard) = inner.current.write() {
                    *guard = (Arc::new(certified), now.0, now.1);
                }
                tracing::info!(cert = %inner.cert_path.display(), "reloaded TLS certificate");
                true
            }
            Err(e) => {
                // Often a rotation in progress (cert written, key not yet): retry next tick.
                tracing::warn!(error = %e, "TLS files changed but do not load yet; keeping the current certificate");
                false
            }
        }
    }

    /// Polls for changes every `interval` until the reloader is dropped.
    pub fn watch(&self, interval: Duration) {
        let weak: Weak<ReloaderInner> = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                CertificateReloader(inner).reload_if_changed();
            }
        });
    }
}

impl ResolvesServerCert for CertificateReloader {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current.read().ok().map(|guard| Arc::clone(&guard.0))
    }
}
