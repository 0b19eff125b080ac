//! The simulated cluster: nodes, a deployment controller, a scheduler and a kubelet whose
//! image pulls ask the rig's real registry for the manifest with the pod's pull secrets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::store::{Store, find_type, key_for, now_rfc3339};

/// A node of the simulated cluster.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's name.
    pub name: String,
    /// Its `nvidia.com/gpu` capacity.
    pub gpus: u32,
}

/// The GPU resource the scheduler counts.
pub const GPU: &str = "nvidia.com/gpu";

pub fn node_object(node: &NodeConfig, index: usize) -> Value {
    let resources = json!({
        "cpu": "8", "memory": "57629464Ki", "pods": "110", GPU: node.gpus.to_string(),
        "ephemeral-storage": "128917488Ki",
    });
    json!({
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/os": "linux", "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": node.name,
                "accelerator": "nvidia",
            },
        },
        "spec": {},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": now_rfc3339(),
                "lastTransitionTime": now_rfc3339()}],
            "addresses": [{"type": "InternalIP", "address": format!("10.240.0.{}", 4 + index)},
                {"type": "Hostname", "address": node.name}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "containerd://1.7.27",
                "operatingSystem": "linux", "architecture": "amd64", "osImage": "Ubuntu 22.04.5 LTS",
                "kernelVersion": "5.15.0", "machineID": "", "systemUUID": "", "bootID": "",
                "kubeProxyVersion": ""},
        },
    })
}

/// What the kubelet knows about one container's image.
#[derive(Clone, Debug)]
enum Pull {
    InFlight,
    Pulled,
    Failed {
        message: String,
        at: Instant,
        backoff: Duration,
        reported_backoff: bool,
    },
}

/// The controllers' memory (a real cluster keeps it in ReplicaSets and the kubelet).
#[derive(Default)]
struct Memory {
    /// Deployment uid → (generation, last progress, last seen counts).
    progress: HashMap<String, (i64, Instant, (i64, i64))>,
    /// Pods already reported unschedulable.
    unschedulable: HashSet<String>,
    /// (pod uid, container) → pull state.
    pulls: HashMap<(String, String), Pull>,
    next_ip: u32,
}

