//! One uniquely named namespace per test, deleted when the test is done.

use std::{collections::BTreeMap, fmt, time::Duration};

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::{Namespace, ServiceAccount},
};
use kube::{
    Api, Client, Config, Resource,
    api::{DeleteParams, ObjectMeta, PostParams},
};

use crate::{Result, wait};

/// Label set on every namespace the harness creates.
pub const E2E_LABEL: &str = "berth.dev/e2e";
/// Label carrying the (sanitised) test name.
pub const TEST_LABEL: &str = "berth.dev/e2e-test";
/// Env var: `always` keeps every test namespace, `failed` keeps those of panicking tests.
pub const KEEP_ENV: &str = "BERTH_E2E_KEEP_NAMESPACES";

/// How long a new namespace may take to get its `default` ServiceAccount.
const DEFAULT_SA_TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace owned by one test. Dropping it deletes the namespace (in the background: the drop
/// does not wait for the namespace's contents to be finalized).
pub struct TestNamespace {
    name: String,
    client: Client,
    config: Config,
    deleted: bool,
}

impl fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestNamespace {
    /// Create `e2e-<test>-<random>` and wait until its `default` ServiceAccount exists, so that
    /// pods can be created in it right away.
    pub(crate) async fn create(client: Client, config: Config, test: &str) -> Result<Self> {
        let test = sanitize(test);
        let name = format!("e2e-{test}-{}", crate::random_suffix(5));
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([
                    (E2E_LABEL.to_owned(), "true".to_owned()),
                    (TEST_LABEL.to_owned(), test),
                ])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        tracing::info!(namespace = %name, "created test namespace");
        let this = Self {
            name,
            client,
            config,
            deleted: false,
        };
        let sas: Api<ServiceAccount> = this.api();
        wait::wait_for(
            &sas,
            "default",
            DEFAULT_SA_TIMEOUT,
            |sa: Option<&ServiceAccount>| sa.is_some(),
        )
        .await?;
        Ok(this)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client for the cluster.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An [`Api`] for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Delete the namespace now (background propagation) instead of on drop.
    pub async fn cleanup(mut self) -> Result<()> {
        self.deleted = true;
        delete_namespace(self.client.clone(), &self.name).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let keep = std::env::var(KEEP_ENV).unwrap_or_default();
        if keep == "always" || (keep == "failed" && std::thread::panicking()) {
            tracing::warn!(namespace = %self.name, "keeping test namespace ({KEEP_ENV}={keep})");
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: delete from a short-lived
        // thread with its own runtime and client.
        let name = self.name.clone();
        let config = self.config.clone();
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = Client::try_from(config)?;
                delete_namespace(client, &name).await
            })
        })
        .join();
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(namespace = %self.name, "deleting test namespace failed: {e}")
            }
            Err(_) => tracing::warn!(namespace = %self.name, "namespace cleanup thread panicked"),
        }
    }
}

async fn delete_namespace(client: Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(client)
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %name, "deleting test namespace");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Turn a test name into a DNS-1123 label fragment of at most 40 characters.
fn sanitize(test: &str) -> String {
    let mut out = String::with_capacity(test.len());
    for c in test.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(40);
    let out = out.trim_matches('-');
    if out.is_empty() {
        "test".to_owned()
    } else {
        out.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitizes_test_names() {
        assert_eq!(sanitize("cluster::pvc_binds"), "cluster-pvc-binds");
        assert_eq!(sanitize("--A B--"), "a-b");
        assert_eq!(sanitize("___"), "test");
        assert!(sanitize(&"x".repeat(100)).len() <= 40);
    }
}
