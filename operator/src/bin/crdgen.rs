//! Prints the `Registry` CustomResourceDefinition as YAML (checked in under `crds/`).
#![allow(clippy::print_stdout)]

use kube::CustomResourceExt;
use operator::crd::Registry;

fn main() -> anyhow::Result<()> {
    print!("{}", serde_yaml::to_string(&Registry::crd())?);
    Ok(())
}