/// Runs the controllers until the store is dropped.
pub async fn run(store: Arc<Store>, registry_options: studio_acr::client::RegistryClientOptions) {
    let memory = Arc::new(std::sync::Mutex::new(Memory::default()));
    loop {
        reconcile(&store, &memory, &registry_options);
        tokio::select! {
            _ = store.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        // Let a burst of writes settle.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lock(m: &std::sync::Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn reconcile(
    store: &Arc<Store>,
    memory: &Arc<std::sync::Mutex<Memory>>,
    registry: &studio_acr::client::RegistryClientOptions,
) {
    deployments(store, memory);
    jobs(store);
    schedule(store, memory);
    kubelet(store, memory, registry);
}

fn name_of(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn ns_of(o: &Value) -> String {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn uid_of(o: &Value) -> String {
    o["metadata"]["uid"].as_str().unwrap_or_default().to_owned()
}

fn owned_by(o: &Value, uid: &str) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["uid"] == uid))
}

fn template_hash(template: &Value) -> String {
    let digest = sha2::Sha256::digest(template.to_string().as_bytes());
    // Like the pod-template-hash: short, lower-case alphanumerics.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest[..10]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn deployments(store: &Arc<Store>, memory: &Arc<std::sync::Mutex<Memory>>) {
    let (Some(dt), Some(pt)) = (find_type("apps", "deployments"), find_type("", "pods")) else {
        return;
    };
    let (deploys, _) = store.list(dt, None);
    let (pods, _) = store.list(pt, None);
    for d in deploys {
        let (name, ns, uid) = (name_of(&d), ns_of(&d), uid_of(&d));
        let template = &d["spec"]["template"];
        let hash = template_hash(template);
        let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let mut owned: Vec<&Value> = pods.iter().filter(|p| owned_by(p, &uid)).collect();
        // Recreate-style rollout: pods of an old template go at once.
        for old in owned
            .iter()
            .filter(|p| p["metadata"]["labels"]["pod-template-hash"] != hash.as_str())
        {
            let _ = store.delete(pt, &ns, &name_of(old));
        }
        owned.retain(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        let count = owned.len() as i64;
        for extra in owned.iter().skip(desired.max(0) as usize) {
            let _ = store.delete(pt, &ns, &name_of(extra));
        }
        for _ in count..desired {
            let mut labels = template["metadata"]["labels"].clone();
            labels["pod-template-hash"] = json!(hash);
            let suffix = &crate::registry::random_hex(3)[..5];
            let pod = json!({
                "metadata": {
                    "name": format!("{name}-{hash}-{suffix}"),
                    "labels": labels,
                    "annotations": template["metadata"]["annotations"].clone(),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-{hash}"),
                        "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": template["spec"].clone(),
                "status": {"phase": "Pending", "qosClass": "BestEffort"},
            });
            let mut pod = pod;
            if pod["metadata"]["annotations"].is_null()
                && let Some(m) = pod["metadata"].as_object_mut()
            {
                m.remove("annotations");
            }
            let _ = store.create(pt, &ns, pod, "kube-controller-manager");
        }
        let current: Vec<&Value> = owned
            .iter()
            .take(desired.max(0) as usize)
            .copied()
            .collect();
        let replicas = current.len() as i64;
        let ready_count = current.iter().filter(|p| ready(p)).count() as i64;
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        let deadline = d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600);
        let now = Instant::now();
        let progressed_at = {
            let mut mem = lock(memory);
            let entry = mem
                .progress
                .entry(uid.clone())
                .or_insert((generation, now, (-1, -1)));
            if entry.0 != generation || entry.2 != (replicas, ready_count) {
                *entry = (generation, now, (replicas, ready_count));
            }
            entry.1
        };
        let rs = format!("{name}-{hash}");
        let complete = replicas == desired && ready_count == desired;
        let old_status = &d["status"];
        let condition = |ty: &str, status: &str, reason: &str, message: String| {
            // Keep timestamps when nothing about the condition changed.
            let previous = old_status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == ty).cloned());
            let same = previous.as_ref().is_some_and(|p| {
                p["status"] == status && p["reason"] == reason && p["message"] == message.as_str()
            });
            let (update, transition) = match &previous {
                Some(p) if same => (p["lastUpdateTime"].clone(), p["lastTransitionTime"].clone()),
                Some(p) if p["status"] == status => {
                    (json!(now_rfc3339()), p["lastTransitionTime"].clone())
                }
                _ => (json!(now_rfc3339()), json!(now_rfc3339())),
            };
            json!({"type": ty, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": update, "lastTransitionTime": transition})
        };
        let max_unavailable = desired / 4;
        let available = if ready_count >= desired - max_unavailable {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let progressing = if complete {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs}\" has successfully progressed."),
            )
        } else if now.duration_since(progressed_at) > Duration::from_secs(deadline) {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs}\" has timed out progressing."),
            )
        } else {
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs}\" is progressing."),
            )
        };
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready_count,
            "availableReplicas": ready_count,
            "conditions": [available, progressing],
        });
        if desired - ready_count > 0 {
            status["unavailableReplicas"] = json!(desired - ready_count);
        }
        for zero in [
            "readyReplicas",
            "availableReplicas",
            "replicas",
            "updatedReplicas",
        ] {
            if status[zero] == 0
                && let Some(m) = status.as_object_mut()
            {
                m.remove(zero);
            }
        }
        store.set_status(dt, &ns, &name, status);
    }
}

/// The job controller: one pod at a time until `completions` pods succeeded.
fn jobs(store: &Arc<Store>) {
    let (Some(jt), Some(pt)) = (find_type("batch", "jobs"), find_type("", "pods")) else {
        return;
    };
    let (jobs, _) = store.list(jt, None);
    let (pods, _) = store.list(pt, None);
    for job in jobs {
        let (name, ns, uid) = (name_of(&job), ns_of(&job), uid_of(&job));
        let owned: Vec<&Value> = pods.iter().filter(|p| owned_by(p, &uid)).collect();
        let succeeded = owned
            .iter()
            .filter(|p| p["status"]["phase"] == "Succeeded")
            .count() as i64;
        let active = owned.len() as i64 - succeeded;
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        if active == 0 && succeeded < completions {
            let template = &job["spec"]["template"];
            let suffix = &crate::registry::random_hex(3)[..5];
            let pod = json!({
                "metadata": {
                    "name": format!("{name}-{suffix}"),
                    "labels": template["metadata"]["labels"].clone(),
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                        "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": template["spec"].clone(),
                "status": {"phase": "Pending", "qosClass": "BestEffort"},
            });
            let _ = store.create(pt, &ns, pod, "kube-controller-manager");
        }
        let old = &job["status"];
        let keep = |field: &str| {
            old[field]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(now_rfc3339)
        };
        let mut status = json!({"startTime": keep("startTime"), "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {}});
        if active > 0 {
            status["active"] = json!(active);
        }
        if succeeded > 0 {
            status["succeeded"] = json!(succeeded);
        }
        if succeeded >= completions {
            let done = keep("completionTime");
            status["completionTime"] = json!(done);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods", "lastProbeTime": done, "lastTransitionTime": done},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods", "lastProbeTime": done, "lastTransitionTime": done},
            ]);
        }
        store.set_status(jt, &ns, &name, status);
    }
}

