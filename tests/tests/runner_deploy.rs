//! studio-runner-deploy: stencil templates, server-side apply, pull secrets and rollout waits
//! against the rig's Kubernetes test server (held honest by kubectl) and its real registry.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use studio_runner_deploy::template::{Context, Duat, RenderOptions, Template};
use studio_tests::LogsOnFailure;

fn seed_template() -> Result<Template> {
    let path = studio_tests::vectors::vectors_dir()?
        .join("studio-go-runner/examples/azure/deployment-1.9.yaml");
    Ok(Template::from_file(&path)?)
}

fn seed_context(env: &[(&str, &str)]) -> Context {
    Context {
        duat: Duat {
            version: "0.9.27".into(),
            module: "studio-go-runner".into(),
            git_branch: "main".into(),
            git_hash: "0123456789abcdef0123456789abcdef01234567".into(),
            ..Default::default()
        },
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        values: BTreeMap::new(),
    }
}

#[test]
fn the_seed_deployment_renders_as_reviewed() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let rendered = seed_template()?.render(
        &seed_context(&[("azure_registry_name", "studioml")]),
        &RenderOptions::default(),
    )?;
    let expected_path = studio_tests::workspace_root()
        .join("tests/fixtures/runner-deploy/deployment-1.9.expected.yaml");
    let expected = std::fs::read_to_string(&expected_path)
        .with_context(|| format!("reading {}", expected_path.display()))?;
    assert_eq!(rendered, expected);
    Ok(())
}

#[test]
fn the_seed_deployment_without_its_variable_fails_at_its_position() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let err = seed_template()?
        .render(&seed_context(&[]), &RenderOptions::default())
        .expect_err("azure_registry_name is not set");
    let text = err.to_string();
    assert!(
        text.ends_with(
            "deployment-1.9.yaml:72:19: missing value: environment variable $azure_registry_name"
        ),
        "{text}"
    );
    // stencil's behaviour, on request: the unset variable expands to nothing.
    let lenient = seed_template()?.render(
        &seed_context(&[]),
        &RenderOptions {
            allow_missing: true,
        },
    )?;
    assert!(lenient.contains("image: .azurecr.io/sentient.ai/studio-go-runner/runner:0.9.27"));
    Ok(())
}
