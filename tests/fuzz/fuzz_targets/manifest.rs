//! OCI/docker manifests and indexes: decoding never panics, with or without a media type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use studio_acr::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
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
});