fn gpu_request(pod: &Value) -> u64 {
    pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let r = &c["resources"];
                    let v = if r["requests"][GPU].is_null() {
                        &r["limits"][GPU]
                    } else {
                        &r["requests"][GPU]
                    };
                    match v {
                        Value::String(s) => s.parse().unwrap_or(0),
                        Value::Number(n) => n.as_u64().unwrap_or(0),
                        _ => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// What an event says: type (`Normal`/`Warning`), reason, message.
type EventText<'a> = (&'a str, &'a str, &'a str);

fn record_event(
    store: &Store,
    object: &Value,
    kind: &str,
    (ty, reason, message): EventText<'_>,
    component: &str,
    host: Option<&str>,
) {
    let Some(et) = find_type("", "events") else {
        return;
    };
    let ns = ns_of(object);
    let name = name_of(object);
    let event = json!({
        "metadata": {"name": format!("{name}.{}", crate::registry::random_hex(8))},
        "involvedObject": {"kind": kind, "namespace": ns, "name": name, "uid": uid_of(object),
            "apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" },
            "resourceVersion": object["metadata"]["resourceVersion"].clone()},
        "reason": reason,
        "message": message,
        "source": match host { Some(h) => json!({"component": component, "host": h}), None => json!({"component": component}) },
        "firstTimestamp": now_rfc3339(),
        "lastTimestamp": now_rfc3339(),
        "count": 1,
        "type": ty,
        "eventTime": Value::Null,
        "reportingComponent": component,
        "reportingInstance": host.unwrap_or_default(),
    });
    let _ = store.create(et, &ns, event, component);
}

fn schedule(store: &Arc<Store>, memory: &Arc<std::sync::Mutex<Memory>>) {
    let (Some(pt), Some(nt)) = (find_type("", "pods"), find_type("", "nodes")) else {
        return;
    };
    let (nodes, _) = store.list(nt, None);
    let (pods, _) = store.list(pt, None);
    let mut used: BTreeMap<String, u64> = BTreeMap::new();
    for p in &pods {
        if let Some(n) = p["spec"]["nodeName"].as_str() {
            *used.entry(n.to_owned()).or_default() += gpu_request(p);
        }
    }
    for pod in pods.iter().filter(|p| p["spec"]["nodeName"].is_null()) {
        let want = gpu_request(pod);
        let selector = pod["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut chosen = None;
        for node in &nodes {
            let labels = &node["metadata"]["labels"];
            if !selector.iter().all(|(k, v)| &labels[k] == v) {
                *reasons
                    .entry("node(s) didn't match Pod's node affinity/selector".into())
                    .or_default() += 1;
                continue;
            }
            let capacity: u64 = node["status"]["allocatable"][GPU]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let node_name = name_of(node);
            if used.get(&node_name).copied().unwrap_or(0) + want > capacity {
                *reasons.entry(format!("Insufficient {GPU}")).or_default() += 1;
                continue;
            }
            chosen = Some(node_name);
            break;
        }
        let (ns, name) = (ns_of(pod), name_of(pod));
        match chosen {
            Some(node) => {
                *used.entry(node.clone()).or_default() += want;
                let bound = store.mutate(pt, &ns, &name, |p| {
                    p["spec"]["nodeName"] = json!(node);
                    p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True",
                        "lastProbeTime": Value::Null, "lastTransitionTime": now_rfc3339()}]);
                });
                if let Some(bound) = bound {
                    record_event(
                        store,
                        &bound,
                        "Pod",
                        (
                            "Normal",
                            "Scheduled",
                            &format!("Successfully assigned {ns}/{name} to {node}"),
                        ),
                        "default-scheduler",
                        None,
                    );
                }
            }
            None => {
                let n = nodes.len();
                let parts: Vec<String> = reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
                let message = format!(
                    "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod.",
                    parts.join(", ")
                );
                let first = lock(memory).unschedulable.insert(uid_of(pod));
                let updated = store.mutate(pt, &ns, &name, |p| {
                    p["status"]["phase"] = json!("Pending");
                    p["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                        "lastProbeTime": Value::Null, "lastTransitionTime": p["status"]["conditions"][0]["lastTransitionTime"].as_str().map(str::to_owned).unwrap_or_else(now_rfc3339),
                        "reason": "Unschedulable", "message": message}]);
                });
                if first && let Some(p) = updated {
                    record_event(
                        store,
                        &p,
                        "Pod",
                        ("Warning", "FailedScheduling", &message),
                        "default-scheduler",
                        None,
                    );
                }
            }
        }
    }
}

