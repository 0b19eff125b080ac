//! `cargo xtask bench push`: pushes a 1 GiB image (8 layers, one of 512 MiB, incompressible)
//! from an OCI layout to a local `docker-registry` (https, the rig's CA) with studio-acr's
//! engine, with `skopeo copy`, and with curl (one monolithic PUT per blob, all at once: the
//! ceiling); then re-pushes unchanged and retags. Prints wall seconds, MiB/s, CPU seconds,
//! peak RSS and blob bytes sent for each, and the ratios. Figures, not assertions.
//!
//! Every measured run is a child process, measured by a `measure` child of this binary with
//! `getrusage(RUSAGE_CHILDREN)`, so our engine's RSS and CPU are comparable with skopeo's.
//!
//! Modes: (none) the whole benchmark; `engine …` one push or retag with our engine;
//! `measure -- CMD…` runs CMD and prints its resource use. (The faults suite runs `engine` as
//! the push it kills with SIGKILL and runs again.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::Digest;
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::Repository;
use studio_acr::layout::OciLayout;
use studio_acr::transfer::{Destination, Transfer, TransferOptions};
use studio_tests::registry::{Registry, RegistryAuth};

const MIB: u64 = 1024 * 1024;

struct Args {
    layers: usize,
    big_mib: u64,
    total_mib: u64,
    concurrency: usize,
    dir: Option<PathBuf>,
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn parse(args: &[String]) -> Result<Args> {
    let num = |name: &str, default: u64| -> Result<u64> {
        flag(args, name).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("{name} {v}"))
        })
    };
    Ok(Args {
        layers: num("--layers", 8)? as usize,
        big_mib: num("--big-mib", 512)?,
        total_mib: num("--total-mib", 1024)?,
        concurrency: num("--concurrency", 4)? as usize,
        dir: flag(args, "--dir").map(PathBuf::from),
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("measure") => measure(&args[1..]),
        Some("engine") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(engine(&args[1..])),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(bench(parse(&args)?)),
    }
}

/// Runs `-- CMD ARGS…`, then prints `MEASURE {wall, user, sys, max_rss_kib}` for it and its
/// descendants.
fn measure(args: &[String]) -> Result<()> {
    let cmd: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let (program, rest) = cmd.split_first().context("measure -- CMD")?;
    let start = Instant::now();
    let status = Command::new(program).args(rest).status()?;
    let wall = start.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    println!(
        "MEASURE {}",
        json!({"ok": status.success(), "wall": wall, "user": secs(usage.user_time()),
               "sys": secs(usage.system_time()), "max_rss_kib": usage.max_rss()})
    );
    Ok(())
}

/// `engine --layout DIR --registry HOST --repo R --ca PEM (--tag T | --retag FROM --to TO)`.
async fn engine(args: &[String]) -> Result<()> {
    let get = |name: &str| flag(args, name).with_context(|| format!("engine needs {name}"));
    let ca = std::fs::read(get("--ca")?)?;
    let options = RegistryClientOptions {
        transport: studio_azure_auth::transport::TransportOptions {
            ssl_cert_file: None,
            ..Default::default()
        }
        .with_extra_roots_pem(ca),
        ..Default::default()
    };
    let client = RegistryClient::new(get("--registry")?, RegistryCredential::Anonymous, options)?;
    let repo = Repository::new(client, get("--repo")?);
    let concurrency = flag(args, "--concurrency").unwrap_or("4").parse()?;
    let transfer = Transfer::new(TransferOptions {
        concurrency,
        ..Default::default()
    });
    let report = if let Some(from) = flag(args, "--retag") {
        transfer.tag(&repo, from, &[get("--to")?]).await?
    } else {
        let layout = OciLayout::open(get("--layout")?)?;
        let tag = get("--tag")?;
        transfer
            .copy(&layout, tag, &Destination::Registry(repo), &[tag])
            .await?
    };
    println!(
        "ENGINE {}",
        json!({"digest": report.digest, "blob_bytes_sent": report.stats.blob_bytes_sent,
               "uploaded": report.stats.blobs_uploaded, "skipped": report.stats.blobs_skipped})
    );
    Ok(())
}

/// Fast deterministic bytes (xorshift64*), incompressible.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

struct HashFile {
    file: std::io::BufWriter<std::fs::File>,
    hasher: sha2::Sha256,
    size: u64,
}

impl Write for HashFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes a gzip stream (stored blocks: gzip framing around random bytes, so tools treat it
/// as an already-compressed layer and nothing can shrink it) of `len` bytes; returns
/// (digest, size).
fn write_layer(blobs: &Path, seed: u64, len: u64) -> Result<(String, u64)> {
    let tmp = blobs.join(format!("tmp-{seed}"));
    let out = HashFile {
        file: std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?),
        hasher: sha2::Sha256::new(),
        size: 0,
    };
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::none());
    let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        noise.fill(&mut buf[..n]);
        gz.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let mut out = gz.finish()?;
    out.flush()?;
    let digest = format!("sha256:{:x}", out.hasher.finalize());
    std::fs::rename(&tmp, blobs.join(&digest[7..]))?;
    Ok((digest, out.size))
}

