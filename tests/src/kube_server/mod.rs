//! A Kubernetes API server for the suites, held honest by `kubectl`.
//!
//! No real API server can be installed here, so the rig serves one: https with the run's CA,
//! bearer-token authentication, discovery (`/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/<group>/v1`), create/get/list/update/delete, JSON merge patches, chunked JSON watches
//! (with history from a `resourceVersion`, label and field selectors, bookmarks), and
//! server-side apply (`application/apply-patch+yaml`: field managers, `managedFields`,
//! conflicts as 409 `Status` with `FieldManagerConflict` causes, `force`, removal of fields a
//! manager stops applying, no-op applies that keep the `resourceVersion`). Objects get `uid`,
//! `resourceVersion`, `generation`, `creationTimestamp` and the defaults that matter.
//!
//! Behind it runs a small cluster ([`cluster`]): nodes with `nvidia.com/gpu` capacity, a
//! deployment controller (pods directly, status with observedGeneration, ready/available
//! replicas, `Available`/`Progressing` conditions including `ProgressDeadlineExceeded`), a job
//! controller (pods run to success once their image is found, then `Complete`), a
//! scheduler that emits `FailedScheduling` when GPU requests or node selectors do not fit, and
//! a kubelet that "pulls" each image by asking the rig's real registry for the manifest with
//! the pod's `imagePullSecrets`: found → Running/Ready; absent or refused → `ErrImagePull`,
//! then `ImagePullBackOff`, with the registry's message, and events like the kubelet's.

pub mod cluster;
pub mod http;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine;
use hyper_util::rt::TokioIo;
use serde_json::json;
use url::Url;

pub use cluster::{GPU, NodeConfig};
use store::{Store, find_type};

/// A running test API server and its simulated cluster.
pub struct KubeServer {
    /// `https://127.0.0.1:<port>`
    pub url: Url,
    /// The objects.
    pub store: Arc<Store>,
    state: Arc<http::State>,
    kubeconfig: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KubeServer {
    /// Starts a server with `nodes`; `name` names its directory (kubeconfig, kubectl cache).
    pub async fn start(name: &str, nodes: &[NodeConfig]) -> Result<Self> {
        let rig = crate::rig();
        let dir = rig.subdir(name)?;
        let acceptor = crate::https::tls_acceptor(&rig.server_cert)?;
        let listener = crate::https::loopback_listener().await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::new());
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store
                .create(
                    ns_type()?,
                    "",
                    json!({"metadata": {"name": ns}}),
                    "kube-apiserver",
                )
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let node_type = find_type("", "nodes").context("nodes")?;
        for (i, node) in nodes.iter().enumerate() {
            store
                .create(node_type, "", cluster::node_object(node, i), "kubelet")
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let token = crate::registry::random_hex(24);
        let state = Arc::new(http::State {
            store: store.clone(),
            token: token.clone(),
            host: addr.to_string(),
            requests: std::sync::Mutex::new(Vec::new()),
        });
        let serve_state = state.clone();
        let server = crate::rig_runtime().spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, state) = (acceptor.clone(), serve_state.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req| http::handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let options = studio_acr::client::RegistryClientOptions {
            transport: rig.transport_options(),
            max_retries: 1,
            initial_backoff: std::time::Duration::from_millis(20),
            ..Default::default()
        };
        let controllers = crate::rig_runtime().spawn(cluster::run(store.clone(), options));
        let url = Url::parse(&format!("https://{addr}"))?;
        let kubeconfig = dir.join("kubeconfig");
        let ca = base64::engine::general_purpose::STANDARD.encode(&rig.ca.cert_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: studio-test\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n\
             users:\n- name: studio-test\n  user:\n    token: {token}\n\
             contexts:\n- name: studio-test\n  context:\n    cluster: studio-test\n    user: studio-test\n    namespace: default\n\
             current-context: studio-test\n",
            url = url.as_str().trim_end_matches('/'),
        );
        crate::write_private(&kubeconfig, text.as_bytes())?;
        Ok(Self {
            url,
            store,
            state,
            kubeconfig,
            tasks: vec![server, controllers],
        })
    }

    /// The kubeconfig (server, the run's CA, a bearer token), mode 0600.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube client from the kubeconfig, as a user's program would build it.
    pub async fn client(&self) -> Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// `kubectl --kubeconfig <ours>` with a cache directory of its own.
    pub fn kubectl(&self) -> Result<std::process::Command> {
        let mut cmd = std::process::Command::new(crate::require_program("kubectl")?);
        let cache = self.kubeconfig.with_file_name("kube-cache");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(cache);
        Ok(cmd)
    }

    /// Every request seen so far: `METHOD path?query content-type`.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

fn ns_type() -> Result<&'static store::ResourceType> {
    find_type("", "namespaces").context("namespaces")
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