/// The credential the kubelet would use for `registry`: the first of the pod's pull secrets
/// with an entry for it.
fn pull_credential(
    store: &Store,
    pod: &Value,
    registry: &str,
) -> studio_acr::auth::RegistryCredential {
    use studio_acr::auth::RegistryCredential;
    let ns = ns_of(pod);
    let Some(st) = find_type("", "secrets") else {
        return RegistryCredential::Anonymous;
    };
    for reference in pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(name) = reference["name"].as_str() else {
            continue;
        };
        let Some(secret) = store.get(&key_for(st, &ns, name)) else {
            continue;
        };
        if secret["type"] != "kubernetes.io/dockerconfigjson" {
            continue;
        }
        let Some(encoded) = secret["data"][".dockerconfigjson"].as_str() else {
            continue;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        let Ok(config) = serde_json::from_slice::<Value>(&raw) else {
            continue;
        };
        let entry = &config["auths"][registry];
        if entry.is_null() {
            continue;
        }
        let (user, pass) = match (entry["username"].as_str(), entry["password"].as_str()) {
            (Some(u), Some(p)) => (u.to_owned(), p.to_owned()),
            _ => {
                let decoded = entry["auth"]
                    .as_str()
                    .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                match decoded.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => continue,
                }
            }
        };
        return RegistryCredential::basic(&user, &pass);
    }
    RegistryCredential::Anonymous
}

