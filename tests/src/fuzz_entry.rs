//! The entry function of every cargo-fuzz target in `tests/fuzz`: one function per target,
//! shared by the fuzz targets (which include this file with `#[path]`, so the sanitizer build
//! does not pull in the rig) and by the `fuzz_replay` suite, which runs each seed corpus and
//! a bounded set of deterministic mutations through them on every CI run.
//!
//! Each function takes any bytes, must not panic, and asserts the target's property beyond
//! "no panic" (see `tests/fuzz/README.md`).
//!
//! This file may use only what both packages depend on: the studio crates and `serde_json`.
//!
//! ```
//! studio_tests::fuzz_entry::reference(b"myacr.azurecr.io/runner:0.9.1");
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A target's entry function.
pub type Entry = fn(&[u8]);

/// The targets, by name (the `[[bin]]` names of `tests/fuzz/Cargo.toml` and the folders of
/// `tests/fuzz/seeds`), with their entry functions.
pub const TARGETS: [(&str, Entry); 6] = [
    ("reference", reference),
    ("www_authenticate", www_authenticate),
    ("apimodel", apimodel),
    ("template", template),
    ("docker_config", docker_config),
    ("manifest", manifest),
];

/// Image references: parsing never panics, and whatever parses prints as text that parses
/// back to the same reference.
pub fn reference(data: &[u8]) {
    use studio_acr::reference::Reference;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = text.parse::<Reference>() {
        let printed = parsed.to_string();
        let again: Reference = printed
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(parsed, again, "{text:?} does not round-trip");
        let _ = parsed.api_host();
        let _ = parsed.manifest_reference();
    }
}

/// `WWW-Authenticate` headers: parsing never panics; every parsed challenge can be queried.
pub fn www_authenticate(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(challenges) = studio_acr::challenge::parse(header) {
        assert!(!challenges.is_empty());
        for c in &challenges {
            let _ = (c.is_bearer(), c.is_basic(), c.param("realm"), c.scopes());
        }
    }
}

/// acs-engine apimodels: decoding and validation never panic, and a decoded model re-encodes.
pub fn apimodel(data: &[u8]) {
    use studio_cluster::apimodel::ApiModel;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(model) = ApiModel::from_json(text, "fuzz.json") {
        let _ = model.validate();
        let _ = model.validate_as("fuzz.json", true);
        let _ = model.dns_prefix();
        let _ = model.nvidia_device_plugin_enabled();
        let json = model.to_json().expect("a decoded model encodes");
        ApiModel::from_json(&json, "re-encoded.json").expect("a re-encoded model decodes");
    }
}

/// Stencil templates: parsing and rendering never panic (depth and output are bounded by the
/// engine, not by this harness).
pub fn template(data: &[u8]) {
    use studio_runner_deploy::template::{Context, Duat, RenderOptions, Template};
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse("fuzz.tmpl", source) else {
        return;
    };
    let context = Context {
        duat: Duat {
            module: "runner".into(),
            version: "0.9.1".into(),
            ..Default::default()
        },
        env: BTreeMap::from([("acr".to_owned(), "studioml".to_owned())]),
        ..Default::default()
    };
    for allow_missing in [false, true] {
        let _ = template.render(&context, &RenderOptions { allow_missing });
    }
}

/// A scratch directory for this process and thread.
fn scratch() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let dir = std::env::temp_dir().join(format!(
        "studio-fuzz-docker-config-{}-{thread}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Docker `config.json`: loading never panics, and asking for any registry's credential never
/// panics (credential helpers are looked up in a directory that does not exist, so none runs).
pub fn docker_config(data: &[u8]) {
    use studio_acr::docker_config::DockerConfig;
    let path = scratch().join("config.json");
    std::fs::write(&path, data).expect("write scratch config");
    let Ok(config) = DockerConfig::load(&path) else {
        return;
    };
    let config = config.with_helper_dir("/nonexistent/studio-fuzz-helpers");
    let mut hosts = config.registries();
    hosts.extend(["docker.io".to_owned(), "myacr.azurecr.io".to_owned()]);
    for host in hosts {
        let _ = config.credential_for(&host);
    }
    let _ = format!("{config:?}");
}

/// OCI/docker manifests and indexes: decoding never panics, with or without a media type; a
/// decoded manifest verifies against its own digest.
pub fn manifest(data: &[u8]) {
    use studio_acr::manifest::Manifest;
    for media_type in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    ] {
        if let Ok(manifest) = Manifest::from_bytes(data.to_vec(), media_type) {
            assert_eq!(manifest.size(), data.len() as u64);
            manifest
                .verify(manifest.digest())
                .expect("verifies against its own digest");
            let _ = manifest.children();
            let _ = manifest.blobs();
            let _ = manifest.descriptor();
        }
    }
}
