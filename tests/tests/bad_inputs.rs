//! Hostile and malformed input, driven by the table in `tests/docs/bad-inputs.md`: one case per
//! row. Each case feeds the row's input to the public API that would act on it and asserts
//! the exact error the row gives AND that nothing was sent (the https fake behind the
//! registry, ARM or the Kubernetes test server saw no request) or written (no output tree, no
//! blob, the config file unchanged). Rows and cases are matched by id both ways, so the doc
//! and the tests cannot drift.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use sha2::Digest;
use studio_acr::AcrManagementClient;
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::Repository;
use studio_acr::docker_config::DockerConfig;
use studio_acr::layout::OciLayout;
use studio_acr::management::{RegistryCreate, SkuName};
use studio_acr::reference::Reference;
use studio_acr::transfer::{Destination, Transfer};
use studio_cluster::apimodel::ApiModel;
use studio_cluster::generate::{GenerateOptions, generate};
use studio_runner_deploy::client::{DeployClient, DeployOptions};
use studio_runner_deploy::template::{Context, Duat, RenderOptions, Template};
use studio_tests::https::HttpsMock;
use studio_tests::{LogsOnFailure, rig, shared};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// One row of the table.
#[derive(Debug)]
struct Row {
    id: String,
    input: String,
    error: String,
}

/// Splits a markdown table line into cells, honouring `\|`.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                out.last_mut().unwrap_or_else(|| unreachable!()).push('|');
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap_or_else(|| unreachable!()).push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// A cell's text: without one pair of surrounding backticks, `\n` as a line break, `(empty)`
/// as the empty string.
fn cell_text(cell: &str) -> String {
    if cell == "(empty)" {
        return String::new();
    }
    let unquoted = cell
        .strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell);
    unquoted.replace("\\n", "\n")
}

fn table() -> Result<Vec<Row>> {
    let file = studio_tests::workspace_root().join("tests/docs/bad-inputs.md");
    let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let c = cells(line);
        let id = c[0].trim_matches('`');
        let is_id = id.starts_with(|c: char| c.is_ascii_lowercase())
            && id.contains('-')
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !is_id {
            continue; // header or separator
        }
        ensure!(c.len() == 3, "row {id} has {} cells, not 3", c.len());
        rows.push(Row {
            id: id.to_owned(),
            input: cell_text(&c[1]),
            error: cell_text(&c[2]),
        });
    }
    Ok(rows)
}

/// The ids that have a case below (every row must have one, and every case a row).
const CASES: &[&str] = &[
    "ref-uppercase",
    "ref-empty-component",
    "ref-bad-tag",
    "ref-short-digest",
    "ref-bad-algorithm",
    "ref-long-name",
    "ref-bad-port",
    "tag-traversal",
    "tag-space",
    "tag-too-long",
    "name-short",
    "name-hyphen",
    "name-long",
    "auth-empty",
    "auth-unclosed",
    "auth-no-value",
    "auth-bad-char",
    "cfg-not-json",
    "cfg-not-object",
    "cfg-auth-not-base64",
    "cfg-auth-no-colon",
    "cfg-helper-path",
    "api-not-json",
    "api-unknown-key",
    "api-wrong-type",
    "api-invalid",
    "api-bad-dns-prefix",
    "tpl-unclosed",
    "tpl-unknown-function",
    "tpl-missing-value",
    "tpl-bad-yaml",
    "tpl-no-kind",
    "man-not-json",
    "man-schema1",
    "man-media-type",
    "man-shapeless",
    "man-oversized",
    "man-lying-digest",
    "man-lying-child",
    "man-lying-blob",
];

/// What a case saw: its error text, plus variables to substitute into the row's `{…}`.
struct Outcome {
    error: String,
    vars: BTreeMap<&'static str, String>,
}

fn registry_options() -> RegistryClientOptions {
    RegistryClientOptions {
        transport: rig().transport_options(),
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    }
}

fn host_of(mock: &HttpsMock) -> String {
    mock.uri().trim_start_matches("https://").to_owned()
}