/// Asks the registry for the image's manifest, as a pull would first.
async fn check_image(
    image: String,
    credential: studio_acr::auth::RegistryCredential,
    options: studio_acr::client::RegistryClientOptions,
) -> Result<(), String> {
    use studio_acr::auth::Scope;
    use studio_acr::client::{MANIFEST_ACCEPT, RegistryClient, check};
    let reference: studio_acr::reference::Reference = image
        .parse()
        .map_err(|e: studio_acr::Error| e.to_string())?;
    // The simulated node reaches only the rig's registries, never the internet.
    let host = reference
        .api_host()
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(reference.api_host());
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err(format!(
            "failed to resolve reference \"{image}\": dial tcp: lookup {host}: the test cluster reaches only loopback registries"
        ));
    }
    let client = RegistryClient::new(reference.api_host(), credential, options)
        .map_err(|e| e.to_string())?;
    let url = client
        .url(&format!(
            "v2/{}/manifests/{}",
            reference.repository(),
            reference.manifest_reference()
        ))
        .map_err(|e| e.to_string())?;
    let scopes = [Scope::repository(reference.repository(), &["pull"])];
    let response = client
        .send(&scopes, |http| {
            http.get(url.clone()).header("accept", MANIFEST_ACCEPT)
        })
        .await
        .map_err(|e| format!("failed to resolve reference \"{image}\": {e}"))?;
    check(
        response,
        &format!("failed to resolve reference \"{image}\""),
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

fn kubelet(
    store: &Arc<Store>,
    memory: &Arc<std::sync::Mutex<Memory>>,
    registry: &studio_acr::client::RegistryClientOptions,
) {
    let Some(pt) = find_type("", "pods") else {
        return;
    };
    let (pods, _) = store.list(pt, None);
    for pod in pods.iter().filter(|p| p["spec"]["nodeName"].is_string()) {
        let (ns, name, uid) = (ns_of(pod), name_of(pod), uid_of(pod));
        let node = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let containers = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut statuses = Vec::new();
        let mut all_running = true;
        let run_to_completion = pod["spec"]["restartPolicy"] != "Always";
        let mut events: Vec<(&str, &str, String)> = Vec::new();
        for c in &containers {
            let cname = c["name"].as_str().unwrap_or_default().to_owned();
            let image = c["image"].as_str().unwrap_or_default().to_owned();
            let key = (uid.clone(), cname.clone());
            let state = lock(memory).pulls.get(&key).cloned();
            let now = Instant::now();
            let start_pull = match &state {
                None => true,
                Some(Pull::Failed { at, backoff, .. }) => now.duration_since(*at) >= *backoff,
                _ => false,
            };
            if start_pull {
                let previous_backoff = match &state {
                    Some(Pull::Failed { backoff, .. }) => Some(*backoff),
                    _ => None,
                };
                lock(memory).pulls.insert(key.clone(), Pull::InFlight);
                events.push(("Normal", "Pulling", format!("Pulling image \"{image}\"")));
                let credential = pull_credential(
                    store,
                    pod,
                    image
                        .parse::<studio_acr::reference::Reference>()
                        .map(|r| r.registry().to_owned())
                        .unwrap_or_default()
                        .as_str(),
                );
                let (memory, store, options) = (memory.clone(), store.clone(), registry.clone());
                let (key, image) = (key.clone(), image.clone());
                tokio::spawn(async move {
                    let result = check_image(image.clone(), credential, options).await;
                    let next = match result {
                        Ok(()) => Pull::Pulled,
                        Err(e) => Pull::Failed {
                            message: e,
                            at: Instant::now(),
                            backoff: previous_backoff
                                .map(|b| (b * 2).min(Duration::from_secs(10)))
                                .unwrap_or(Duration::from_secs(1)),
                            reported_backoff: false,
                        },
                    };
                    lock(&memory).pulls.insert(key, next);
                    store.poke();
                });
            }
            let state = lock(memory).pulls.get(&key).cloned();
            let previous = pod["status"]["containerStatuses"]
                .as_array()
                .and_then(|cs| cs.iter().find(|s| s["name"] == cname.as_str()).cloned());
            let base = json!({"name": cname, "image": image, "imageID": "", "restartCount": 0, "started": false, "ready": false, "lastState": {}});
            let status = match state {
                Some(Pull::Pulled) if run_to_completion => {
                    // Pods that are not restarted (Jobs) run their container to success.
                    let finished = previous.as_ref().and_then(|p| {
                        p["state"]["terminated"]["finishedAt"]
                            .as_str()
                            .map(str::to_owned)
                    });
                    if finished.is_none() {
                        events.push((
                            "Normal",
                            "Pulled",
                            format!("Successfully pulled image \"{image}\""),
                        ));
                        events.push(("Normal", "Created", format!("Created container: {cname}")));
                        events.push(("Normal", "Started", format!("Started container {cname}")));
                    }
                    let at = finished.unwrap_or_else(now_rfc3339);
                    let mut s = base.clone();
                    s["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": at, "finishedAt": at,
                        "containerID": format!("containerd://{}", hex_of(&format!("{uid}{cname}")))}});
                    s
                }
                Some(Pull::Pulled) => {
                    let started = previous.as_ref().and_then(|p| {
                        p["state"]["running"]["startedAt"]
                            .as_str()
                            .map(str::to_owned)
                    });
                    if started.is_none() {
                        events.push((
                            "Normal",
                            "Pulled",
                            format!("Successfully pulled image \"{image}\""),
                        ));
                        events.push(("Normal", "Created", format!("Created container: {cname}")));
                        events.push(("Normal", "Started", format!("Started container {cname}")));
                    }
                    let mut s = base.clone();
                    s["state"] =
                        json!({"running": {"startedAt": started.unwrap_or_else(now_rfc3339)}});
                    s["ready"] = json!(true);
                    s["started"] = json!(true);
                    s["containerID"] = json!(format!(
                        "containerd://{}",
                        &hex_of(&format!("{uid}{cname}"))
                    ));
                    s
                }
                Some(Pull::Failed {
                    message,
                    at,
                    backoff,
                    reported_backoff,
                }) => {
                    all_running = false;
                    let mut s = base.clone();
                    // ErrImagePull right after a failed pull, ImagePullBackOff while waiting.
                    let in_backoff = now.duration_since(at) >= Duration::from_millis(500);
                    if in_backoff {
                        s["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\": ErrImagePull: {message}")}});
                        if !reported_backoff {
                            events.push((
                                "Normal",
                                "BackOff",
                                format!("Back-off pulling image \"{image}\""),
                            ));
                            events.push((
                                "Warning",
                                "Failed",
                                "Error: ImagePullBackOff".to_owned(),
                            ));
                            lock(memory).pulls.insert(
                                key.clone(),
                                Pull::Failed {
                                    message: message.clone(),
                                    at,
                                    backoff,
                                    reported_backoff: true,
                                },
                            );
                        }
                    } else {
                        let fresh = previous
                            .as_ref()
                            .is_none_or(|p| p["state"]["waiting"]["reason"] != "ErrImagePull");
                        if fresh {
                            events.push((
                                "Warning",
                                "Failed",
                                format!("Failed to pull image \"{image}\": {message}"),
                            ));
                            events.push(("Warning", "Failed", "Error: ErrImagePull".to_owned()));
                        }
                        s["state"] =
                            json!({"waiting": {"reason": "ErrImagePull", "message": message}});
                    }
                    s
                }
                _ => {
                    all_running = false;
                    match previous {
                        Some(p) => p,
                        None => {
                            let mut s = base.clone();
                            s["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
                            s
                        }
                    }
                }
            };
            statuses.push(status);
        }
        let updated = store.mutate(pt, &ns, &name, |p| {
            let now = now_rfc3339();
            let old = p["status"]["conditions"].clone();
            let keep = |ty: &str, status: &str| {
                old
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == status))
                    .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| now.clone())
            };
            let completed = all_running && run_to_completion;
            let flag = if all_running && !completed { "True" } else { "False" };
            let mut ready_cond = json!({"type": "Ready", "status": flag, "lastProbeTime": Value::Null, "lastTransitionTime": keep("Ready", flag)});
            let mut containers_ready = json!({"type": "ContainersReady", "status": flag, "lastProbeTime": Value::Null, "lastTransitionTime": keep("ContainersReady", flag)});
            if completed {
                for c in [&mut ready_cond, &mut containers_ready] {
                    c["reason"] = json!("PodCompleted");
                }
            } else if !all_running {
                let waiting: Vec<String> = statuses.iter().filter(|s| s["ready"] != true).filter_map(|s| s["name"].as_str().map(str::to_owned)).collect();
                let message = format!("containers with unready status: [{}]", waiting.join(" "));
                for c in [&mut ready_cond, &mut containers_ready] {
                    c["reason"] = json!("ContainersNotReady");
                    c["message"] = json!(message);
                }
            }
            let conditions = json!([
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": keep("PodReadyToStartContainers", "True")},
                {"type": "Initialized", "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": keep("Initialized", "True")},
                ready_cond,
                containers_ready,
                {"type": "PodScheduled", "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": keep("PodScheduled", "True")},
            ]);
            p["status"]["phase"] = json!(match (all_running, completed) {
                (_, true) => "Succeeded",
                (true, false) => "Running",
                _ => "Pending",
            });
            p["status"]["conditions"] = conditions;
            p["status"]["containerStatuses"] = Value::Array(statuses.clone());
            p["status"]["hostIP"] = json!("10.240.0.4");
            if p["status"]["podIP"].is_null() {
                let mut mem = lock(memory);
                mem.next_ip += 1;
                p["status"]["podIP"] = json!(format!("10.244.0.{}", mem.next_ip % 250 + 2));
                p["status"]["startTime"] = json!(now.clone());
            }
        });
        if let Some(p) = updated {
            for (ty, reason, message) in events {
                record_event(
                    store,
                    &p,
                    "Pod",
                    (ty, reason, &message),
                    "kubelet",
                    Some(&node),
                );
            }
        }
    }
    // Forget pods that are gone.
    let live: HashSet<String> = pods.iter().map(uid_of).collect();
    lock(memory).pulls.retain(|(uid, _), _| live.contains(uid));
}

fn hex_of(s: &str) -> String {
    format!("{:x}", sha2::Sha256::digest(s.as_bytes()))
}
