//! The Berth operator: reconciles `Registry` custom resources into running registries.
