//! The deploy client: server-side apply of a release's objects, prune, delete, pull secrets.
//!
//! Every object is applied with server-side apply under the field manager `studio` (see
//! [`DeployOptions`]), labelled `app.kubernetes.io/managed-by: studio` and
//! `studio.ml/release: <release>`, in the order of [`crate::manifest::apply_rank`]. Kinds are
//! resolved through API discovery, so CRDs applied first are usable by later objects.
//! Namespaced kinds without a namespace get the client's default namespace.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_runner_deploy::Error> {
//! use studio_runner_deploy::client::{DeployClient, DeployOptions};
//! use studio_runner_deploy::manifest;
//!
//! let kube = kube::Client::try_default().await?;
//! let deploy = DeployClient::new(kube, DeployOptions { namespace: "studio".into(), ..Default::default() });
//! let objects = manifest::parse(&std::fs::read_to_string("deployment.yaml").unwrap_or_default())?;
//! let report = deploy.apply("runner", &objects).await?;
//! let pruned = deploy.prune("runner", &report).await?;
//! println!("applied {}, pruned {}", report.applied.len(), pruned.len());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, verbs};
use tokio::sync::Mutex;

use crate::Error;
use crate::manifest;
use crate::secret::PullSecret;

/// `app.kubernetes.io/managed-by`, set to [`MANAGER`] on every applied object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The label naming the release an object belongs to.
pub const RELEASE_LABEL: &str = "studio.ml/release";
/// The field manager and managed-by value.
pub const MANAGER: &str = "studio";

/// How the client applies.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    /// The namespace for namespaced objects that name none.
    pub namespace: String,
    /// The server-side apply field manager.
    pub field_manager: String,
    /// Take fields other managers own instead of reporting the conflict
    /// (`kubectl apply --server-side --force-conflicts`).
    pub force_conflicts: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            namespace: "default".to_owned(),
            field_manager: MANAGER.to_owned(),
            force_conflicts: false,
        }
    }
}

/// One object of the cluster, as the reports name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The namespace (None for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// An applied object.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Which object.
    pub object: ObjectRef,
    /// Its resourceVersion after the apply (unchanged when the apply was a no-op).
    pub resource_version: String,
    /// Its generation after the apply, for kinds that have one.
    pub generation: Option<i64>,
}

/// What [`DeployClient::apply`] did.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    /// The release.
    pub release: String,
    /// The objects, in apply order.
    pub applied: Vec<Applied>,
}

/// A client for deploying releases to one cluster.
pub struct DeployClient {
    client: kube::Client,
    options: DeployOptions,
    kinds: Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>,
}

impl std::fmt::Debug for DeployClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn gvk_of(object: &DynamicObject) -> Result<GroupVersionKind, Error> {
    let types = object
        .types
        .as_ref()
        .ok_or_else(|| Error::Manifest("an object without apiVersion and kind".to_owned()))?;
    let (group, version) = match types.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", types.api_version.as_str()),
    };
    Ok(GroupVersionKind::gvk(group, version, &types.kind))
}

