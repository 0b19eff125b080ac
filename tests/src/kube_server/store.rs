//! The object store: resource types, objects as JSON, resource versions, watch history, and
//! server-side apply with managed fields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

/// A resource type the server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub status: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` / `pods`, as the API server names resources in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether writes to `spec` bump `metadata.generation`.
    fn has_generation(&self) -> bool {
        matches!(self.group, "apps" | "batch")
    }
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        status,
    }
}

/// Every resource type served.
pub const TYPES: &[ResourceType] = &[
    rt(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
    ),
    rt("", "nodes", "node", "Node", false, &["no"], true),
    rt("", "pods", "pod", "Pod", true, &["po"], true),
    rt(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
    ),
    rt("", "secrets", "secret", "Secret", true, &[], false),
    rt(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    rt("", "services", "service", "Service", true, &["svc"], true),
    rt("", "events", "event", "Event", true, &["ev"], false),
    rt(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
    ),
    rt(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        true,
    ),
    rt(
        "apps",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
        true,
    ),
    rt("batch", "jobs", "job", "Job", true, &[], true),
    rt(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        &[],
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        false,
    ),
];

/// The type with this group and plural.
pub fn find_type(group: &str, plural: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .find(|t| t.group == group && t.plural == plural)
}

/// The type of an `apiVersion` and `kind`.
pub fn type_of_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .find(|t| t.api_version() == api_version && t.kind == kind)
}

/// An object's identity in the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

/// One change, as watchers see it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: &'static str,
    pub key: Key,
    pub object: Value,
}

/// Who owns which fields of an object.
#[derive(Clone, Debug)]
struct Manager {
    name: String,
    operation: &'static str,
    api_version: String,
    time: String,
    fields: BTreeSet<Vec<String>>,
}

/// A failure with its HTTP status and Kubernetes reason.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    fn not_found(t: &ResourceType, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", t.qualified()),
        );
        e.details = json!({"name": name, "group": t.group, "kind": t.plural});
        e
    }

    /// The `Status` object the API server sends.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    managers: BTreeMap<Key, Vec<Manager>>,
    history: Vec<Arc<WatchEvent>>,
}

/// The store: shared by the HTTP handlers and the simulated cluster.
pub struct Store {
    inner: std::sync::Mutex<Inner>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    changed: tokio::sync::Notify,
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn new_uid() -> String {
    let hex = crate::registry::random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: std::sync::Mutex::new(Inner::default()),
            events,
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes whoever waits in [`Store::changed`].
    pub fn poke(&self) {
        self.changed.notify_waiters();
    }

    /// Wakes when anything changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of a type (in one namespace, or all), in key order.
    pub fn list(&self, t: &ResourceType, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == t.group
                    && k.plural == t.plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Subscribes to changes and returns the history after `since` (or the current objects
    /// as ADDED events when `since` is None), atomically.
    pub fn watch(
        &self,
        t: &ResourceType,
        since: Option<u64>,
    ) -> (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        let past = match since {
            Some(rv) => inner
                .history
                .iter()
                .filter(|e| e.rv > rv && e.key.group == t.group && e.key.plural == t.plural)
                .cloned()
                .collect(),
            None => {
                let mut items: Vec<Arc<WatchEvent>> = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| k.group == t.group && k.plural == t.plural)
                    .map(|(k, v)| {
                        Arc::new(WatchEvent {
                            rv: rv_of(v),
                            kind: "ADDED",
                            key: k.clone(),
                            object: v.clone(),
                        })
                    })
                    .collect();
                items.sort_by_key(|e| e.rv);
                items
            }
        };
        (past, rx)
    }

    fn publish(&self, inner: &mut Inner, kind: &'static str, key: Key, object: Value) {
        let event = Arc::new(WatchEvent {
            rv: inner.rv,
            kind,
            key,
            object,
        });
        inner.history.push(event.clone());
        let _ = self.events.send(event);
        self.changed.notify_waiters();
    }

    fn check_namespace(inner: &Inner, t: &ResourceType, namespace: &str) -> Result<(), ApiError> {
        if !t.namespaced {
            return Ok(());
        }
        let ns_key = Key {
            group: "",
            plural: "namespaces",
            namespace: String::new(),
            name: namespace.to_owned(),
        };
        if inner.objects.contains_key(&ns_key) {
            Ok(())
        } else {
            let mut e = ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{namespace}\" not found"),
            );
            e.details = json!({"name": namespace, "kind": "namespaces"});
            Err(e)
        }
    }

