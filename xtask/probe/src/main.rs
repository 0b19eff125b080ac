//! `studio-probe`: the entrypoint of the image `cargo xtask release` builds from this
//! repository's `release.toml`. It prints its name, version and the image's release version
//! (`STUDIO_RELEASE`, set in the image's environment), and exits 0.

fn main() {
    let release = std::env::var("STUDIO_RELEASE").unwrap_or_default();
    println!(
        "{} {} release {release}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );
}