async fn assert_nothing_received(mock: &HttpsMock, what: &str) -> Result<()> {
    let received = mock.received().await;
    ensure!(
        received.is_empty(),
        "{what}: {} request(s) were sent: {:?}",
        received.len(),
        received
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect::<Vec<_>>()
    );
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn err_text<T>(result: std::result::Result<T, impl std::fmt::Display>, id: &str) -> Result<String> {
    match result {
        Ok(_) => bail!("{id}: the bad input was accepted"),
        Err(e) => Ok(e.to_string()),
    }
}

async fn run_case(row: &Row) -> Result<Outcome> {
    let mut vars = BTreeMap::new();
    let kind = row.id.split('-').next().unwrap_or_default();
    let error = match kind {
        "ref" => {
            // Parse, then ask the registry for it: a bad reference must never get that far.
            let mock = HttpsMock::start().await?;
            let result = async {
                let reference: Reference = row.input.parse()?;
                let client = RegistryClient::new(
                    &host_of(&mock),
                    RegistryCredential::Anonymous,
                    registry_options(),
                )?;
                Repository::new(client, reference.repository())
                    .head_manifest(reference.manifest_reference())
                    .await
            }
            .await;
            let error = err_text(result, &row.id)?;
            assert_nothing_received(&mock, &row.id).await?;
            error
        }
        "tag" => {
            // Tag an image in a registry under a bad tag: refused before the manifest is read.
            let mock = HttpsMock::start().await?;
            let client = RegistryClient::new(
                &host_of(&mock),
                RegistryCredential::Anonymous,
                registry_options(),
            )?;
            let repo = Repository::new(client, "studio/app");
            let result = Transfer::default().tag(&repo, "v1", &[&row.input]).await;
            let error = err_text(result, &row.id)?;
            assert_nothing_received(&mock, &row.id).await?;
            error
        }
        "name" => {
            // Create a registry through ARM: the name is refused before anything is sent.
            let mock = HttpsMock::start().await?;
            let arm = studio_tests::arm_fake::arm_client(&mock).await?;
            let acr = AcrManagementClient::new(arm, "00000000-0000-0000-0000-000000000000");
            let request = RegistryCreate::new("eastus", SkuName::Basic);
            let result = acr
                .registries()
                .create("studio", &row.input, &request)
                .await;
            let error = err_text(result, &row.id)?;
            assert_nothing_received(&mock, &row.id).await?;
            error
        }
        "auth" => {
            // The registry's challenge is garbage: the client stops without sending credentials.
            let mock = HttpsMock::start().await?;
            Mock::given(method("GET"))
                .and(path("/v2/"))
                .respond_with(
                    ResponseTemplate::new(401)
                        .insert_header("www-authenticate", row.input.as_str()),
                )
                .mount(&mock.server)
                .await;
            let client = RegistryClient::new(
                &host_of(&mock),
                RegistryCredential::basic("studio", "not-sent-password"),
                registry_options(),
            )?;
            let error = err_text(client.ping().await, &row.id)?;
            let received = mock.received().await;
            ensure!(
                received.len() == 1,
                "{}: expected only the unauthenticated probe, got {} requests",
                row.id,
                received.len()
            );
            ensure!(
                received
                    .iter()
                    .all(|r| !r.headers.contains_key("authorization")),
                "{}: credentials were sent",
                row.id
            );
            error
        }
        "cfg" => {
            // Load docker's config.json and use its login: garbage stops before any request,
            // and the file is left as it was.
            let mock = HttpsMock::start().await?;
            let host = host_of(&mock);
            let dir = tempfile::tempdir()?;
            let file = dir.path().join("config.json");
            let contents = row.input.replace("{host}", &host);
            studio_tests::write_private(&file, contents.as_bytes())?;
            let result = async {
                let config = DockerConfig::load(&file)?.with_helper_dir(dir.path());
                let credential = config
                    .credential_for(&host)?
                    .unwrap_or(RegistryCredential::Anonymous);
                RegistryClient::new(&host, credential, registry_options())?
                    .ping()
                    .await
            }
            .await;
            let error = err_text(result, &row.id)?;
            assert_nothing_received(&mock, &row.id).await?;
            ensure!(
                std::fs::read(&file)? == contents.as_bytes(),
                "{}: config.json was changed",
                row.id
            );
            ensure!(
                std::fs::read_dir(dir.path())?.count() == 1,
                "{}: files were written beside config.json",
                row.id
            );
            vars.insert("dir", dir.path().display().to_string());
            vars.insert("host", host);
            error
        }
        "api" => {
            // acs-engine generate: a bad apimodel writes no output tree.
            let dir = tempfile::tempdir()?;
            let file = dir.path().join("kubernetes.json");
            std::fs::write(&file, &row.input)?;
            let output_root = dir.path().join("_output");
            let options = GenerateOptions {
                output_root: output_root.clone(),
                source_name: "kubernetes.json".to_owned(),
                ..Default::default()
            };
            let result = ApiModel::load(&file).and_then(|m| generate(&m, &options));
            let error = err_text(result, &row.id)?;
            ensure!(
                !output_root.exists(),
                "{}: {} was created",
                row.id,
                output_root.display()
            );
            vars.insert("dir", dir.path().display().to_string());
            error
        }
        "tpl" => {
            // Render, parse, apply to the Kubernetes test server: nothing reaches the server.
            let kube = shared::kube().await?;
            let deploy = DeployClient::new(kube.client().await?, DeployOptions::default());
            let before = kube.requests().len();
            let context = Context {
                duat: Duat {
                    module: "runner".into(),
                    version: "0.9.1".into(),
                    ..Default::default()
                },
                ..Default::default()
            };
            let result = async {
                let template = Template::parse("deployment.yaml", &row.input)?;
                let text = template.render(&context, &RenderOptions::default())?;
                let objects = studio_runner_deploy::manifest::parse(&text)?;
                deploy.apply("bad-input", &objects).await
            }
            .await;
            let error = err_text(result, &row.id)?;
            let after = kube.requests();
            ensure!(
                after.len() == before,
                "{}: requests reached the cluster: {:?}",
                row.id,
                &after[before..]
            );
            error
        }
        "man" => manifest_case(row, &mut vars).await?,
        other => bail!("row {}: no runner for kind '{other}'", row.id),
    };
    Ok(Outcome { error, vars })
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn image_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes()
}

async fn serve(mock: &HttpsMock, url_path: &str, body: Vec<u8>, content_type: &str) {
    Mock::given(method("GET"))
        .and(path(url_path))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", content_type)
                .set_body_bytes(body),
        )
        .mount(&mock.server)
        .await;
}

