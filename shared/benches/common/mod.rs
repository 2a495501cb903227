//! What the planner and columnar benchmarks share: the planner's constants they mirror, the data
//! directory, timing and the peak-memory reading.

// Each bench binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub type BenchResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const SOURCE_BUCKET: &str = "acme-prod-media-assets-eu-west-1";
pub const JOB_ID: &str = "5a1f0d0e-7f3c-4c2e-9a51-3f2d6c1b8e47";
/// The planner's batch id prefix (planner.rs: `BatchPacker::new(job_id, "b", ...)`).
pub const BATCH_PREFIX: &str = "b";
/// Bodies the planner keeps in flight (planner.rs SEND_CONCURRENCY) and chunks its channel holds.
pub const SEND_CONCURRENCY: usize = 8;
pub const CHANNEL_CHUNKS: usize = 8;
pub const MIB: f64 = 1024.0 * 1024.0;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where generated data files are cached: `BENCH_DATA_DIR`, or `target/bench-data/`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("BENCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data"))
}

pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// The fastest of `repeat` runs, with that run's value.
pub fn best_of<T>(
    repeat: usize,
    mut run: impl FnMut() -> BenchResult<T>,
) -> BenchResult<(Duration, T)> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..repeat {
        let started = Instant::now();
        let value = run()?;
        let took = started.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, value));
        }
    }
    best.ok_or_else(|| "no runs".into())
}

/// Peak resident memory of this process so far, in KiB.
pub fn vm_hwm_kib() -> BenchResult<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

/// The moto server of `scripts/with-services.sh` as every SDK client's endpoint, with test
/// credentials and Region where none are set; its URL.
pub fn moto_endpoint() -> BenchResult<String> {
    let endpoint = std::env::var("BATCHOPS_TEST_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .map_err(|_| "no moto server: run under scripts/with-services.sh")?;
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(endpoint)
}

/// A stack of its own on the moto server (`local up` with names `<prefix>-<id>`): the SDK
/// configuration, the context, and the 8-character id for naming the bench's buckets.
pub async fn local_stack(
    prefix: &str,
) -> BenchResult<(aws_config::SdkConfig, batchops::Context, String)> {
    let config = batchops::context::load_aws_config().await;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let ctx = batchops::local::up(
        &config,
        &batchops::local::LocalNames::with_suffix(&format!("{prefix}-{id}")),
        None,
        batchops::context::Settings::default(),
    )
    .await?;
    Ok((config, ctx, id))
}