    /// Creates an object (POST); `manager` owns every field it set.
    pub fn create(
        &self,
        t: &'static ResourceType,
        namespace: &str,
        object: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        self.create_as(t, namespace, object, manager, "Update")
    }

    fn create_as(
        &self,
        t: &'static ResourceType,
        namespace: &str,
        mut object: Value,
        manager: &str,
        operation: &'static str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        Self::check_namespace(&inner, t, namespace)?;
        prepare_body(t, namespace, &mut object)?;
        let mut name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            if let Some(prefix) = object["metadata"]["generateName"].as_str() {
                name = format!("{prefix}{}", &crate::registry::random_hex(3)[..5]);
                object["metadata"]["name"] = json!(name);
            } else {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        t.kind
                    ),
                ));
            }
        }
        let key = key_for(t, namespace, &name);
        if inner.objects.contains_key(&key) {
            let mut e = ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.qualified()),
            );
            e.details = json!({"name": name, "group": t.group, "kind": t.plural});
            return Err(e);
        }
        let fields = field_set(&object);
        let managers = vec![Manager {
            name: manager.to_owned(),
            operation,
            api_version: t.api_version(),
            time: now_rfc3339(),
            fields,
        }];
        defaults(t, &mut object);
        let meta = object["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::new(400, "BadRequest", "metadata is not an object"))?;
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if t.has_generation() {
            meta.insert("generation".into(), json!(1));
        }
        if t.kind == "Job" && object["spec"]["selector"].is_null() {
            // As the API server does: select the job's pods by its uid.
            let uid = object["metadata"]["uid"].clone();
            object["spec"]["selector"] =
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
            let labels = &mut object["spec"]["template"]["metadata"]["labels"];
            for key in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                labels[key] = uid.clone();
            }
            for key in ["batch.kubernetes.io/job-name", "job-name"] {
                labels[key] = json!(name);
            }
        }
        Ok(self.commit(&mut inner, t, key, object, managers, "ADDED"))
    }

    /// Stores `object` with a new resource version and publishes it.
    fn commit(
        &self,
        inner: &mut Inner,
        t: &ResourceType,
        key: Key,
        mut object: Value,
        managers: Vec<Manager>,
        kind: &'static str,
    ) -> Value {
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        object["apiVersion"] = json!(t.api_version());
        object["kind"] = json!(t.kind);
        render_managed_fields(&mut object, &managers);
        inner.managers.insert(key.clone(), managers);
        inner.objects.insert(key.clone(), object.clone());
        self.publish(inner, kind, key, object.clone());
        object
    }

    /// Replaces an object (PUT, or a non-apply PATCH already merged by the caller). A
    /// `resourceVersion` in the body must match. `status_only` keeps the spec (a `/status`
    /// write) and otherwise the status is kept.
    pub fn update(
        &self,
        t: &'static ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        manager: &str,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let key = key_for(t, namespace, name);
        let Some(live) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(t, name));
        };
        prepare_body(t, namespace, &mut object)?;
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != live["metadata"]["resourceVersion"].as_str()
        {
            let mut e = ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    t.qualified()
                ),
            );
            e.details = json!({"name": name, "group": t.group, "kind": t.plural});
            return Err(e);
        }
        let mut next = live.clone();
        if status_only {
            next["status"] = object["status"].take();
        } else {
            let status = live["status"].clone();
            next = object;
            preserve_system_metadata(&live, &mut next);
            if t.status && !status.is_null() {
                next["status"] = status;
            } else if let Some(m) = next.as_object_mut()
                && t.status
            {
                m.remove("status");
            }
        }
        let mut managers = inner.managers.get(&key).cloned().unwrap_or_default();
        if !status_only {
            take_changed_fields(&mut managers, manager, t, &live, &next);
        }
        self.finish_write(&mut inner, t, key, live, next, managers)
    }

    fn finish_write(
        &self,
        inner: &mut Inner,
        t: &ResourceType,
        key: Key,
        live: Value,
        mut next: Value,
        managers: Vec<Manager>,
    ) -> Result<Value, ApiError> {
        defaults(t, &mut next);
        if t.has_generation() && next.get("spec") != live.get("spec") {
            let generation = live["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            next["metadata"]["generation"] = json!(generation);
        }
        // A write that changes nothing (fields or ownership) keeps the resource version.
        let mut probe = next.clone();
        render_managed_fields(&mut probe, &managers);
        probe["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
        if same_ignoring_times(&probe, &live) {
            return Ok(live);
        }
        Ok(self.commit(inner, t, key, next, managers, "MODIFIED"))
    }

    /// Server-side apply (`PATCH` with `application/apply-patch+yaml`).
    pub fn apply(
        &self,
        t: &'static ResourceType,
        namespace: &str,
        name: &str,
        mut config: Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        if manager.is_empty() {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "PATCH, application/apply-patch+yaml: fieldManager is required",
            ));
        }
        prepare_body(t, namespace, &mut config)?;
        if config["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    config["metadata"]["name"].as_str().unwrap_or_default()
                ),
            ));
        }
        if config.get("apiVersion").and_then(Value::as_str) != Some(&t.api_version())
            || config.get("kind").and_then(Value::as_str) != Some(t.kind)
        {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "apply needs apiVersion {} and kind {}",
                    t.api_version(),
                    t.kind
                ),
            ));
        }
        let config_fields = field_set(&config);
        let mut inner = self.lock();
        let key = key_for(t, namespace, name);
        let Some(live) = inner.objects.get(&key).cloned() else {
            drop(inner);
            // Apply creates: the applier owns everything it sent, as an Apply.
            return self.create_as(t, namespace, config, manager, "Apply");
        };
        Self::check_namespace(&inner, t, namespace)?;
        let mut managers = inner.managers.get(&key).cloned().unwrap_or_default();
        // Conflicts: fields another manager owns, with a different value.
        let mut conflicts = Vec::new();
        for path in config_fields
            .iter()
            .filter(|p| p.last().is_none_or(|l| l != "."))
        {
            for other in managers.iter().filter(|m| m.name != manager) {
                if other.fields.contains(path) && value_at(&live, path) != value_at(&config, path) {
                    conflicts.push((other.name.clone(), other.api_version.clone(), path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let mut e = ApiError::new(
                409,
                "Conflict",
                if conflicts.len() == 1 {
                    format!(
                        "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
                        conflicts[0].0,
                        conflicts[0].1,
                        dotted(&conflicts[0].2)
                    )
                } else {
                    let lines: Vec<String> = conflicts
                        .iter()
                        .map(|(m, v, p)| {
                            format!("- conflict with \"{m}\" using {v}: {}", dotted(p))
                        })
                        .collect();
                    format!(
                        "Apply failed with {} conflicts: {}",
                        conflicts.len(),
                        lines.join("\n")
                    )
                },
            );
            e.details = json!({
                "name": name, "group": t.group, "kind": t.plural,
                "causes": conflicts.iter().map(|(m, v, p)| json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{m}\" using {v}"),
                    "field": dotted(p),
                })).collect::<Vec<_>>(),
            });
            return Err(e);
        }
        for (other, _, path) in &conflicts {
            if let Some(m) = managers.iter_mut().find(|m| &m.name == other) {
                m.fields.remove(path);
            }
        }
        // Fields this manager applied before and no longer does, owned by nobody else, go.
        let previous = managers
            .iter()
            .find(|m| m.name == manager && m.operation == "Apply")
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        let mut next = live.clone();
        for path in previous.difference(&config_fields) {
            let shared = managers
                .iter()
                .any(|m| m.name != manager && m.fields.contains(path));
            if !shared {
                remove_at(&mut next, path);
            }
        }
        merge(&mut next, &config, "");
        preserve_system_metadata(&live, &mut next);
        let entry = Manager {
            name: manager.to_owned(),
            operation: "Apply",
            api_version: t.api_version(),
            time: now_rfc3339(),
            fields: config_fields,
        };
        match managers
            .iter_mut()
            .find(|m| m.name == manager && m.operation == "Apply")
        {
            Some(m) if m.fields == entry.fields => {}
            Some(m) => *m = entry,
            None => managers.push(entry),
        }
        managers.retain(|m| !m.fields.is_empty());
        self.finish_write(&mut inner, t, key, live, next, managers)
    }

    /// Deletes an object and, as the garbage collector would, everything it owns.
    pub fn delete(&self, t: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let key = key_for(t, namespace, name);
        let Some(object) = inner.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(t, name));
        };
        let mut doomed = vec![key];
        let mut i = 0;
        while i < doomed.len() {
            let k = doomed[i].clone();
            i += 1;
            let Some(obj) = inner.objects.get(&k) else {
                continue;
            };
            let uid = obj["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for (other_key, other) in &inner.objects {
                let owned = other["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()));
                let in_namespace = k.plural == "namespaces"
                    && k.group.is_empty()
                    && other_key.namespace == k.name
                    && !other_key.namespace.is_empty();
                if (owned || in_namespace) && !doomed.contains(other_key) {
                    doomed.push(other_key.clone());
                }
            }
        }
        for k in doomed {
            if let Some(obj) = inner.objects.remove(&k) {
                inner.managers.remove(&k);
                inner.rv += 1;
                let mut obj = obj;
                obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                self.publish(&mut inner, "DELETED", k, obj);
            }
        }
        Ok(object)
    }

    /// Replaces an object's status as a controller does (no managed-field changes). Writes
    /// nothing when the status is unchanged.
    pub fn set_status(
        &self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Option<Value> {
        self.mutate(t, namespace, name, |obj| obj["status"] = status)
    }

    /// Changes an object in place as a controller does; writes only when something changed.
    pub fn mutate(
        &self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let mut inner = self.lock();
        let key = key_for(t, namespace, name);
        let live = inner.objects.get(&key)?.clone();
        let mut next = live.clone();
        change(&mut next);
        if next == live {
            return Some(live);
        }
        let managers = inner.managers.get(&key).cloned().unwrap_or_default();
        Some(self.commit(&mut inner, t, key, next, managers, "MODIFIED"))
    }
}

