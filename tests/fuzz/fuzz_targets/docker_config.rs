//! Docker `config.json`: loading never panics, and asking for any registry's credential never
//! panics (credential helpers are looked up in a directory that does not exist, so none runs).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use studio_acr::docker_config::DockerConfig;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("studio-fuzz-docker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
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
});
