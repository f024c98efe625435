//! Operator test harness: the real local control plane (e2e crate), the CRD
//! installed by server-side apply, and a controller running in-process for
//! one test namespace (so tests run in parallel without seeing each other).
#![allow(dead_code)]

pub mod in_cluster;

use std::sync::Arc;
use std::time::Duration;

use e2e::{Cluster, TestNamespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{CustomResourceExt, ResourceExt};
use operator::controller::validate::Defaults;
use operator::controller::{Context, run::run};
use operator::crd::Registry;
use serde::Deserialize;
use tokio::sync::{OnceCell, oneshot};

pub const IMAGE: &str = "localhost/berth/registry:e2e";
pub const TEST_MANAGER: &str = "berth-e2e-test";

static CRD: OnceCell<()> = OnceCell::const_new();

/// One test's world: a namespace and a controller watching only it.
pub struct Env {
    pub cluster: Cluster,
    pub ns: TestNamespace,
    pub ctx: Arc<Context>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Installs (or updates) the CRD once per test process and waits until it is served.
pub async fn install_crd(cluster: &Cluster) {
    CRD.get_or_init(|| async {
        let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
        crds.patch(
            "registries.berth.dev",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(Registry::crd()),
        )
        .await
        .expect("the CRD is accepted by the API server");
        for _ in 0..100 {
            let established = crds
                .get("registries.berth.dev")
                .await
                .ok()
                .and_then(|crd| crd.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the CRD did not become established");
    })
    .await;
}

impl Env {
    /// A namespace with the controller running in it.
    pub async fn start(test: &str) -> Self {
        Self::start_inner(test, true).await
    }

    /// A namespace only (the test runs operator processes itself).
    pub async fn start_without_controller(test: &str) -> Self {
        Self::start_inner(test, false).await
    }

    async fn start_inner(test: &str, controller: bool) -> Self {
        e2e::init_tracing();
        let cluster = Cluster::shared().await.expect("a cluster (e2e/cluster up)");
        install_crd(&cluster).await;
        let ns = cluster.namespace(test).await.expect("a test namespace");
        let ctx = Arc::new(Context::new(
            cluster.client(),
            Defaults {
                image: IMAGE.into(),
            },
        ));
        if !controller {
            return Env {
                cluster,
                ns,
                ctx,
                stop: None,
                task: None,
            };
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(ctx.clone(), Some(ns.name().to_owned()), 4, async {
            let _ = stopped.await;
        }));
        Env {
            cluster,
            ns,
            ctx,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.ns.api()
    }

    /// Applies every object of a (multi-document) YAML into the namespace.
    pub async fn apply_yaml(&self, yaml: &str) {
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let value = serde_yaml::Value::deserialize(document).unwrap();
            if value.is_null() {
                continue;
            }
            let mut object: DynamicObject = serde_yaml::from_value(value).unwrap();
            let types = object.types.clone().expect("apiVersion and kind");
            let (group, version) = types
                .api_version
                .split_once('/')
                .unwrap_or(("", &types.api_version));
            let resource =
                ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
            object.metadata.namespace = Some(self.ns.name().to_owned());
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.ns.client(), self.ns.name(), &resource);
            api.patch(
                &object.name_any(),
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {} {}: {e}", types.kind, object.name_any()));
        }
    }

    /// An example from `examples/`.
    pub fn example(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    }

    /// Waits until a condition of the Registry holds.
    pub async fn wait_registry(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Registry) -> bool,
    ) -> Registry {
        let api: Api<Registry> = self.api();
        for _ in 0..600 {
            if let Ok(registry) = api.get(name).await
                && check(&registry)
            {
                return registry;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = api.get(name).await.ok().and_then(|r| r.status);
        panic!("Registry {name}: timed out waiting for {what}; status: {last:#?}");
    }

    /// Waits until the Registry reports Ready=True with every replica available
    /// (reason `Available`, not `MinimumAvailability`) for its current generation.
    pub async fn wait_ready(&self, name: &str) -> Registry {
        self.wait_registry(name, "Ready with all replicas available", |r| {
            condition(r, "Ready").is_some_and(|c| c.status == "True" && c.reason == "Available")
                && r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
        })
        .await
    }

    /// Stops the controller and deletes the namespace.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A condition of a Registry's status.
pub fn condition<'a>(
    registry: &'a Registry,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    registry
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Polls `check` until it returns `Some`, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
