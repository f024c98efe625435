//! The Berth operator: reconciles `Registry` custom resources into running,
//! secured, self-cleaning registries.

pub mod controller;
pub mod crd;
pub mod error;
pub mod metrics;
pub mod node_access;