impl DeployClient {
    /// A client over an existing kube client.
    pub fn new(client: kube::Client, options: DeployOptions) -> Self {
        Self {
            client,
            options,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// A client from a kubeconfig file (its current context).
    pub async fn from_kubeconfig(path: &Path, options: DeployOptions) -> Result<Self, Error> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| Error::Kube(kube::Error::InferKubeconfig(e)))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::Kube(kube::Error::InferKubeconfig(e)))?;
        Ok(Self::new(kube::Client::try_from(config)?, options))
    }

    /// The kube client.
    pub fn kube(&self) -> &kube::Client {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &DeployOptions {
        &self.options
    }

    /// The API resource of a kind, by discovery (cached per client).
    pub async fn resolve(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), Error> {
        if let Some(found) = self.kinds.lock().await.get(gvk) {
            return Ok(found.clone());
        }
        let found = kube::discovery::pinned_kind(&self.client, gvk)
            .await
            .map_err(|e| match e {
                kube::Error::Discovery(_) => Error::UnknownKind {
                    api_version: gvk.api_version(),
                    kind: gvk.kind.clone(),
                },
                kube::Error::Api(s) if s.code == 404 => Error::UnknownKind {
                    api_version: gvk.api_version(),
                    kind: gvk.kind.clone(),
                },
                other => Error::Kube(other),
            })?;
        self.kinds.lock().await.insert(gvk.clone(), found.clone());
        Ok(found)
    }

    fn api(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        namespace: Option<&str>,
    ) -> Api<DynamicObject> {
        match (&caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Server-side applies `objects` as `release`: in apply order, labelled, namespaces
    /// defaulted. A field another manager owns with a different value is
    /// [`Error::ApplyConflict`] unless [`DeployOptions::force_conflicts`].
    pub async fn apply(
        &self,
        release: &str,
        objects: &[DynamicObject],
    ) -> Result<ApplyReport, Error> {
        let mut ordered = objects.to_vec();
        manifest::sort_for_apply(&mut ordered);
        let mut report = ApplyReport {
            release: release.to_owned(),
            applied: Vec::new(),
        };
        let mut params = PatchParams::apply(&self.options.field_manager);
        params.force = self.options.force_conflicts;
        for mut object in ordered {
            let gvk = gvk_of(&object)?;
            let (ar, caps) = self.resolve(&gvk).await?;
            let namespace = match caps.scope {
                Scope::Namespaced => Some(
                    object
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| self.options.namespace.clone()),
                ),
                Scope::Cluster => None,
            };
            object.metadata.namespace = namespace.clone();
            let labels = object.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned());
            labels.insert(RELEASE_LABEL.to_owned(), release.to_owned());
            object.metadata.managed_fields = None;
            object.metadata.resource_version = None;
            let name = object.metadata.name.clone().unwrap_or_default();
            let reference = ObjectRef {
                api_version: gvk.api_version(),
                kind: gvk.kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            };
            let api = self.api(&ar, &caps, namespace.as_deref());
            let applied = api
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => Error::ApplyConflict {
                        object: reference.to_string(),
                        message: s.message,
                    },
                    other => Error::Kube(other),
                })?;
            tracing::info!(object = %reference, resource_version = ?applied.metadata.resource_version, "applied");
            report.applied.push(Applied {
                object: reference,
                resource_version: applied.metadata.resource_version.unwrap_or_default(),
                generation: applied.metadata.generation,
            });
        }
        Ok(report)
    }

    /// Every object in the cluster labelled as part of `release` (all listable kinds found by
    /// discovery, all namespaces; events excluded).
    pub async fn release_objects(&self, release: &str) -> Result<Vec<ObjectRef>, Error> {
        let discovery = kube::Discovery::new(self.client.clone()).run().await?;
        let selector = format!("{MANAGED_BY_LABEL}={MANAGER},{RELEASE_LABEL}={release}");
        let mut found = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::DELETE)
                    || ar.kind == "Event"
                {
                    continue;
                }
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
                let list = api.list(&ListParams::default().labels(&selector)).await?;
                for item in list.items {
                    found.push(ObjectRef {
                        api_version: ar.api_version.clone(),
                        kind: ar.kind.clone(),
                        namespace: item.metadata.namespace.clone(),
                        name: item.metadata.name.clone().unwrap_or_default(),
                    });
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Deletes the objects of `release` that `report` (the latest apply) no longer has.
    pub async fn prune(
        &self,
        release: &str,
        report: &ApplyReport,
    ) -> Result<Vec<ObjectRef>, Error> {
        let keep: Vec<&ObjectRef> = report.applied.iter().map(|a| &a.object).collect();
        let doomed: Vec<ObjectRef> = self
            .release_objects(release)
            .await?
            .into_iter()
            .filter(|o| !keep.contains(&o))
            .collect();
        self.delete_objects(&doomed).await?;
        Ok(doomed)
    }

    /// Deletes every object of `release` (namespaced objects before namespaces).
    pub async fn delete_release(&self, release: &str) -> Result<Vec<ObjectRef>, Error> {
        let mut doomed = self.release_objects(release).await?;
        doomed.sort_by_key(|o| std::cmp::Reverse(manifest::apply_rank(&o.kind)));
        self.delete_objects(&doomed).await?;
        Ok(doomed)
    }

    async fn delete_objects(&self, objects: &[ObjectRef]) -> Result<(), Error> {
        for o in objects {
            let (group, version) = match o.api_version.split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", o.api_version.as_str()),
            };
            let (ar, caps) = self
                .resolve(&GroupVersionKind::gvk(group, version, &o.kind))
                .await?;
            let api = self.api(&ar, &caps, o.namespace.as_deref());
            let params = DeleteParams::background();
            match api.delete(&o.name, &params).await {
                Ok(_) => tracing::info!(object = %o, "deleted"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Creates or updates a registry pull secret (server-side apply) in `namespace` (or the
    /// client's default). It carries no release label, so no release's prune removes it.
    pub async fn apply_pull_secret(
        &self,
        secret: &PullSecret,
        namespace: Option<&str>,
    ) -> Result<Secret, Error> {
        let ns = namespace.unwrap_or(&self.options.namespace);
        let mut object = secret.to_secret(Some(ns));
        object
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned());
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let mut params = PatchParams::apply(&self.options.field_manager);
        params.force = self.options.force_conflicts;
        let mut body = serde_json::to_value(&object).map_err(|e| Error::Manifest(e.to_string()))?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "Secret".into();
        Ok(api
            .patch(&secret.name, &params, &Patch::Apply(&body))
            .await?)
    }
}
