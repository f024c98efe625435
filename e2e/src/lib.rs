//! Test harness for a real local Kubernetes control plane (see `e2e/cluster`).