/// A lying or broken source registry; the copy's destination (a second fake registry, or an
/// OCI layout for the blob case) must receive nothing.
async fn manifest_case(row: &Row, vars: &mut BTreeMap<&'static str, String>) -> Result<String> {
    let source_mock = HttpsMock::start().await?;
    let destination_mock = HttpsMock::start().await?;
    let repo = |mock: &HttpsMock, name: &str| -> Result<Repository> {
        let client = RegistryClient::new(
            &host_of(mock),
            RegistryCredential::Anonymous,
            registry_options(),
        )?;
        Ok(Repository::new(client, name))
    };
    let source = repo(&source_mock, "src/app")?;
    let destination = Destination::Registry(repo(&destination_mock, "dst/app")?);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"layer bytes of the image".to_vec();
    let good = image_manifest(config, &layer);
    let mut reference = "v1".to_owned();
    let tags = ["v1"];
    match row.id.as_str() {
        "man-not-json" => {
            serve(
                &source_mock,
                "/v2/src/app/manifests/v1",
                b"<html>".to_vec(),
                OCI_MANIFEST,
            )
            .await
        }
        "man-schema1" => {
            let body = br#"{"schemaVersion":1,"name":"src/app","tag":"v1","fsLayers":[]}"#;
            serve(
                &source_mock,
                "/v2/src/app/manifests/v1",
                body.to_vec(),
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            )
            .await
        }
        "man-media-type" => {
            let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#;
            serve(
                &source_mock,
                "/v2/src/app/manifests/v1",
                body.to_vec(),
                "application/json",
            )
            .await
        }
        "man-shapeless" => {
            serve(
                &source_mock,
                "/v2/src/app/manifests/v1",
                br#"{"schemaVersion":2}"#.to_vec(),
                "application/json",
            )
            .await
        }
        "man-oversized" => {
            let mut body = good.clone();
            body.truncate(body.len() - 1);
            body.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
            body.push(b'}');
            serve(&source_mock, "/v2/src/app/manifests/v1", body, OCI_MANIFEST).await
        }
        "man-lying-digest" => {
            // Asked for by digest, the registry answers with other bytes.
            let asked = sha256(&good);
            let other = image_manifest(config, b"other layer");
            vars.insert("asked", asked.clone());
            vars.insert("served", sha256(&other));
            serve(
                &source_mock,
                &format!("/v2/src/app/manifests/{asked}"),
                other,
                OCI_MANIFEST,
            )
            .await;
            reference = asked;
        }
        "man-lying-child" => {
            // An index whose child manifest is served with other bytes.
            let child_digest = sha256(&good);
            let other = image_manifest(config, b"other layer");
            let index = serde_json::json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, "digest": child_digest, "size": good.len(),
                               "platform": {"architecture": "amd64", "os": "linux"}}],
            })
            .to_string()
            .into_bytes();
            vars.insert("asked", child_digest.clone());
            vars.insert("served", sha256(&other));
            serve(&source_mock, "/v2/src/app/manifests/v1", index, OCI_INDEX).await;
            serve(
                &source_mock,
                &format!("/v2/src/app/manifests/{child_digest}"),
                other,
                OCI_MANIFEST,
            )
            .await;
        }
        "man-lying-blob" => {
            // The layer comes back as other bytes of the same size; pulled into a layout,
            // no blob file and no index entry may appear.
            let dir = tempfile::tempdir()?;
            let layout = OciLayout::create(dir.path().join("pulled"))?;
            let liar: Vec<u8> = layer.iter().map(|b| b ^ 0x20).collect();
            vars.insert("asked", sha256(&layer));
            vars.insert("served", sha256(&liar));
            serve(
                &source_mock,
                "/v2/src/app/manifests/v1",
                good.clone(),
                OCI_MANIFEST,
            )
            .await;
            serve(
                &source_mock,
                &format!("/v2/src/app/blobs/{}", sha256(config)),
                config.to_vec(),
                "application/octet-stream",
            )
            .await;
            serve(
                &source_mock,
                &format!("/v2/src/app/blobs/{}", sha256(&layer)),
                liar,
                "application/octet-stream",
            )
            .await;
            let result = Transfer::default()
                .copy(&source, "v1", &Destination::Layout(layout.clone()), &tags)
                .await;
            let error = err_text(result, &row.id)?;
            ensure!(
                !layout.has_blob(&sha256(&layer), layer.len() as u64),
                "{}: the lying blob was written",
                row.id
            );
            ensure!(
                layout.entries()?.is_empty(),
                "{}: the image was tagged",
                row.id
            );
            assert_nothing_received(&destination_mock, &row.id).await?;
            return Ok(error);
        }
        other => bail!("row {other}: no manifest case"),
    }
    let result = Transfer::default()
        .copy(&source, &reference, &destination, &tags)
        .await;
    let error = err_text(result, &row.id)?;
    assert_nothing_received(&destination_mock, &row.id).await?;
    Ok(error)
}

fn expected(row: &Row, vars: &BTreeMap<&'static str, String>) -> String {
    vars.iter().fold(row.error.clone(), |text, (name, value)| {
        text.replace(&format!("{{{name}}}"), value)
    })
}

#[test]
fn the_table_and_the_cases_match() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let rows = table()?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let missing: Vec<_> = CASES.iter().filter(|c| !ids.contains(c)).collect();
    let extra: Vec<_> = ids.iter().filter(|i| !CASES.contains(i)).collect();
    ensure!(
        missing.is_empty(),
        "cases without a row in the doc: {missing:?}"
    );
    ensure!(extra.is_empty(), "rows without a case: {extra:?}");
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        ensure!(seen.insert(*id), "row {id} appears twice");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_gives_its_error_and_sends_and_writes_nothing() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mut failures = Vec::new();
    for row in table()? {
        match run_case(&row).await {
            Ok(outcome) => {
                let want = expected(&row, &outcome.vars);
                if outcome.error != want {
                    failures.push(format!(
                        "{}:\n  table: {want:?}\n  got:   {:?}",
                        row.id, outcome.error
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e:#}", row.id)),
        }
    }
    ensure!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
