//! apply: server-side apply with one field manager — but only when needed.
//! A no-op apply is still a write request, so each child carries a hash of its
//! desired form; an object whose hash matches, whose generation nobody else
//! moved, and (for Secrets and ConfigMaps) whose data is intact is left alone.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::build::labels::REGISTRY_LABEL;
use super::context::{Context, FIELD_MANAGER};
use crate::error::{Error, Result};

/// Annotation with the hash of the object as the operator last rendered it.
pub const HASH_ANNOTATION: &str = "berth.dev/desired-hash";

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Created,
    Updated,
}

fn hash_of<T: Serialize>(object: &T) -> Result<String> {
    Ok(hex::encode(Sha256::digest(serde_json::to_vec(object)?)))
}

/// Whether the data a Secret or ConfigMap should hold is what it holds.
fn data_intact(desired: &serde_json::Value, current: &serde_json::Value) -> bool {
    ["data", "stringData"].iter().all(|field| {
        desired
            .get(field)
            .is_none_or(|want| current.get(field) == Some(want))
    })
}

/// Applies namespaced objects of one Registry.
#[derive(Debug)]
pub struct Applier<'a> {
    pub ctx: &'a Context,
    pub namespace: &'a str,
    /// The Registry the children belong to (their `berth.dev/registry` label).
    pub registry: &'a str,
}

/// Refuses to write over an object that is not this Registry's child: a
/// force-apply would take it over (and the Registry's deletion would later
/// collect it), e.g. a cert-manager Secret or a hand-made Service that
/// happens to have the child's name.
fn ensure_ours<K: Resource>(current: &K, registry: &str, kind: &str) -> Result<()> {
    if current.labels().get(REGISTRY_LABEL).map(String::as_str) == Some(registry) {
        Ok(())
    } else {
        Err(Error::NameConflict {
            kind: kind.to_owned(),
            name: current.name_any(),
        })
    }
}

impl Applier<'_> {
    /// Applies `object` unless the live one already matches; returns the live object.
    pub async fn apply<K>(&self, mut object: K) -> Result<(K, Applied)>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        let kind = K::kind(&()).to_string();
        let hash = hash_of(&object)?;
        object
            .annotations_mut()
            .insert(HASH_ANNOTATION.to_owned(), hash.clone());
        let name = object.name_any();
        let key = format!("{kind}/{}/{name}", self.namespace);
        let current = api.get_opt(&name).await?;
        if let Some(current) = &current {
            ensure_ours(current, self.registry, &kind)?;
            let same = current.annotations().get(HASH_ANNOTATION) == Some(&hash)
                && !self.ctx.generation_drifted(&key, current.meta().generation)
                && data_intact(
                    &serde_json::to_value(&object)?,
                    &serde_json::to_value(current)?,
                );
            if same {
                return Ok((current.clone(), Applied::Unchanged));
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let live = api.patch(&name, &params, &Patch::Apply(&object)).await?;
        self.ctx.metrics.write(&kind);
        self.ctx.record_generation(&key, live.meta().generation);
        tracing::info!(%kind, %name, created = current.is_none(), "applied");
        let outcome = if current.is_some() {
            Applied::Updated
        } else {
            Applied::Created
        };
        Ok((live, outcome))
    }

    /// The same for kinds known only at runtime (ServiceMonitor, cert-manager Certificate).
    pub async fn apply_dynamic(
        &self,
        mut object: DynamicObject,
        resource: &ApiResource,
    ) -> Result<Applied> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), self.namespace, resource);
        let hash = hash_of(&object)?;
        object
            .annotations_mut()
            .insert(HASH_ANNOTATION.to_owned(), hash.clone());
        let name = object.name_any();
        let key = format!("{}/{}/{name}", resource.kind, self.namespace);
        let current = api.get_opt(&name).await?;
        if let Some(current) = &current {
            ensure_ours(current, self.registry, &resource.kind)?;
        }
        if let Some(current) = &current
            && current.annotations().get(HASH_ANNOTATION) == Some(&hash)
            && !self
                .ctx
                .generation_drifted(&key, current.metadata.generation)
        {
            return Ok(Applied::Unchanged);
        }
        let live = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await?;
        self.ctx.metrics.write(&resource.kind);
        self.ctx.record_generation(&key, live.metadata.generation);
        Ok(if current.is_some() {
            Applied::Updated
        } else {
            Applied::Created
        })
    }

    /// Deletes a child that is no longer wanted, if it exists and belongs to `registry`
    /// (never an object someone else made under the same name).
    pub async fn remove<K>(&self, name: &str, registry: &str) -> Result<bool>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.ctx.client.clone(), self.namespace);
        self.remove_with(api, name, registry, &K::kind(&())).await
    }

    pub async fn remove_dynamic(
        &self,
        resource: &ApiResource,
        name: &str,
        registry: &str,
    ) -> Result<bool> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), self.namespace, resource);
        self.remove_with(api, name, registry, &resource.kind).await
    }

    async fn remove_with<K>(
        &self,
        api: Api<K>,
        name: &str,
        registry: &str,
        kind: &str,
    ) -> Result<bool>
    where
        K: Resource + Clone + Debug + DeserializeOwned,
    {
        let owned = api.get_opt(name).await?.is_some_and(|object| {
            object.labels().get(REGISTRY_LABEL).map(String::as_str) == Some(registry)
        });
        if !owned {
            return Ok(false);
        }
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {
                self.ctx.metrics.write(kind);
                tracing::info!(%kind, %name, "deleted child that is no longer wanted");
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_comparison_ignores_fields_the_operator_does_not_set() {
        let desired = json!({"data": {"a": "eA=="}});
        assert!(data_intact(
            &desired,
            &json!({"data": {"a": "eA=="}, "type": "Opaque"})
        ));
        assert!(!data_intact(&desired, &json!({"data": {"a": "eQ=="}})));
        assert!(!data_intact(
            &desired,
            &json!({"data": {"a": "eA==", "b": "x"}})
        ));
        assert!(data_intact(
            &json!({"spec": {}}),
            &json!({"spec": {"x": 1}})
        ));
    }
}