fn rv_of(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn key_for(t: &ResourceType, namespace: &str, name: &str) -> Key {
    Key {
        group: TYPES
            .iter()
            .find(|x| x.plural == t.plural && x.group == t.group)
            .map(|x| x.group)
            .unwrap_or(""),
        plural: TYPES
            .iter()
            .find(|x| x.plural == t.plural && x.group == t.group)
            .map(|x| x.plural)
            .unwrap_or(""),
        namespace: if t.namespaced {
            namespace.to_owned()
        } else {
            String::new()
        },
        name: name.to_owned(),
    }
}

/// Checks a request body's kind and namespace and fills them in.
fn prepare_body(t: &ResourceType, namespace: &str, object: &mut Value) -> Result<(), ApiError> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "the body is not an object",
        ));
    };
    if let Some(kind) = map.get("kind").and_then(Value::as_str)
        && kind != t.kind
    {
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!(
                "the kind {kind} does not match the resource {}",
                t.qualified()
            ),
        ));
    }
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "metadata is not an object",
        ));
    };
    meta.remove("managedFields");
    if t.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if ns != namespace => {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(namespace));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

fn preserve_system_metadata(live: &Value, next: &mut Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "ownerReferences",
    ] {
        if let Some(v) = live["metadata"].get(field)
            && next["metadata"]
                .get(field)
                .is_none_or(|n| field != "ownerReferences" || n.is_null())
        {
            next["metadata"][field] = v.clone();
        }
    }
}

