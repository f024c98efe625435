//! TLS material: for SelfSigned mode, an operator-made CA (`<name>-ca`,
//! reused for years) and a serving certificate for the Service names
//! (`<name>-tls`, reissued 30 days before it expires or when its names
//! change); for CertManager mode, a cert-manager Certificate. Existing
//! material is reused byte-for-byte, so an unchanged Registry writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::labels::{REGISTRY_COMPONENT, metadata, names};
use crate::controller::model::ValidatedRegistry;
use crate::controller::observed::SecretData;
use crate::crd::IssuerRef;

/// Reissue a certificate this long before it expires.
pub const RENEW_BEFORE_DAYS: i64 = 30;
pub const SERVING_VALIDITY_DAYS: i64 = 90;
pub const CA_VALIDITY_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum TlsBuildError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid time: {0}")]
    Time(String),
}

/// The Secrets of SelfSigned mode and when the serving certificate expires.
#[derive(Debug, Clone)]
pub struct SelfSignedTls {
    pub ca: Secret,
    pub serving: Secret,
    pub not_after: i64,
}

/// The DNS names (and loopback, for port-forwarding) the serving certificate covers.
pub fn dns_names(v: &ValidatedRegistry, extra: &[String]) -> Vec<String> {
    let (name, ns) = (&v.name, &v.namespace);
    let mut names = vec![
        name.clone(),
        format!("{name}.{ns}"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    for host in extra {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    names
}

/// What an existing certificate says about itself.
struct Parsed {
    not_after: i64,
    names: BTreeSet<String>,
}

fn parse_cert(pem: &[u8]) -> Option<Parsed> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.insert((*dns).to_owned());
                }
                GeneralName::IPAddress(ip) if ip.len() == 4 => {
                    names.insert(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]));
                }
                _ => {}
            }
        }
    }
    Some(Parsed {
        not_after: cert.validity().not_after.timestamp(),
        names,
    })
}

fn fresh(parsed: &Parsed, now: i64) -> bool {
    parsed.not_after - now > RENEW_BEFORE_DAYS * 86_400
}

fn datetime(secs: i64) -> Result<OffsetDateTime, TlsBuildError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| TlsBuildError::Time(e.to_string()))
}

fn bytes(data: &SecretData, key: &str) -> Option<Vec<u8>> {
    data.data.get(key).cloned()
}

/// SelfSigned mode: reuse what is still good, generate what is missing or due.
pub fn self_signed(
    v: &ValidatedRegistry,
    names_wanted: &[String],
    current_ca: Option<&SecretData>,
    current_tls: Option<&SecretData>,
    now: i64,
) -> Result<SelfSignedTls, TlsBuildError> {
    let existing_ca = current_ca.and_then(|ca| {
        let cert = bytes(ca, "ca.crt")?;
        let key = bytes(ca, "ca.key")?;
        let parsed = parse_cert(&cert)?;
        fresh(&parsed, now).then_some((cert, key))
    });
    let (ca_cert, ca_key) = match existing_ca {
        Some(pair) => pair,
        None => {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name.push(
                DnType::CommonName,
                format!("Berth registry CA {}/{}", v.namespace, v.name),
            );
            params.not_before = datetime(now - 300)?;
            params.not_after = datetime(now)? + Duration::days(CA_VALIDITY_DAYS);
            let cert = params.self_signed(&key)?;
            (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
        }
    };

    let wanted: BTreeSet<String> = names_wanted.iter().cloned().collect();
    let existing_serving = current_tls.and_then(|tls| {
        let cert = bytes(tls, "tls.crt")?;
        let key = bytes(tls, "tls.key")?;
        let issued_by_ca = bytes(tls, "ca.crt")? == ca_cert;
        let parsed = parse_cert(&cert)?;
        (issued_by_ca && fresh(&parsed, now) && parsed.names == wanted).then_some((
            cert,
            key,
            parsed.not_after,
        ))
    });
    let (cert, key, not_after) = match existing_serving {
        Some(serving) => serving,
        None => {
            let ca_key_pair = KeyPair::from_pem(std::str::from_utf8(&ca_key).unwrap_or_default())?;
            let issuer = Issuer::from_ca_cert_pem(
                std::str::from_utf8(&ca_cert).unwrap_or_default(),
                ca_key_pair,
            )?;
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names_wanted.to_vec())?;
            params.distinguished_name.push(
                DnType::CommonName,
                format!("{}.{}.svc", v.name, v.namespace),
            );
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = datetime(now - 300)?;
            let not_after = now + SERVING_VALIDITY_DAYS * 86_400;
            params.not_after = datetime(not_after)?;
            let cert = params.signed_by(&key, &issuer)?;
            (
                cert.pem().into_bytes(),
                key.serialize_pem().into_bytes(),
                not_after,
            )
        }
    };

    let ca = Secret {
        metadata: metadata(v, names::ca(&v.name), REGISTRY_COMPONENT),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("ca.crt".to_owned(), ByteString(ca_cert.clone())),
            ("ca.key".to_owned(), ByteString(ca_key)),
        ])),
        ..Secret::default()
    };
    let serving = Secret {
        metadata: metadata(v, names::tls(&v.name), REGISTRY_COMPONENT),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert)),
            ("tls.key".to_owned(), ByteString(key)),
            ("ca.crt".to_owned(), ByteString(ca_cert)),
        ])),
        ..Secret::default()
    };
    Ok(SelfSignedTls {
        ca,
        serving,
        not_after,
    })
}

/// The cert-manager `Certificate` kind.
pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cert-manager.io",
        "v1",
        "Certificate",
    ))
}

/// CertManager mode: a Certificate writing `<name>-tls`.
pub fn certificate(
    v: &ValidatedRegistry,
    issuer: &IssuerRef,
    names_wanted: &[String],
) -> DynamicObject {
    let resource = certificate_resource();
    let mut object = DynamicObject::new(&v.name, &resource);
    object.metadata = metadata(v, v.name.clone(), REGISTRY_COMPONENT);
    let (dns, ips): (Vec<&String>, Vec<&String>) = names_wanted
        .iter()
        .partition(|n| n.parse::<std::net::IpAddr>().is_err());
    object.data = serde_json::json!({
        "spec": {
            "secretName": names::tls(&v.name),
            "dnsNames": dns,
            "ipAddresses": ips,
            "duration": "2160h",
            "renewBefore": "720h",
            "issuerRef": {
                "name": issuer.name,
                "kind": issuer.kind.clone().unwrap_or_else(|| "Issuer".into()),
                "group": issuer.group.clone().unwrap_or_else(|| "cert-manager.io".into()),
            },
            "privateKey": {"rotationPolicy": "Always"},
        }
    });
    object
}

/// Expiry of a certificate in a Secret (`tls.crt`), for status.
pub fn not_after(secret: &SecretData) -> Option<i64> {
    parse_cert(secret.data.get("tls.crt")?).map(|p| p.not_after)
}
