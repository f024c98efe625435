//! TLS with rustls: PEM certificate and key from files, optional client CA
//! verification (mTLS), minimum version, and reload when any of those files
//! change (cert-manager and the operator rotate them) without a restart. A
//! half-written or mismatched pair keeps the previous certificate; a broken
//! CA bundle keeps the previous client CAs.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often certificate and CA files are checked for changes.
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

/// Loads the files named by `settings` and returns the reloader that serves
/// the current rustls config.
pub fn server_config(settings: &TlsSettings) -> Result<TlsReloader, TlsError> {
    TlsReloader::load(settings.clone(), provider())
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

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
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
    Ok(Arc::new(certified))
}

/// The verifier for `http.tls.clientcas`: every certificate of every bundle is a trusted root.
fn load_client_verifier(
    paths: &[PathBuf],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in paths {
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
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(SystemTime, u64, u64);

/// Identity of a file version (mtime, size, inode), so a Secret volume's symlink swap counts.
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp(meta.modified().ok()?, meta.len(), meta.ino()))
}

/// The last good certificate and client CAs, the config built from them, and
/// the file versions they were read from.
struct Loaded {
    config: Arc<ServerConfig>,
    certified: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    pair_stamps: [Option<Stamp>; 2],
    ca_stamps: Vec<Option<Stamp>>,
}

struct ReloaderInner {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

/// Hands out the current rustls config and rebuilds it when the certificate,
/// key or client CA files change.
///
/// Both kinds of change go through the same rebuild: a new `ServerConfig`
/// per change, rather than swapping parts inside one, also gives it a fresh
/// session cache, so a client verified under removed CAs cannot resume its
/// old session. Connections already open keep their handshake's config.
#[derive(Clone)]
pub struct TlsReloader(Arc<ReloaderInner>);

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert", &self.0.settings.certificate)
            .field("client_cas", &self.0.settings.client_cas)
            .finish()
    }
}

impl TlsReloader {
    fn load(settings: TlsSettings, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let pair_stamps = [stamp(&settings.certificate), stamp(&settings.key)];
        let ca_stamps = settings.client_cas.iter().map(|p| stamp(p)).collect();
        let certified = load_pair(&settings.certificate, &settings.key, &provider)?;
        let verifier = if settings.client_cas.is_empty() {
            None
        } else {
            Some(load_client_verifier(&settings.client_cas, &provider)?)
        };
        let config = build(&settings, &provider, &certified, verifier.as_ref())?;
        Ok(TlsReloader(Arc::new(ReloaderInner {
            settings,
            provider,
            current: RwLock::new(Loaded {
                config,
                certified,
                verifier,
                pair_stamps,
                ca_stamps,
            }),
        })))
    }

    /// The config new connections handshake with.
    pub fn current(&self) -> Arc<ServerConfig> {
        let guard = self.0.current.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard.config)
    }

    /// Reloads what changed on disk (the server polls this every
    /// [`RELOAD_INTERVAL`]); returns whether a new config is in use.
    pub fn reload_if_changed(&self) -> bool {
        let inner = &self.0;
        let settings = &inner.settings;
        let pair_now = [stamp(&settings.certificate), stamp(&settings.key)];
        let cas_now: Vec<_> = settings.client_cas.iter().map(|p| stamp(p)).collect();
        let (pair_changed, cas_changed) = {
            let guard = inner.current.read().unwrap_or_else(|e| e.into_inner());
            (guard.pair_stamps != pair_now, guard.ca_stamps != cas_now)
        };
        if !pair_changed && !cas_changed {
            return false;
        }

        let certified = if pair_changed {
            match load_pair(&settings.certificate, &settings.key, &inner.provider) {
                Ok(certified) => Some(certified),
                Err(e) => {
                    // Often a rotation in progress (cert written, key not yet): the stamps are
                    // not recorded, so this retries next tick.
                    tracing::warn!(error = %e, "TLS files changed but do not load yet; keeping the current certificate");
                    None
                }
            }
        } else {
            None
        };
        let verifier = if cas_changed {
            match load_client_verifier(&settings.client_cas, &inner.provider) {
                Ok(verifier) => Some(verifier),
                Err(e) => {
                    tracing::error!(error = %e, "client CA files changed but do not load; keeping the previous client CAs");
                    None
                }
            }
        } else {
            None
        };

        let mut guard = inner.current.write().unwrap_or_else(|e| e.into_inner());
        // A broken bundle is remembered so the error is logged once per change of the files;
        // writing a fixed bundle changes the stamps again.
        if cas_changed {
            guard.ca_stamps = cas_now;
        }
        let (new_pair, new_cas) = (certified.is_some(), verifier.is_some());
        if !new_pair && !new_cas {
            return false;
        }
        let certified = certified.unwrap_or_else(|| Arc::clone(&guard.certified));
        let verifier = verifier.or_else(|| guard.verifier.clone());
        match build(settings, &inner.provider, &certified, verifier.as_ref()) {
            Ok(config) => {
                if new_pair {
                    guard.pair_stamps = pair_now;
                    tracing::info!(cert = %settings.certificate.display(), "reloaded TLS certificate");
                }
                if new_cas {
                    tracing::info!(files = settings.client_cas.len(), "reloaded client CAs");
                }
                guard.config = config;
                guard.certified = certified;
                guard.verifier = verifier;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot rebuild the TLS configuration; keeping the current one");
                false
            }
        }
    }
}

/// One rustls config from a certificate and (for mTLS) a client verifier.
fn build(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    certified: &Arc<CertifiedKey>,
    verifier: Option<&Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&SupportedProtocolVersion] = if settings.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(Arc::clone(verifier)),
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn ca_pem() -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn settings(dir: &Path) -> TlsSettings {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_pem()).unwrap();
        TlsSettings {
            certificate: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_cas: vec![dir.join("ca.pem")],
            tls13_only: false,
        }
    }

    /// Replaces a file the way a Secret volume update does: a new inode.
    fn replace(path: &Path, text: &str) {
        let next = path.with_extension("next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, path).unwrap();
    }

    #[test]
    fn a_changed_ca_bundle_rebuilds_the_config_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let reloader = server_config(&settings).unwrap();
        let first = reloader.current();
        assert!(!reloader.reload_if_changed(), "nothing changed yet");

        replace(&settings.client_cas[0], &ca_pem());
        assert!(reloader.reload_if_changed());
        let second = reloader.current();
        assert!(!Arc::ptr_eq(&first, &second));

        replace(
            &settings.client_cas[0],
            "-----BEGIN CERTIFICATE-----\nnope\n",
        );
        assert!(!reloader.reload_if_changed());
        assert!(Arc::ptr_eq(&second, &reloader.current()));
        // Logged once: the broken version is not retried every tick.
        assert!(!reloader.reload_if_changed());

        // The certificate still reloads while the CA bundle stays broken.
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        replace(&settings.key, &key.serialize_pem());
        replace(&settings.certificate, &cert.pem());
        assert!(reloader.reload_if_changed());
        assert!(!Arc::ptr_eq(&second, &reloader.current()));
    }
}
