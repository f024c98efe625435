//! Writes OCI image layouts (real gzip tar layers) for clients like skopeo to push.

use std::io::Write;
use std::path::Path;

use registry::oci::{Algorithm, Digest};
use serde_json::{Value, json};

use super::{CONFIG, LAYER, OCI_INDEX, OCI_MANIFEST, random_bytes};

/// A blob written into a layout.
#[derive(Debug, Clone)]
pub struct Written {
    pub digest: Digest,
    pub size: usize,
}

fn write_blob(dir: &Path, data: &[u8]) -> Written {
    let digest = Algorithm::Sha256.digest_of(data);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(digest.hex()), data).unwrap();
    Written {
        digest,
        size: data.len(),
    }
}

/// A gzip-compressed tar with one random file; returns (compressed, diff_id).
fn layer(seed: usize, size: usize) -> (Vec<u8>, Digest) {
    let mut tar_bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tar_bytes);
        let data = random_bytes(size);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("file-{seed}"), data.as_slice())
            .unwrap();
        builder.finish().unwrap();
    }
    let diff_id = Algorithm::Sha256.digest_of(&tar_bytes);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar_bytes).unwrap();
    (encoder.finish().unwrap(), diff_id)
}

/// Writes one image (config + `layers` layers) into `dir`; returns the manifest descriptor.
pub fn write_image(dir: &Path, arch: &str, layers: usize, layer_size: usize) -> Value {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let (data, diff_id) = layer(i, layer_size);
        let written = write_blob(dir, &data);
        descriptors.push(
            json!({"mediaType": LAYER, "digest": written.digest.to_string(), "size": written.size}),
        );
        diff_ids.push(diff_id.to_string());
    }
    let config = json!({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = write_blob(dir, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.digest.to_string(), "size": config.size},
        "layers": descriptors,
    });
    let manifest = write_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    json!({
        "mediaType": OCI_MANIFEST, "digest": manifest.digest.to_string(), "size": manifest.size,
        "platform": {"architecture": arch, "os": "linux"},
    })
}

fn finish(dir: &Path, tag: &str, mut root: Value) {
    root["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [root]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A layout with one single-platform image tagged `tag`; returns its manifest digest.
pub fn single_image(dir: &Path, tag: &str, layers: usize, layer_size: usize) -> Digest {
    let mut descriptor = write_image(dir, "amd64", layers, layer_size);
    descriptor.as_object_mut().unwrap().remove("platform");
    let digest = descriptor["digest"].as_str().unwrap().parse().unwrap();
    finish(dir, tag, descriptor);
    digest
}

/// A layout with a multi-arch index tagged `tag`; returns the index digest.
pub fn multi_arch(dir: &Path, tag: &str, arches: &[&str]) -> Digest {
    let children: Vec<Value> = arches
        .iter()
        .map(|arch| write_image(dir, arch, 2, 20_000))
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let written = write_blob(dir, &serde_json::to_vec(&index).unwrap());
    finish(
        dir,
        tag,
        json!({"mediaType": OCI_INDEX, "digest": written.digest.to_string(), "size": written.size}),
    );
    written.digest
}

/// Every blob digest in a layout.
pub fn blob_set(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
