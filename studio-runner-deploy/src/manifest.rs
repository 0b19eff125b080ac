//! Multi-document YAML manifests into Kubernetes objects, and the order they are applied in.
//!
//! ```
//! let objects = studio_runner_deploy::manifest::parse(
//!     "# a comment-only document is skipped\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env\n",
//! )?;
//! assert_eq!(objects.len(), 1);
//! assert_eq!(objects[0].metadata.name.as_deref(), Some("env"));
//! # Ok::<(), studio_runner_deploy::Error>(())
//! ```

use kube::api::DynamicObject;

use crate::Error;

/// Parses every document of `text`; empty and comment-only documents are skipped. Each object
/// needs `apiVersion`, `kind` and `metadata.name`. A YAML error says where (line and column)
/// and what, but never quotes the text: rendered manifests can hold secrets.
pub fn parse(text: &str) -> Result<Vec<DynamicObject>, Error> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).map_err(|e| {
        // The parser's message goes on with a snippet of the input; keep its first line.
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default();
        Error::Manifest(format!(
            "not valid YAML: {}",
            first.strip_prefix("error: ").unwrap_or(first)
        ))
    })?;
    let mut objects = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let describe = |what: &str| Error::Manifest(format!("document {}: {what}", i + 1));
        if !doc.is_object() {
            return Err(describe("not a mapping"));
        }
        for field in ["apiVersion", "kind"] {
            if !doc.get(field).is_some_and(serde_json::Value::is_string) {
                return Err(describe(&format!("no {field}")));
            }
        }
        let object: DynamicObject = serde_json::from_value(doc)
            .map_err(|e| describe(&format!("not a Kubernetes object: {e}")))?;
        if object.metadata.name.as_deref().is_none_or(str::is_empty) {
            return Err(describe("no metadata.name"));
        }
        objects.push(object);
    }
    Ok(objects)
}

/// Where a kind goes in the apply order: namespaces, CRDs, service accounts and RBAC, config
/// maps and secrets, then everything else (workloads last).
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ServiceAccount" => 2,
        "ClusterRole" | "Role" => 3,
        "ClusterRoleBinding" | "RoleBinding" => 4,
        "ConfigMap" | "Secret" => 5,
        "PersistentVolumeClaim" | "Service" => 6,
        _ => 7,
    }
}

/// Sorts objects into apply order, keeping the manifest order within a rank.
pub fn sort_for_apply(objects: &mut [DynamicObject]) {
    objects.sort_by_key(|o| apply_rank(o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_order() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n# only a comment\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n";
        let mut objects = parse(text).unwrap();
        sort_for_apply(&mut objects);
        let kinds: Vec<String> = objects
            .iter()
            .map(|o| o.types.clone().unwrap().kind)
            .collect();
        assert_eq!(kinds, vec!["Namespace", "ConfigMap", "Deployment"]);
    }

    #[test]
    fn yaml_errors_do_not_quote_the_manifest() {
        let text = "apiVersion: v1\nkind: Secret\nstringData: [password: hunter2-secret-value\n";
        let message = parse(text).unwrap_err().to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.starts_with("manifest: not valid YAML: line 3 column "),
            "{message}"
        );
    }

    #[test]
    fn bad_documents_are_named() {
        let e = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: X\n")
            .unwrap_err();
        assert_eq!(e.to_string(), "manifest: document 2: no apiVersion");
        let e = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert!(e.to_string().contains("no metadata.name"), "{e}");
        assert!(
            parse("a: [")
                .unwrap_err()
                .to_string()
                .contains("not valid YAML")
        );
    }
}
