//! The Registry controller: dereference -> validate -> build -> apply -> status.

pub mod build;
pub mod model;
pub mod observed;
pub mod validate;

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod validate_tests;
