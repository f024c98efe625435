//! Scheduled garbage collection and upload purging.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A CronJob running `registry garbage-collect`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GcSpec {
    /// Cron schedule (default "0 3 * * *"): five fields or @daily/@weekly/...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = kube::core::Rule::new(
        "self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\\\\S+\\\\s+){4}\\\\S+)$')"
    ).message("gc.schedule must have five cron fields or be @yearly/@monthly/@weekly/@daily/@hourly"))]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule, e.g. Europe/Berlin (default: the controller manager's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub time_zone: Option<String>,
    /// Pause scheduled runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Also delete manifests no tag reaches (children of tagged indexes and
    /// referrers of kept manifests are always kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_untagged: Option<bool>,
    /// ReadOnly (default): a short read-only window while marking and sweeping.
    /// Online: no window; only content older than `minAge` is swept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<GcMode>,
    /// Report what would be deleted without deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Online mode: only sweep content older than this (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    pub min_age: Option<String>,
    /// Jobs kept after success (default 3) and failure (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub successful_jobs_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub failed_jobs_history_limit: Option<i32>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GcMode {
    #[default]
    ReadOnly,
    Online,
}

/// Removal of abandoned upload sessions by the registry itself.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UploadPurgingSpec {
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Sessions older than this are removed (default 168h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    pub age: Option<String>,
    /// How often to look (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    pub interval: Option<String>,
}
