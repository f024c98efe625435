//! The Registry controller: dereference -> validate -> build -> apply -> status.

pub mod apply;
pub mod build;
pub mod context;
pub mod dereference;
pub mod model;
pub mod node_access;
pub mod observed;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod validate;

pub use context::Context;
pub use reconcile::{error_policy, reconcile};

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod validate_tests;
