//! The checked-in CRD (`crds/registry.yaml`) and the Helm chart's copy must
//! equal what the Rust types generate.

use kube::CustomResourceExt;
use operator::crd::Registry;

#[test]
fn checked_in_crd_matches_the_rust_types() {
    let generated = serde_yaml::to_string(&Registry::crd()).unwrap();
    for path in [
        "crds/registry.yaml",
        "charts/berth-operator/files/registry.crd.yaml",
    ] {
        let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is out of date: run `cargo run -p operator --bin crdgen > {path}`"
        );
    }
}