fn generate(dir: &Path, args: &Args) -> Result<u64> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let rest = args.total_mib.saturating_sub(args.big_mib) * MIB;
    let small = args.layers.saturating_sub(1).max(1) as u64;
    let mut sizes = vec![args.big_mib * MIB];
    for i in 0..args.layers.saturating_sub(1) as u64 {
        sizes.push(rest / small + u64::from(i < rest % small));
    }
    let mut layers = Vec::new();
    let mut total = 0;
    for (i, len) in sizes.iter().enumerate() {
        let (digest, size) = write_layer(&blobs, i as u64 + 1, *len)?;
        total += size;
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}));
    }
    let config = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l["digest"].clone()).collect::<Vec<_>>()}}),
    )?;
    let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(&config));
    std::fs::write(blobs.join(&config_digest[7..]), &config)?;
    total += config.len() as u64;
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers}))?;
    let manifest_digest = format!("sha256:{:x}", sha2::Sha256::digest(&manifest));
    std::fs::write(blobs.join(&manifest_digest[7..]), &manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))?,
    )?;
    Ok(total)
}

struct Run {
    name: String,
    wall: f64,
    cpu: f64,
    rss_kib: i64,
    bytes_sent: Option<u64>,
}

/// Runs `cmd` under `measure`; returns the measurement and the command's own output lines.
fn measured(name: &str, cmd: &[String]) -> Result<(Run, Vec<String>)> {
    let me = std::env::current_exe()?;
    let out = Command::new(me)
        .arg("measure")
        .arg("--")
        .args(cmd)
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let m: Value = lines
        .iter()
        .find_map(|l| l.strip_prefix("MEASURE "))
        .context("no measurement")
        .and_then(|j| Ok(serde_json::from_str(j)?))?;
    if m["ok"] != json!(true) {
        bail!("{name} failed:\n{text}");
    }
    let f = |k: &str| m[k].as_f64().unwrap_or(0.0);
    Ok((
        Run {
            name: name.to_owned(),
            wall: f("wall"),
            cpu: f("user") + f("sys"),
            rss_kib: m["max_rss_kib"].as_i64().unwrap_or(0),
            bytes_sent: None,
        },
        lines,
    ))
}

fn engine_bytes(lines: &[String]) -> Option<u64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("ENGINE "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|v| v["blob_bytes_sent"].as_u64())
}

async fn fresh_registry(name: &str) -> Result<Registry> {
    Registry::start(name, RegistryAuth::Anonymous, None).await
}

fn s(v: impl AsRef<std::ffi::OsStr>) -> String {
    v.as_ref().to_string_lossy().into_owned()
}

