//! `berth-operator`: runs the Registry controller.

fn main() {}
