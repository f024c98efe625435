//! Waiting for objects to reach a state, with a timeout and a useful error.

use std::{fmt::Debug, time::Duration};

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
    core::v1::{PersistentVolumeClaim, Pod},
};
use kube::{
    Api, Resource,
    runtime::wait::{Condition, await_condition, conditions},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// A generous default for things controllers do (kwok makes pods Ready within a second or two).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// How much of the last-seen object a timeout error includes.
const LAST_SEEN_MAX: usize = 2000;

/// Wait until `cond` holds for object `name`, at most `timeout`; returns the object as it was
/// when the condition held.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cond: impl Condition<K>,
) -> Result<K>
where
    K: Clone + Debug + Send + DeserializeOwned + Serialize + Resource + 'static,
{
    let what = format!("{}/{name}", api.resource_url());
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => Err(Error::Gone(what)),
        Ok(Err(source)) => Err(Error::Wait { what, source }),
        Err(_) => Err(Error::Timeout {
            what,
            timeout,
            last_seen: last_seen(api, name).await,
        }),
    }
}

/// Wait until the object with `uid` is gone (not found, or replaced by one with another uid).
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, uid: &str, timeout: Duration) -> Result<()>
where
    K: Clone + Debug + Send + DeserializeOwned + Serialize + Resource + 'static,
{
    let what = format!("deletion of {}/{name}", api.resource_url());
    match tokio::time::timeout(
        timeout,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(Error::Wait { what, source }),
        Err(_) => Err(Error::Timeout {
            what,
            timeout,
            last_seen: last_seen(api, name).await,
        }),
    }
}

async fn last_seen<K>(api: &Api<K>, name: &str) -> String
where
    K: Clone + Debug + DeserializeOwned + Serialize + Resource,
{
    match api.get_opt(name).await {
        Ok(Some(obj)) => {
            let mut json =
                serde_json::to_string(&obj).unwrap_or_else(|e| format!("<unserializable: {e}>"));
            if json.len() > LAST_SEEN_MAX {
                let mut cut = LAST_SEEN_MAX;
                while !json.is_char_boundary(cut) {
                    cut -= 1;
                }
                json.truncate(cut);
                json.push_str("...");
            }
            json
        }
        Ok(None) => "absent".to_owned(),
        Err(e) => format!("<get failed: {e}>"),
    }
}

/// Deployment rolled out: `Available=True`, observed the latest generation, and every desired
/// replica updated and ready.
pub fn deployment_available() -> impl Condition<Deployment> {
    |d: Option<&Deployment>| {
        let Some(d) = d else { return false };
        let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
            return false;
        };
        let want = spec.replicas.unwrap_or(1);
        let available = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Available" && c.status == "True");
        available
            && status.observed_generation >= d.metadata.generation
            && status.ready_replicas.unwrap_or(0) == want
            && status.updated_replicas.unwrap_or(0) == want
    }
}

/// Job finished successfully (`Complete=True`).
pub fn job_complete() -> impl Condition<Job> {
    conditions::is_job_completed()
}

/// CronJob has a successful run recorded.
pub fn cronjob_succeeded() -> impl Condition<CronJob> {
    |c: Option<&CronJob>| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.last_successful_time.is_some())
    }
}

/// PersistentVolumeClaim is `Bound`.
pub fn pvc_bound() -> impl Condition<PersistentVolumeClaim> {
    |p: Option<&PersistentVolumeClaim>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            == Some("Bound")
    }
}

/// Pod is `Running` and its `Ready` condition is `True`.
pub fn pod_ready() -> impl Condition<Pod> {
    |p: Option<&Pod>| {
        let Some(status) = p.and_then(|p| p.status.as_ref()) else {
            return false;
        };
        status.phase.as_deref() == Some("Running")
            && status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}
