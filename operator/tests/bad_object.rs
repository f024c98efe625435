//! One Registry the operator cannot deserialize must not stop the watch.
//! (Its own test binary: it briefly swaps the cluster-wide CRD for a
//! permissive one to store such an object, which would disturb other tests.)

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use operator::crd::Registry;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_registry_does_not_stop_the_others() {
    let env = Env::start("bad-object").await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.cluster.client());
    let mut permissive = serde_json::to_value(Registry::crd()).unwrap();
    permissive["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    permissive["spec"]["versions"][0]["subresources"] = json!({"status": {}});
    permissive["spec"]["versions"][0]["additionalPrinterColumns"] = json!([]);
    crds.patch(
        "registries.berth.dev",
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&permissive),
    )
    .await
    .unwrap();

    // Stored while the schema allows anything: `storage` is a string here.
    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk("berth.dev", "v1alpha1", "Registry"));
    let dynamic: Api<DynamicObject> =
        Api::namespaced_with(env.ns.client(), env.ns.name(), &resource);
    let bad = json!({
        "apiVersion": "berth.dev/v1alpha1", "kind": "Registry",
        "metadata": {"name": "broken"}, "spec": {"storage": "fast please"},
    });
    let mut created = false;
    for _ in 0..50 {
        if dynamic
            .patch(
                "broken",
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(&bad),
            )
            .await
            .is_ok()
        {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(created, "the permissive CRD accepts the object");

    // The real schema is back; the broken object stays stored as it was.
    crds.patch(
        "registries.berth.dev",
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(Registry::crd()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    env.apply_yaml(&Env::example("minimal.yaml")).await;
    env.wait_ready("minimal").await;
    assert!(env.ctx.metrics.reconciles.get() >= 1);
    // The broken one is still there, untouched (no status written).
    let stored = dynamic.get("broken").await.unwrap();
    assert!(stored.data.get("status").is_none());
    dynamic.delete("broken", &Default::default()).await.unwrap();
    env.finish().await;
}