/// What the API server fills in on every write.
fn defaults(t: &ResourceType, object: &mut Value) {
    match (t.group, t.kind) {
        ("", "Namespace") => {
            let name = object["metadata"]["name"].clone();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            object["spec"]["finalizers"] = json!(["kubernetes"]);
            if object["status"]["phase"].is_null() {
                object["status"]["phase"] = json!("Active");
            }
        }
        ("", "Secret") => {
            if object["type"].is_null() {
                object["type"] = json!("Opaque");
            }
            if let Some(Value::Object(plain)) =
                object.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                for (k, v) in plain {
                    let text = v.as_str().unwrap_or_default().to_owned();
                    object["data"][k] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        ("", "Pod") => pod_spec_defaults(&mut object["spec"]),
        ("apps", "Deployment") => {
            let spec = &mut object["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            if spec["strategy"]["type"].is_null() {
                spec["strategy"]["type"] = json!("RollingUpdate");
            }
            if spec["strategy"]["type"] == "RollingUpdate"
                && spec["strategy"]["rollingUpdate"].is_null()
            {
                spec["strategy"]["rollingUpdate"] =
                    json!({"maxUnavailable": "25%", "maxSurge": "25%"});
            }
            pod_spec_defaults(&mut spec["template"]["spec"]);
        }
        ("apps", "StatefulSet") | ("apps", "DaemonSet") => {
            let spec = &mut object["spec"];
            if t.kind == "StatefulSet" {
                default(spec, "replicas", json!(1));
            }
            pod_spec_defaults(&mut spec["template"]["spec"]);
        }
        ("batch", "Job") => {
            let spec = &mut object["spec"];
            default(spec, "backoffLimit", json!(6));
            default(spec, "completions", json!(1));
            default(spec, "parallelism", json!(1));
            pod_spec_defaults(&mut spec["template"]["spec"]);
            if spec["template"]["spec"]["restartPolicy"] == "Always" {
                spec["template"]["spec"]["restartPolicy"] = json!("Never");
            }
        }
        _ => {}
    }
}

fn default(map: &mut Value, key: &str, value: Value) {
    if map[key].is_null() {
        map[key] = value;
    }
}

fn pod_spec_defaults(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    if let Some(containers) = spec["containers"].as_array_mut() {
        for c in containers {
            let image = c["image"].as_str().unwrap_or_default().to_owned();
            let last = image.rsplit('/').next().unwrap_or_default();
            let latest = !last.contains(':') && !image.contains('@') || last.ends_with(":latest");
            default(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
        }
    }
}

/// Equal apart from managed-field timestamps.
fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(mf) = v["metadata"]["managedFields"].as_array_mut() {
            for m in mf {
                if let Some(m) = m.as_object_mut() {
                    m.remove("time");
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

// ---- field sets (a small structured merge) ----

/// The key field of an associative list, by the list's field name.
fn list_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "ports" if items.iter().all(|i| i.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        "conditions" => "type",
        _ => return None,
    };
    items.iter().all(|i| i.get(key).is_some()).then_some(key)
}

fn item_key(key: &str, item: &Value) -> String {
    format!("k:{}", json!({ key: item[key] }))
}

const UNTRACKED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

/// The leaf paths an object sets (apiVersion, kind, identity and status excluded).
pub fn field_set(object: &Value) -> BTreeSet<Vec<String>> {
    let mut set = BTreeSet::new();
    if let Some(map) = object.as_object() {
        for (k, v) in map {
            if matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                continue;
            }
            if k == "metadata" {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if !UNTRACKED_METADATA.contains(&mk.as_str()) {
                            collect(
                                mv,
                                vec!["f:metadata".into(), format!("f:{mk}")],
                                mk,
                                &mut set,
                            );
                        }
                    }
                }
                continue;
            }
            collect(v, vec![format!("f:{k}")], k, &mut set);
        }
    }
    set
}

fn collect(v: &Value, path: Vec<String>, field: &str, set: &mut BTreeSet<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                collect(x, p, k, set);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_key(field, items) {
            Some(key) => {
                for item in items {
                    let mut p = path.clone();
                    p.push(item_key(key, item));
                    let mut marker = p.clone();
                    marker.push(".".into());
                    set.insert(marker);
                    collect(item, p, "", set);
                }
            }
            None => {
                set.insert(path);
            }
        },
        _ => {
            set.insert(path);
        }
    }
}

/// The value at a field path (None when absent).
fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = object;
    let mut parent_field = "";
    for elem in path {
        if elem == "." {
            return Some(node);
        }
        if let Some(f) = elem.strip_prefix("f:") {
            node = node.get(f)?;
            parent_field = f;
        } else if let Some(k) = elem.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).ok()?;
            let (kf, kv) = want.iter().next()?;
            let _ = parent_field;
            node = node.as_array()?.iter().find(|i| i.get(kf) == Some(kv))?;
        }
    }
    Some(node)
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let (last, parents) = if last == "." {
        match parents.split_last() {
            Some((l, p)) => (l, p),
            None => return,
        }
    } else {
        (last, parents)
    };
    let mut node = object;
    for elem in parents {
        let next = if let Some(f) = elem.strip_prefix("f:") {
            node.get_mut(f)
        } else if let Some(k) = elem.strip_prefix("k:") {
            let Ok(want) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            let Some((kf, kv)) = want.into_iter().next() else {
                return;
            };
            node.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| i.get(&kf) == Some(&kv)))
        } else {
            None
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = node.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:")
        && let Ok(want) = serde_json::from_str::<Map<String, Value>>(k)
        && let Some((kf, kv)) = want.into_iter().next()
        && let Some(a) = node.as_array_mut()
    {
        a.retain(|i| i.get(&kf) != Some(&kv));
    }
}

