//! Waiting for a release to become ready, and saying why it did not, like `kubectl describe`.
//!
//! Deployments are ready when the controller has observed the latest generation and every
//! replica is updated and available; they fail on `ProgressDeadlineExceeded`. StatefulSets and
//! DaemonSets are ready when all replicas are updated and ready; Jobs when `Complete` (they
//! fail on `Failed`). kube's `await_condition` has no timeout and `is_deployment_completed`
//! ignores `observedGeneration`, so these conditions are ours and the whole wait is bounded.
//!
//! ```no_run
//! # async fn demo(deploy: studio_runner_deploy::client::DeployClient, report: studio_runner_deploy::client::ApplyReport) -> Result<(), studio_runner_deploy::Error> {
//! use studio_runner_deploy::wait::WaitOptions;
//!
//! if let Err(e) = deploy.wait(&report, &WaitOptions::default()).await {
//!     eprintln!("{e}"); // per pod: waiting reasons, last terminations, events
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;

use crate::Error;
use crate::client::{ApplyReport, DeployClient, ObjectRef};

/// How long to wait.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// The longest wait for the whole release.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
        }
    }
}

/// Where a workload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Not there yet; the text says what is missing.
    Progressing(String),
    /// Done.
    Ready,
    /// It will not get there by itself; the text says why.
    Failed(String),
}

impl Rollout {
    fn settled(&self) -> bool {
        !matches!(self, Rollout::Progressing(_))
    }
}

/// A Deployment's rollout (as `kubectl rollout status` judges it).
pub fn deployment_rollout(d: &Deployment) -> Rollout {
    let Some(status) = &d.status else {
        return Rollout::Progressing("no status yet".into());
    };
    let generation = d.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!(
            "the controller has not observed generation {generation} yet"
        ));
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Rollout::Failed(format!(
            "ProgressDeadlineExceeded: {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Rollout::Progressing(format!("{updated} of {want} replicas updated"))
    } else if replicas > updated {
        Rollout::Progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ))
    } else if available < updated {
        Rollout::Progressing(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        Rollout::Ready
    }
}

/// A StatefulSet's rollout.
pub fn statefulset_rollout(s: &StatefulSet) -> Rollout {
    let Some(status) = &s.status else {
        return Rollout::Progressing("no status yet".into());
    };
    let generation = s.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!(
            "the controller has not observed generation {generation} yet"
        ));
    }
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if ready < want {
        Rollout::Progressing(format!("{ready} of {want} pods ready"))
    } else if updated < want {
        Rollout::Progressing(format!("{updated} of {want} pods updated"))
    } else if status.update_revision.is_some() && status.current_revision != status.update_revision
    {
        Rollout::Progressing("the update revision is not current yet".into())
    } else {
        Rollout::Ready
    }
}

/// A DaemonSet's rollout.
pub fn daemonset_rollout(d: &DaemonSet) -> Rollout {
    let Some(status) = &d.status else {
        return Rollout::Progressing("no status yet".into());
    };
    let generation = d.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Progressing(format!(
            "the controller has not observed generation {generation} yet"
        ));
    }
    let want = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < want {
        Rollout::Progressing(format!("{updated} of {want} pods updated"))
    } else if available < want {
        Rollout::Progressing(format!("{available} of {want} pods available"))
    } else {
        Rollout::Ready
    }
}