async fn bench(args: Args) -> Result<()> {
    let keep = tempfile::Builder::new()
        .prefix("studio-bench-")
        .tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let dir = keep.path();
    let layout = dir.join("oci");
    eprintln!(
        "bench: generating {} MiB in {} layers (one of {} MiB) in {}",
        args.total_mib,
        args.layers,
        args.big_mib,
        layout.display()
    );
    let t = Instant::now();
    let total = generate(&layout, &args)?;
    eprintln!(
        "bench: generated {total} bytes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rig = studio_tests::rig();
    let ca = rig.ca.cert_path.clone();
    let cert_dir = dir.join("certs");
    std::fs::create_dir_all(&cert_dir)?;
    std::fs::copy(&ca, cert_dir.join("ca.crt"))?;
    let me = s(std::env::current_exe()?);
    let mut runs = Vec::new();

    // Ours.
    let ours_registry = fresh_registry("bench-ours").await?;
    let engine = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            me.clone(),
            "engine".into(),
            "--registry".into(),
            ours_registry.host.clone(),
            "--repo".into(),
            "bench/ours".into(),
            "--ca".into(),
            s(&ca),
            "--concurrency".into(),
            args.concurrency.to_string(),
        ];
        v.extend(extra.iter().map(|x| (*x).to_owned()));
        v
    };
    let layout_s = s(&layout);
    eprintln!("bench: our engine, full push");
    let (mut run, lines) = measured(
        "studio push",
        &engine(&["--layout", &layout_s, "--tag", "v1"]),
    )?;
    run.bytes_sent = engine_bytes(&lines);
    runs.push(run);
    eprintln!("bench: our engine, unchanged re-push");
    let (mut run, lines) = measured(
        "studio re-push",
        &engine(&["--layout", &layout_s, "--tag", "v1"]),
    )?;
    run.bytes_sent = engine_bytes(&lines);
    runs.push(run);
    eprintln!("bench: our engine, retag");
    let (mut run, lines) = measured("studio retag", &engine(&["--retag", "v1", "--to", "v2"]))?;
    run.bytes_sent = engine_bytes(&lines);
    runs.push(run);
    let _ = std::fs::remove_dir_all(&ours_registry.storage);
    drop(ours_registry);

    // skopeo.
    let skopeo_registry = fresh_registry("bench-skopeo").await?;
    let skopeo = s(studio_tests::require_program("skopeo")?);
    let skopeo_cmd = |tag: &str| -> Vec<String> {
        vec![
            skopeo.clone(),
            "copy".into(),
            "--quiet".into(),
            "--dest-cert-dir".into(),
            s(&cert_dir),
            format!("oci:{layout_s}:v1"),
            format!("docker://{}/bench/skopeo:{tag}", skopeo_registry.host),
        ]
    };
    eprintln!("bench: skopeo copy, full push");
    let (mut run, _) = measured("skopeo copy", &skopeo_cmd("v1"))?;
    run.bytes_sent = Some(total);
    runs.push(run);
    eprintln!("bench: skopeo copy, unchanged re-push");
    let (run, _) = measured("skopeo re-push", &skopeo_cmd("v1"))?;
    runs.push(run);
    let _ = std::fs::remove_dir_all(&skopeo_registry.storage);
    drop(skopeo_registry);

    // The ceiling: curl, one monolithic PUT per blob, all at once, each on its own HTTP/1.1
    // connection (curl's HTTP/2 uploads spend far more CPU: 13.5 CPU-s and 21 s here).
    let curl_registry = fresh_registry("bench-curl").await?;
    let http = rig.http()?;
    let mut script = String::from("pids=\n");
    let mut digests = Vec::new();
    for entry in std::fs::read_dir(layout.join("blobs/sha256"))? {
        let path = entry?.path();
        let hex = s(path.file_name().context("name")?);
        let size = std::fs::metadata(&path)?.len();
        digests.push(format!("sha256:{hex}"));
        let _ = size;
        let start = http
            .post(curl_registry.endpoint("v2/bench/curl/blobs/uploads/")?)
            .send()
            .await?
            .error_for_status()?;
        let location = start
            .headers()
            .get("location")
            .context("Location")?
            .to_str()?
            .to_owned();
        let mut url = curl_registry.url.join(&location)?;
        url.query_pairs_mut()
            .append_pair("digest", &format!("sha256:{hex}"));
        script.push_str(&format!(
            "curl -sS -f --http1.1 --cacert '{}' -H 'Content-Type: application/octet-stream' -H 'Expect:' -T '{}' -o /dev/null '{}' & pids=\"$pids $!\"\n",
            ca.display(),
            path.display(),
            url
        ));
    }
    script.push_str("fail=0; for p in $pids; do wait $p || fail=1; done; exit $fail\n");
    eprintln!("bench: curl ceiling");
    let (mut run, _) = measured("curl ceiling", &["sh".into(), "-c".into(), script])?;
    run.bytes_sent = Some(total);
    runs.push(run);
    for digest in &digests {
        let head = http
            .head(curl_registry.endpoint(&format!("v2/bench/curl/blobs/{digest}"))?)
            .send()
            .await?;
        if !head.status().is_success() {
            bail!("curl did not upload {digest}: {}", head.status());
        }
    }
    let _ = std::fs::remove_dir_all(&curl_registry.storage);
    drop(curl_registry);

    print_report(&runs, total);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

fn print_report(runs: &[Run], total: u64) {
    let mib = total as f64 / MIB as f64;
    println!("\nimage: {mib:.1} MiB of blobs; registry: docker-registry on loopback over https\n");
    println!(
        "{:<16} {:>8} {:>9} {:>8} {:>10} {:>16}",
        "run", "wall s", "MiB/s", "CPU s", "RSS MiB", "blob bytes sent"
    );
    for r in runs {
        println!(
            "{:<16} {:>8.2} {:>9.1} {:>8.2} {:>10.1} {:>16}",
            r.name,
            r.wall,
            mib / r.wall,
            r.cpu,
            r.rss_kib as f64 / 1024.0,
            r.bytes_sent.map_or("n/a".to_owned(), |b| b.to_string())
        );
    }
    let find = |n: &str| runs.iter().find(|r| r.name == n);
    if let (Some(ours), Some(skopeo), Some(ceiling)) = (
        find("studio push"),
        find("skopeo copy"),
        find("curl ceiling"),
    ) {
        println!();
        println!("ours/skopeo wall:      {:.2}", ours.wall / skopeo.wall);
        println!("ours/skopeo CPU:       {:.2}", ours.cpu / skopeo.cpu);
        println!(
            "ours/skopeo RSS:       {:.2}",
            ours.rss_kib as f64 / skopeo.rss_kib as f64
        );
        println!(
            "ours/ceiling throughput: {:.0}%",
            100.0 * ceiling.wall / ours.wall
        );
        if let Some(repush) = find("studio re-push") {
            println!(
                "re-push/full push wall:  {:.1}%",
                100.0 * repush.wall / ours.wall
            );
        }
    }
}