/// Merges an applied configuration into an object: maps recursively, associative lists by
/// key, anything else replaced.
fn merge(target: &mut Value, config: &Value, field: &str) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                match t.get_mut(k) {
                    Some(existing) => merge(existing, v, k),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(c))
            if list_key(field, c).is_some() && list_key(field, t).is_some() =>
        {
            let key = list_key(field, c).unwrap_or("name");
            for item in c {
                match t.iter_mut().find(|x| x.get(key) == item.get(key)) {
                    Some(existing) => merge(existing, item, ""),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

/// A non-apply write: the writer takes every field whose value it changed.
fn take_changed_fields(
    managers: &mut Vec<Manager>,
    manager: &str,
    t: &ResourceType,
    live: &Value,
    next: &Value,
) {
    let changed: BTreeSet<Vec<String>> = field_set(next)
        .into_iter()
        .filter(|p| value_at(live, p) != value_at(next, p))
        .collect();
    if changed.is_empty() {
        return;
    }
    for m in managers.iter_mut() {
        m.fields.retain(|p| !changed.contains(p));
    }
    match managers
        .iter_mut()
        .find(|m| m.name == manager && m.operation == "Update")
    {
        Some(m) => {
            m.fields.extend(changed);
            m.time = now_rfc3339();
        }
        None => managers.push(Manager {
            name: manager.to_owned(),
            operation: "Update",
            api_version: t.api_version(),
            time: now_rfc3339(),
            fields: changed,
        }),
    }
    managers.retain(|m| !m.fields.is_empty());
}

/// `.spec.replicas`, `.spec.template.spec.containers[name="x"].image`, as conflicts name
/// fields.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for elem in path {
        if let Some(f) = elem.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = elem.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            if let Some((kf, kv)) = want.iter().next() {
                out.push_str(&format!("[{kf}={kv}]"));
            }
        }
    }
    out
}