/// A Job's progress.
pub fn job_rollout(j: &Job) -> Rollout {
    for c in j.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return Rollout::Ready,
            "Failed" => {
                return Rollout::Failed(format!(
                    "{}: {}",
                    c.reason.clone().unwrap_or_else(|| "Failed".into()),
                    c.message.clone().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    let succeeded = j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
    let want = j.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
    Rollout::Progressing(format!("{succeeded} of {want} completions"))
}

/// Workload kinds [`DeployClient::wait`] watches.
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

macro_rules! wait_for {
    ($client:expr, $ty:ty, $o:expr, $judge:expr) => {{
        let api: Api<$ty> = Api::namespaced(
            $client.clone(),
            $o.namespace.as_deref().unwrap_or("default"),
        );
        let settled = await_condition(api, &$o.name, |obj: Option<&$ty>| {
            obj.is_some_and(|x| $judge(x).settled())
        })
        .await
        .map_err(|e| Error::Watch(e.to_string()))?;
        Ok::<Rollout, Error>(
            settled
                .map(|x| $judge(&x))
                .unwrap_or(Rollout::Progressing("deleted".into())),
        )
    }};
}

impl DeployClient {
    /// The rollout of one workload now.
    pub async fn rollout(&self, o: &ObjectRef) -> Result<Rollout, Error> {
        let ns = o.namespace.as_deref().unwrap_or("default");
        let client = self.kube().clone();
        Ok(match o.kind.as_str() {
            "Deployment" => deployment_rollout(
                &Api::<Deployment>::namespaced(client, ns)
                    .get(&o.name)
                    .await?,
            ),
            "StatefulSet" => statefulset_rollout(
                &Api::<StatefulSet>::namespaced(client, ns)
                    .get(&o.name)
                    .await?,
            ),
            "DaemonSet" => daemonset_rollout(
                &Api::<DaemonSet>::namespaced(client, ns)
                    .get(&o.name)
                    .await?,
            ),
            "Job" => job_rollout(&Api::<Job>::namespaced(client, ns).get(&o.name).await?),
            _ => Rollout::Ready,
        })
    }

    async fn settle(&self, o: &ObjectRef) -> Result<Rollout, Error> {
        let client = self.kube();
        match o.kind.as_str() {
            "Deployment" => wait_for!(client, Deployment, o, deployment_rollout),
            "StatefulSet" => wait_for!(client, StatefulSet, o, statefulset_rollout),
            "DaemonSet" => wait_for!(client, DaemonSet, o, daemonset_rollout),
            "Job" => wait_for!(client, Job, o, job_rollout),
            _ => Ok(Rollout::Ready),
        }
    }

    /// Waits until every workload of `report` is ready. On failure or timeout the error is
    /// [`Error::NotReady`] with a `kubectl describe`-like report of the workloads that are not.
    pub async fn wait(&self, report: &ApplyReport, options: &WaitOptions) -> Result<(), Error> {
        let workloads: Vec<&ObjectRef> = report
            .applied
            .iter()
            .map(|a| &a.object)
            .filter(|o| is_workload(&o.kind))
            .collect();
        // The first workload that fails ends the wait; the others need not settle.
        let mut pending: futures::stream::FuturesUnordered<_> = workloads
            .iter()
            .map(|o| async move { (*o, self.settle(o).await) })
            .collect();
        let outcome = tokio::time::timeout(options.timeout, async {
            use futures::StreamExt;
            while let Some((o, result)) = pending.next().await {
                match result? {
                    Rollout::Ready => {}
                    Rollout::Failed(why) | Rollout::Progressing(why) => {
                        return Ok(Some(format!("{o}: {why}")));
                    }
                }
            }
            Ok::<Option<String>, Error>(None)
        })
        .await;
        drop(pending);
        let summary = match outcome {
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(failure))) => format!("release {} failed: {failure}", report.release),
            Ok(Err(e)) => return Err(e),
            Err(_) => format!(
                "release {} is not ready after {:?}",
                report.release, options.timeout
            ),
        };
        let mut text = String::new();
        for o in workloads {
            let rollout = self.rollout(o).await?;
            if rollout != Rollout::Ready {
                text.push_str(&self.describe(o, &rollout).await?);
            }
        }
        Err(Error::NotReady {
            summary,
            report: text,
        })
    }

    /// A `kubectl describe`-like account of a workload: its state, and per pod the conditions
    /// that are false, each container's waiting reason and message, its last termination, and
    /// the events of the workload and its pods.
    pub async fn describe(&self, o: &ObjectRef, rollout: &Rollout) -> Result<String, Error> {
        use std::fmt::Write;
        let ns = o.namespace.as_deref().unwrap_or("default");
        let client = self.kube().clone();
        let selector: Option<LabelSelector> = match o.kind.as_str() {
            "Deployment" => Api::<Deployment>::namespaced(client.clone(), ns)
                .get(&o.name)
                .await?
                .spec
                .map(|s| s.selector),
            "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(&o.name)
                .await?
                .spec
                .map(|s| s.selector),
            "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(&o.name)
                .await?
                .spec
                .map(|s| s.selector),
            "Job" => Api::<Job>::namespaced(client.clone(), ns)
                .get(&o.name)
                .await?
                .spec
                .and_then(|s| s.selector),
            _ => None,
        };
        let mut out = String::new();
        let state = match rollout {
            Rollout::Ready => "ready".to_owned(),
            Rollout::Progressing(why) => format!("progressing: {why}"),
            Rollout::Failed(why) => format!("failed: {why}"),
        };
        let _ = writeln!(out, "{o}: {state}");
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        self.write_events(&mut out, &events, &o.name, "  ").await?;
        let Some(labels) = selector.and_then(|s| s.match_labels) else {
            return Ok(out);
        };
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let pods: Api<Pod> = Api::namespaced(client, ns);
        for pod in pods
            .list(&ListParams::default().labels(&selector.join(",")))
            .await?
        {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let status = pod.status.clone().unwrap_or_default();
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "<none>".into());
            let _ = writeln!(
                out,
                "  Pod {name}: {} on {node}",
                status.phase.clone().unwrap_or_default()
            );
            for c in status
                .conditions
                .iter()
                .flatten()
                .filter(|c| c.status != "True")
            {
                let _ = writeln!(
                    out,
                    "    condition {}=False {}: {}",
                    c.type_,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                );
            }
            for cs in status.container_statuses.iter().flatten() {
                let mut line = format!("    container {} ({}):", cs.name, cs.image);
                if let Some(state) = &cs.state {
                    if let Some(w) = &state.waiting {
                        let _ = write!(line, " waiting {}", w.reason.clone().unwrap_or_default());
                        if let Some(m) = &w.message {
                            let _ = write!(line, ": {m}");
                        }
                    } else if state.running.is_some() {
                        line.push_str(" running");
                    } else if let Some(t) = &state.terminated {
                        let _ = write!(
                            line,
                            " terminated {} (exit code {})",
                            t.reason.clone().unwrap_or_default(),
                            t.exit_code
                        );
                    }
                }
                if cs.restart_count > 0 {
                    let _ = write!(line, ", {} restarts", cs.restart_count);
                }
                let _ = writeln!(out, "{line}");
                if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                    let _ = writeln!(
                        out,
                        "      last terminated: {} (exit code {}){}",
                        t.reason.clone().unwrap_or_default(),
                        t.exit_code,
                        t.message
                            .as_ref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    );
                }
            }
            self.write_events(&mut out, &events, &name, "    ").await?;
        }
        Ok(out)
    }

    async fn write_events(
        &self,
        out: &mut String,
        events: &Api<Event>,
        name: &str,
        indent: &str,
    ) -> Result<(), Error> {
        use std::fmt::Write;
        let mut list = events
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await?
            .items;
        list.sort_by(|a, b| {
            a.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.last_timestamp.as_ref().map(|t| t.0))
        });
        let mut seen = std::collections::HashSet::new();
        for e in list {
            let line = format!(
                "{indent}event {} {} ({}): {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.source
                    .as_ref()
                    .and_then(|s| s.component.clone())
                    .unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            );
            if seen.insert(line.clone()) {
                let _ = writeln!(out, "{line}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(value: serde_json::Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn deployments_need_the_observed_generation() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
        }));
        assert!(
            matches!(deployment_rollout(&d), Rollout::Progressing(m) if m.contains("generation 2"))
        );
        let mut d = d;
        d.status.as_mut().unwrap().observed_generation = Some(2);
        assert_eq!(deployment_rollout(&d), Rollout::Ready);
        d.status.as_mut().unwrap().replicas = Some(2);
        assert!(
            matches!(deployment_rollout(&d), Rollout::Progressing(m) if m.contains("old replicas"))
        );
    }

    #[test]
    fn deployments_fail_on_the_progress_deadline() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "d", "generation": 1},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"d-1\" has timed out progressing."}]},
        }));
        assert_eq!(
            deployment_rollout(&d),
            Rollout::Failed(
                "ProgressDeadlineExceeded: ReplicaSet \"d-1\" has timed out progressing.".into()
            )
        );
    }

    #[test]
    fn statefulsets_daemonsets_and_jobs() {
        let s: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "generation": 1},
            "spec": {"replicas": 2, "selector": {}, "serviceName": "s", "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2},
        })).unwrap();
        assert!(
            matches!(statefulset_rollout(&s), Rollout::Progressing(m) if m == "1 of 2 pods ready")
        );
        let d: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d", "generation": 3},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 3, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2, "updatedNumberScheduled": 2, "numberAvailable": 2},
        })).unwrap();
        assert_eq!(daemonset_rollout(&d), Rollout::Ready);
        let j: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]},
        })).unwrap();
        assert_eq!(
            job_rollout(&j),
            Rollout::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        let j: Job = serde_json::from_value(serde_json::json!({"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}})).unwrap();
        assert_eq!(job_rollout(&j), Rollout::Ready);
    }
}
