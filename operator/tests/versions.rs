//! Versions that move together: the chart's appVersion (the default image tag of the operator and
//! of the registries it deploys) and the operator's default registry image follow the crate
//! version, which is also the tag `scripts/images` gives the images.

#[test]
fn chart_and_default_registry_image_follow_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let chart = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/berth-operator/Chart.yaml"
    ))
    .unwrap();
    let chart: serde_yaml::Value = serde_yaml::from_str(&chart).unwrap();
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(version),
        "Chart.yaml appVersion"
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_berth-operator"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains(&format!("ghcr.io/berth-dev/registry:{version}")),
        "default registry image: {help}"
    );

    let images =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/images"))
            .args(["ref", "registry"])
            .env_remove("BERTH_IMAGE_TAG")
            .output()
            .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&images.stdout).trim(),
        format!("berth/registry:{version}")
    );
}