fn render_managed_fields(object: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .map(|m| {
            let mut tree = Map::new();
            for path in &m.fields {
                let mut node = &mut tree;
                for elem in path {
                    let next = node.entry(elem.clone()).or_insert_with(|| json!({}));
                    match next.as_object_mut() {
                        Some(n) => node = n,
                        None => break,
                    }
                }
            }
            json!({
                "manager": m.name,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            })
        })
        .collect();
    if entries.is_empty() {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
    } else {
        object["metadata"]["managedFields"] = Value::Array(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(image: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}},
        })
    }

    fn store() -> Store {
        let s = Store::new();
        let ns = find_type("", "namespaces").unwrap();
        s.create(ns, "", json!({"metadata": {"name": "default"}}), "test")
            .unwrap();
        s
    }

    #[test]
    fn apply_conflicts_force_and_no_ops() {
        let s = store();
        let t = find_type("apps", "deployments").unwrap();
        let a = s
            .apply(t, "default", "d", deploy("i:1", 1), "alice", false)
            .unwrap();
        assert_eq!(a["metadata"]["generation"], 1);
        // The same configuration again changes nothing, not even the resource version.
        let again = s
            .apply(t, "default", "d", deploy("i:1", 1), "alice", false)
            .unwrap();
        assert_eq!(
            again["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
        // Bob agrees on the image: shared ownership, no conflict.
        s.apply(t, "default", "d", deploy("i:1", 1), "bob", false)
            .unwrap();
        // Bob changes the replicas alice owns: conflict naming the field and manager.
        let err = s
            .apply(t, "default", "d", deploy("i:1", 3), "bob", false)
            .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"alice\" using apps/v1: .spec.replicas"
        );
        let forced = s
            .apply(t, "default", "d", deploy("i:1", 3), "bob", true)
            .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert_eq!(forced["metadata"]["generation"], 2);
        // Alice drops the label she alone owned: it goes.
        let mut config = deploy("i:1", 1);
        config["metadata"]["labels"] = json!({"other": "y"});
        config["spec"].as_object_mut().unwrap().remove("replicas");
        let after = s.apply(t, "default", "d", config, "alice", false).unwrap();
        assert_eq!(after["metadata"]["labels"]["other"], "y");
        assert_eq!(
            after["metadata"]["labels"]["app"], "x",
            "bob still owns app"
        );
    }

    #[test]
    fn deletes_cascade_to_owned_objects() {
        let s = store();
        let d = find_type("apps", "deployments").unwrap();
        let p = find_type("", "pods").unwrap();
        let owner = s
            .apply(d, "default", "d", deploy("i:1", 1), "a", false)
            .unwrap();
        let uid = owner["metadata"]["uid"].clone();
        s.create(p, "default", json!({"metadata": {"name": "p", "ownerReferences": [{"uid": uid, "kind": "Deployment", "name": "d", "apiVersion": "apps/v1"}]}, "spec": {"containers": []}}), "c").unwrap();
        s.delete(d, "default", "d").unwrap();
        assert!(s.get(&key_for(p, "default", "p")).is_none());
    }

    #[test]
    fn updates_check_the_resource_version_and_bump_generations() {
        let s = store();
        let t = find_type("apps", "deployments").unwrap();
        let created = s.create(t, "default", deploy("i:1", 1), "maker").unwrap();
        let mut stale = created.clone();
        stale["metadata"]["resourceVersion"] = json!("1");
        stale["spec"]["replicas"] = json!(2);
        assert_eq!(
            s.update(t, "default", "d", stale, "editor", false)
                .unwrap_err()
                .code,
            409
        );
        let mut fresh = created.clone();
        fresh["spec"]["replicas"] = json!(2);
        let updated = s.update(t, "default", "d", fresh, "editor", false).unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        let managers: Vec<&str> = updated["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, vec!["maker", "editor"]);
        // A status write keeps the generation.
        let status = s
            .set_status(t, "default", "d", json!({"replicas": 2}))
            .unwrap();
        assert_eq!(status["metadata"]["generation"], 2);
    }

    #[test]
    fn watches_replay_history_after_a_resource_version() {
        let s = store();
        let t = find_type("", "configmaps").unwrap();
        let a = s
            .create(t, "default", json!({"metadata": {"name": "a"}}), "m")
            .unwrap();
        s.create(t, "default", json!({"metadata": {"name": "b"}}), "m")
            .unwrap();
        s.delete(t, "default", "a").unwrap();
        let since: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (past, _) = s.watch(t, Some(since));
        let seen: Vec<(&str, &str)> = past.iter().map(|e| (e.kind, e.key.name.as_str())).collect();
        assert_eq!(seen, vec![("ADDED", "b"), ("DELETED", "a")]);
        let (current, _) = s.watch(t, None);
        assert_eq!(current.len(), 1);
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
