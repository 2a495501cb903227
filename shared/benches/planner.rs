//! Planner benchmarks (issue 3): parse-and-pack throughput against `gzip -dc`, peak memory at two
//! manifest sizes, and SQS messages / DynamoDB writes per 1,000 tasks.
//!
//! Run with `scripts/bench.sh` (or `cargo bench -p batchops --bench planner`). The 5,000,000-row
//! inventory data file is generated once and cached under `target/bench-data/`.
//!
//! Environment: `BENCH_ROWS` (default 5000000), `BENCH_REPEAT` (timed runs per measurement, best
//! taken; default 2), `BENCH_SKIP_MEMORY=1` to skip the memory children, `BENCH_DATA_DIR`.
//!
//! The binary re-executes itself as `planner --child-memory FILE COPIES MD5|-` to measure the
//! peak resident memory (VmHWM) of planning in a fresh process.

mod common;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use batchops::manifest::{self, Task, CHUNK_TASKS};
use batchops::plan::{BatchPacker, TaskBatch, MAX_MESSAGE_BYTES};
use flate2::write::GzEncoder;
use flate2::Compression;
use md5::{Digest, Md5};

use common::*;

/// A common inventory configuration: the optional fields most inventories turn on.
const FILE_SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass";
/// Changing the generator must change this, so that a stale cached file is not reused.
const DATA_VERSION: u32 = 1;
/// planner.rs STATUS_CHECK_EVERY: one GetItem per this many batches.
const STATUS_CHECK_EVERY: u64 = 50;

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-memory") {
        return child_memory(&args[1..]);
    }
    let rows = env_u64("BENCH_ROWS", 5_000_000);
    let repeat = env_u64("BENCH_REPEAT", 2).max(1) as usize;
    let build = if cfg!(debug_assertions) {
        "DEBUG build: figures are meaningless, use cargo bench"
    } else {
        "release build"
    };
    println!("batchops planner benchmark ({build}; {rows} rows; best of {repeat} runs)");
    println!("machine: {}", machine_summary());
    println!();

    let data = data_file(rows)?;
    let (planned, rate) = throughput(&data, repeat)?;
    if std::env::var("BENCH_SKIP_MEMORY").as_deref() == Ok("1") {
        println!("\n== 2. Peak resident memory: skipped (BENCH_SKIP_MEMORY=1)");
    } else {
        memory(&data)?;
    }
    messages_and_writes(&data, &planned, rate)?;
    println!("\n== 4. Parquet and ORC: see `cargo bench -p batchops --bench columnar` (scripts/bench.sh runs both)");
    Ok(())
}

fn machine_summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}; load average {load}")
}

// ---------------------------------------------------------------------------------------------
// The data file
// ---------------------------------------------------------------------------------------------

/// A generated inventory data file and what is known about it.
struct DataFile {
    path: PathBuf,
    rows: u64,
    compressed_bytes: u64,
    uncompressed_bytes: u64,
    md5: String,
}

/// The cached data file for `rows` rows, generated if missing. A small sidecar records its MD5 and
/// uncompressed size; the file counts as cached only when the sidecar is there and the size matches.
fn data_file(rows: u64) -> BenchResult<DataFile> {
    let dir = data_dir();
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("inventory-v{DATA_VERSION}-{rows}.csv.gz"));
    let meta = path.with_extension("gz.meta");
    if let Some(data) = cached(&path, &meta, rows) {
        println!(
            "data file: {} (cached; {:.1} MiB gzipped, {:.1} MiB CSV)",
            path.display(),
            data.compressed_bytes as f64 / MIB,
            data.uncompressed_bytes as f64 / MIB
        );
        return Ok(data);
    }
    println!("data file: generating {} ...", path.display());
    let started = Instant::now();
    let tmp = path.with_extension("gz.tmp");
    let uncompressed_bytes = generate(&tmp, rows)?;
    let md5 = file_md5(&tmp)?;
    fs::rename(&tmp, &path)?;
    let compressed_bytes = fs::metadata(&path)?.len();
    fs::write(
        &meta,
        format!("{md5} {uncompressed_bytes} {compressed_bytes}\n"),
    )?;
    println!(
        "data file: generated in {:.1} s ({:.1} MiB gzipped, {:.1} MiB CSV)",
        started.elapsed().as_secs_f64(),
        compressed_bytes as f64 / MIB,
        uncompressed_bytes as f64 / MIB
    );
    Ok(DataFile {
        path,
        rows,
        compressed_bytes,
        uncompressed_bytes,
        md5,
    })
}

fn cached(path: &Path, meta: &Path, rows: u64) -> Option<DataFile> {
    let text = fs::read_to_string(meta).ok()?;
    let mut parts = text.split_whitespace();
    let md5 = parts.next()?.to_string();
    let uncompressed_bytes = parts.next()?.parse().ok()?;
    let compressed_bytes: u64 = parts.next()?.parse().ok()?;
    (fs::metadata(path).ok()?.len() == compressed_bytes).then(|| DataFile {
        path: path.to_path_buf(),
        rows,
        compressed_bytes,
        uncompressed_bytes,
        md5,
    })
}

fn file_md5(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(md5.finalize()));
        }
        md5.update(&buf[..n]);
    }
}

/// Writes `rows` inventory rows as one gzip member (as S3 Inventory does) at the default
/// compression level; returns the uncompressed size.
fn generate(path: &Path, rows: u64) -> io::Result<u64> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut gz = GzEncoder::new(file, Compression::default());
    let mut keys = KeyGenerator::new(0x5eed_ba7c);
    let mut buf = Vec::with_capacity(2 << 20);
    let mut total = 0u64;
    for _ in 0..rows {
        keys.row(&mut buf);
        if buf.len() >= 1 << 20 {
            gz.write_all(&buf)?;
            total += buf.len() as u64;
            buf.clear();
        }
    }
    gz.write_all(&buf)?;
    total += buf.len() as u64;
    gz.finish()?.flush()?;
    Ok(total)
}

/// Deterministic, realistic object keys: logs, data-lake partitions, photos, documents with spaces
/// and punctuation, backups with timestamps, and some unicode; 50–200 bytes decoded, URL-encoded
/// as S3 Inventory writes them (form encoding: space as '+').
struct KeyGenerator {
    rng: fastrand::Rng,
    key: String,
    serial: u64,
}

const SERVICES: &[&str] = &[
    "api-gateway",
    "checkout",
    "search",
    "auth",
    "billing",
    "ingest",
];
const TABLES: &[&str] = &["events", "page_views", "orders", "sessions", "clicks_raw"];
const WORDS: &[&str] = &[
    "Quarterly report",
    "Invoice",
    "meeting notes",
    "Draft (final)",
    "Contract signed",
    "Budget 2026",
    "team photo",
    "Résumé",
    "Präsentation",
    "notes & ideas",
    "copy of copy",
];
const UNICODE: &[&str] = &[
    "音楽/アーティスト/アルバム",
    "документы/отчёты",
    "Müller & Söhne/Überweisungen",
    "été/vacances à Nice",
    "사진/가족",
    "données/clients",
    "😀 emoji folder",
];
const EXTENSIONS: &[&str] = &[".pdf", ".docx", ".jpg", ".mp3", ".xlsx", ".png", ".txt"];
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD",
    "STANDARD",
    "INTELLIGENT_TIERING",
    "STANDARD_IA",
    "GLACIER_IR",
];

impl KeyGenerator {
    fn new(seed: u64) -> Self {
        KeyGenerator {
            rng: fastrand::Rng::with_seed(seed),
            key: String::with_capacity(256),
            serial: 0,
        }
    }

    /// Appends one CSV row: every field quoted, as S3 Inventory writes CSV.
    fn row(&mut self, out: &mut Vec<u8>) {
        self.next_key();
        let rng = &mut self.rng;
        let (y, mo, d) = (rng.u32(2019..=2026), rng.u32(1..=12), rng.u32(1..=28));
        let (h, mi, s) = (rng.u32(0..24), rng.u32(0..60), rng.u32(0..60));
        let size = if rng.u8(..) < 20 {
            rng.u64(..1 << 34)
        } else {
            rng.u64(..1 << 22)
        };
        let class = STORAGE_CLASSES[rng.usize(..STORAGE_CLASSES.len())];
        let (etag_hi, etag_lo) = (rng.u64(..), rng.u64(..));
        out.extend_from_slice(b"\"");
        out.extend_from_slice(SOURCE_BUCKET.as_bytes());
        out.extend_from_slice(b"\",\"");
        encode_key_into(&self.key, out);
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            out,
            "\",\"{size}\",\"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z\",\"{etag_hi:016x}{etag_lo:016x}\",\"{class}\""
        );
    }

    fn next_key(&mut self) {
        use std::fmt::Write as _;
        self.serial += 1;
        let n = self.serial;
        let rng = &mut self.rng;
        let target = rng.usize(50..=200);
        let key = &mut self.key;
        key.clear();
        let (y, mo, d, h) = (
            rng.u32(2019..=2026),
            rng.u32(1..=12),
            rng.u32(1..=28),
            rng.u32(0..24),
        );
        // The leading directories, then filler directories up to the target length, then the name.
        let name = match rng.u32(0..100) {
            0..=29 => {
                let svc = SERVICES[rng.usize(..SERVICES.len())];
                let _ = write!(key, "logs/{svc}/{y}/{mo:02}/{d:02}/{h:02}/");
                format!(
                    "{svc}-i-{:016x}-{y}{mo:02}{d:02}T{h:02}{:02}Z.log.gz",
                    rng.u64(..),
                    rng.u32(0..60)
                )
            }
            30..=49 => {
                let table = TABLES[rng.usize(..TABLES.len())];
                let _ = write!(key, "warehouse/{table}/dt={y}-{mo:02}-{d:02}/hour={h:02}/");
                format!(
                    "part-{:05}-{:08x}-{:04x}-{:04x}.c000.snappy.parquet",
                    n % 100_000,
                    rng.u32(..),
                    rng.u16(..),
                    rng.u16(..)
                )
            }
            50..=69 => {
                let _ = write!(key, "photos/user-{}/{y}/{mo:02}/", rng.u32(..1_000_000));
                format!("IMG_{:04}.JPG", n % 10_000)
            }
            70..=81 => {
                let _ = write!(key, "users/{}/documents/", rng.u32(..1_000_000));
                let word = WORDS[rng.usize(..WORDS.len())];
                let ext = EXTENSIONS[rng.usize(..EXTENSIONS.len())];
                format!("{word} {n} (v{}){ext}", rng.u8(1..9))
            }
            82..=89 => {
                let _ = write!(
                    key,
                    "backups/db-{}/{y}-{mo:02}-{d:02}T{h:02}:00:00Z/",
                    rng.u8(1..20)
                );
                format!("chunk-{:06}.bin", n % 1_000_000)
            }
            _ => {
                let dir = UNICODE[rng.usize(..UNICODE.len())];
                let _ = write!(key, "shared/{dir}/");
                let ext = EXTENSIONS[rng.usize(..EXTENSIONS.len())];
                format!(
                    "{:02} {} {n}{ext}",
                    rng.u8(1..30),
                    WORDS[rng.usize(..WORDS.len())]
                )
            }
        };
        while key.len() + name.len() < target {
            let _ = write!(
                key,
                "{}{}/",
                FILLER[rng.usize(..FILLER.len())],
                rng.u16(..1000)
            );
        }
        key.push_str(&name);
        if key.len() > 200 {
            let mut cut = 200;
            while !key.is_char_boundary(cut) {
                cut -= 1;
            }
            key.truncate(cut);
        }
    }
}

const FILLER: &[&str] = &[
    "archive",
    "2026",
    "tmp",
    "shard-",
    "region-eu",
    "v",
    "export",
    "batch-",
];

/// Form URL-encoding: unreserved characters and '/' stay, space becomes '+', the rest %XX.
fn encode_key_into(key: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b)
            }
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Planning, as the planner does it minus the network
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct Planned {
    tasks: u64,
    bodies: u64,
    body_bytes: u64,
}

impl Planned {
    fn add(&mut self, batch: &TaskBatch) -> String {
        let body = batch.to_body();
        self.tasks += batch.tasks.len() as u64;
        self.bodies += 1;
        self.body_bytes += body.len() as u64;
        body
    }
}

/// One thread: gunzip + MD5 + CSV + key decoding, packing and body encoding, in sequence. This is
/// the CPU cost of planning a file.
fn plan_sequential(reader: impl Read, md5: Option<&str>) -> BenchResult<Planned> {
    let mut packer = BatchPacker::new(JOB_ID, BATCH_PREFIX, MAX_MESSAGE_BYTES);
    let mut planned = Planned::default();
    let rows =
        manifest::parse_inventory_data_file(reader, FILE_SCHEMA, "bench file", md5, |task| {
            if let Some(batch) = packer.push(task) {
                black_box(planned.add(&batch));
            }
            true
        })?;
    if let Some(batch) = packer.finish() {
        black_box(planned.add(&batch));
    }
    check_count(rows, &planned)?;
    Ok(planned)
}

/// As planner.rs runs it: the parser on its own thread sends chunks of CHUNK_TASKS tasks through a
/// bounded channel (8 chunks) to the packer, which keeps up to SEND_CONCURRENCY bodies in flight.
fn plan_pipelined(reader: impl Read + Send, md5: Option<&str>) -> BenchResult<Planned> {
    let (tx, rx) = mpsc::sync_channel::<Vec<Task>>(CHANNEL_CHUNKS);
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || -> BenchResult<u64> {
            let mut chunk = Vec::with_capacity(CHUNK_TASKS);
            let rows = manifest::parse_inventory_data_file(
                reader,
                FILE_SCHEMA,
                "bench file",
                md5,
                |task| {
                    chunk.push(task);
                    if chunk.len() >= CHUNK_TASKS {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_TASKS));
                        return tx.send(full).is_ok();
                    }
                    true
                },
            )?;
            if !chunk.is_empty() {
                tx.send(chunk)?;
            }
            Ok(rows)
        });
        let mut packer = BatchPacker::new(JOB_ID, BATCH_PREFIX, MAX_MESSAGE_BYTES);
        let mut planned = Planned::default();
        let mut in_flight = VecDeque::with_capacity(SEND_CONCURRENCY);
        let mut send = |body: String| {
            if in_flight.len() >= SEND_CONCURRENCY {
                black_box(in_flight.pop_front());
            }
            in_flight.push_back(body);
        };
        for chunk in rx {
            for task in chunk {
                if let Some(batch) = packer.push(task) {
                    send(planned.add(&batch));
                }
            }
        }
        if let Some(batch) = packer.finish() {
            send(planned.add(&batch));
        }
        let rows = parser
            .join()
            .map_err(|_| "the parser thread panicked")?
            .map_err(|e| e.to_string())?;
        check_count(rows, &planned)?;
        Ok(planned)
    })
}

fn check_count(rows: u64, planned: &Planned) -> BenchResult<()> {
    if rows != planned.tasks {
        return Err(format!(
            "parser counted {rows} tasks but {} were packed",
            planned.tasks
        )
        .into());
    }
    Ok(())
}

/// Reads `path` `copies` times in a row: a file of `copies` concatenated gzip members, streamed
/// without writing it to disk.
struct Repeated {
    path: PathBuf,
    left: u64,
    current: Option<File>,
}

impl Read for Repeated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                if self.left == 0 {
                    return Ok(0);
                }
                self.left -= 1;
                self.current = Some(File::open(&self.path)?);
            }
            if let Some(file) = self.current.as_mut() {
                let n = file.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            self.current = None;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Throughput
// ---------------------------------------------------------------------------------------------

fn gunzip_cli(path: &Path) -> BenchResult<()> {
    let status = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("gzip -dc {} failed: {status}", path.display()).into());
    }
    Ok(())
}

/// Returns the planned batches and the one-thread rate in tasks per second.
fn throughput(data: &DataFile, repeat: usize) -> BenchResult<(Planned, f64)> {
    println!(
        "\n== 1. Parse-and-pack throughput ({} rows, schema \"{FILE_SCHEMA}\")",
        data.rows
    );
    // Warm the page cache so that every contender reads from memory.
    file_md5(&data.path)?;
    let (gzip, ()) = best_of(repeat.max(3), || gunzip_cli(&data.path))?;
    let (sequential, planned) = best_of(repeat, || {
        plan_sequential(File::open(&data.path)?, Some(&data.md5))
    })?;
    let (pipelined, _) = best_of(repeat, || {
        plan_pipelined(File::open(&data.path)?, Some(&data.md5))
    })?;
    if planned.tasks != data.rows {
        return Err(format!("planned {} tasks from {} rows", planned.tasks, data.rows).into());
    }
    println!(
        "{:<44} {:>8} {:>12} {:>10} {:>10} {:>9}",
        "", "seconds", "rows/s", "gz MB/s", "CSV MB/s", "vs gzip"
    );
    let line = |name: &str, took: Duration| {
        let s = took.as_secs_f64();
        println!(
            "{name:<44} {s:>8.2} {:>12.0} {:>10.1} {:>10.1} {:>9.2}",
            data.rows as f64 / s,
            data.compressed_bytes as f64 / 1e6 / s,
            data.uncompressed_bytes as f64 / 1e6 / s,
            gzip.as_secs_f64() / s
        );
    };
    line("gzip -dc FILE > /dev/null", gzip);
    line("planner, one thread", sequential);
    line("planner, parser + packer threads", pipelined);
    println!(
        "bodies: {} messages, {:.1} MiB, {:.0} tasks per message",
        planned.bodies,
        planned.body_bytes as f64 / MIB,
        planned.tasks as f64 / planned.bodies as f64
    );
    let ratio = gzip.as_secs_f64() / sequential.as_secs_f64();
    println!(
        "goal: planner >= 2/3 of gunzip's speed: one thread {ratio:.2} -> {}",
        verdict(ratio >= 2.0 / 3.0)
    );
    splits(data)?;
    Ok((planned, data.rows as f64 / sequential.as_secs_f64()))
}

/// Where the single-thread time goes: each stage timed on its own, cumulatively.
fn splits(data: &DataFile) -> BenchResult<()> {
    println!("time split (one run each, cumulative stages):");
    let time = |name: &str, run: &mut dyn FnMut() -> BenchResult<u64>| -> BenchResult<()> {
        let started = Instant::now();
        let n = run()?;
        println!(
            "  {name:<52} {:>6.2} s ({n})",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    };
    time("flate2 gunzip to a sink", &mut || {
        let gz = flate2::read::MultiGzDecoder::new(File::open(&data.path)?);
        Ok(io::copy(
            &mut io::BufReader::with_capacity(64 << 10, gz),
            &mut io::sink(),
        )?)
    })?;
    time("+ MD5 of the gzipped bytes", &mut || {
        let hashed = HashingReader {
            inner: File::open(&data.path)?,
            md5: Md5::new(),
        };
        let mut gz = flate2::read::MultiGzDecoder::new(hashed);
        let n = io::copy(&mut gz, &mut io::sink())?;
        black_box(gz.into_inner().md5.finalize());
        Ok(n)
    })?;
    time(
        "+ CSV parse, key decoding (parse_inventory_data_file)",
        &mut || {
            let mut rows = 0u64;
            manifest::parse_inventory_data_file(
                File::open(&data.path)?,
                FILE_SCHEMA,
                "bench",
                Some(&data.md5),
                |task| {
                    rows += black_box(task).key.len() as u64 & 1;
                    true
                },
            )
            .map_err(Into::into)
        },
    )?;
    time(
        "+ BatchPacker and to_body (the whole planner path)",
        &mut || Ok(plan_sequential(File::open(&data.path)?, Some(&data.md5))?.bodies),
    )?;
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    md5: Md5,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Peak resident memory
// ---------------------------------------------------------------------------------------------

fn memory(data: &DataFile) -> BenchResult<()> {
    println!("\n== 2. Peak resident memory (VmHWM of a fresh process per size, pipelined planner)");
    let exe = std::env::current_exe()?;
    let baseline = run_child(&exe, &data.path, 0, "-")?;
    println!(
        "process before planning: {:.1} MiB",
        baseline.0 as f64 / 1024.0
    );
    let mut peaks = Vec::new();
    for copies in [1u64, 10] {
        let md5 = if copies == 1 { data.md5.as_str() } else { "-" };
        let started = Instant::now();
        let (hwm_kib, tasks) = run_child(&exe, &data.path, copies, md5)?;
        let mib = hwm_kib as f64 / 1024.0;
        println!(
            "{:>11} rows ({copies:>2} gzip member(s), {:>7.1} MiB gzipped): peak {mib:.1} MiB, {:.0} s",
            tasks,
            (data.compressed_bytes * copies) as f64 / MIB,
            started.elapsed().as_secs_f64()
        );
        peaks.push(mib);
    }
    let (small, large) = (peaks[0], peaks[1]);
    println!(
        "goal: under 100 MiB and flat: {:.1} MiB -> {:.1} MiB ({:+.1} MiB) -> {}",
        small,
        large,
        large - small,
        verdict(large < 100.0 && small < 100.0 && large - small < 4.0)
    );
    Ok(())
}

fn run_child(exe: &Path, path: &Path, copies: u64, md5: &str) -> BenchResult<(u64, u64)> {
    let output = Command::new(exe)
        .arg("--child-memory")
        .arg(path)
        .arg(copies.to_string())
        .arg(md5)
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("memory child failed: {}", output.status).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace();
    let parse = |s: Option<&str>| -> BenchResult<u64> {
        Ok(s.ok_or("memory child printed nothing")?.parse()?)
    };
    Ok((parse(parts.next())?, parse(parts.next())?))
}

/// In the child: plan `copies` back-to-back copies of the file, then print VmHWM (KiB) and tasks.
fn child_memory(args: &[String]) -> BenchResult<()> {
    let [path, copies, md5] = args else {
        return Err("usage: --child-memory FILE COPIES MD5|-".into());
    };
    let copies: u64 = copies.parse()?;
    let md5 = (md5 != "-").then_some(md5.as_str());
    let tasks = if copies == 0 {
        0
    } else {
        let reader = Repeated {
            path: PathBuf::from(path),
            left: copies,
            current: None,
        };
        plan_pipelined(reader, md5)?.tasks
    };
    println!("{} {tasks}", vm_hwm_kib()?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. SQS messages and DynamoDB writes per 1,000 tasks
// ---------------------------------------------------------------------------------------------

/// DynamoDB calls of planning; see `messages_and_writes` for where each comes from. These are
/// the counts `tests/planner_calls.rs` measures against moto (and asserts), so a change in the
/// planner's calls fails that test before it makes these figures wrong.
const WRITES_PER_JOB: u64 = 5;
const WRITES_PER_PART: u64 = 2;
const WRITES_PER_CONTINUATION: u64 = 2;
const READS_PER_JOB: u64 = 3;
const READS_PER_PART: u64 = 2;
const READS_PER_CONTINUATION: u64 = 2;
/// A job of several parts also lists its parts once and reads the job at the start of each part.
const READS_PER_PARALLEL_JOB: u64 = 1;
const READS_PER_PARALLEL_PART: u64 = 1;
/// Planning time per Lambda invocation: the 15-minute limit less planner::DEADLINE_MARGIN (30 s).
const PLANNING_SECONDS_PER_INVOCATION: u64 = 870;

struct StoreCalls {
    writes: u64,
    reads: u64,
}

impl StoreCalls {
    fn planning(parts: u64, continuations: u64, batches: u64) -> Self {
        StoreCalls {
            writes: WRITES_PER_JOB
                + WRITES_PER_PART * parts
                + WRITES_PER_CONTINUATION * continuations
                // The planner reserves batches ahead of sending them, one write per window.
                + parts * (batches / parts.max(1)).div_ceil(batchops::planner::RESERVE_WINDOW),
            reads: READS_PER_JOB
                + READS_PER_PART * parts
                + if parts > 1 {
                    READS_PER_PARALLEL_JOB + READS_PER_PARALLEL_PART * parts
                } else {
                    0
                }
                + READS_PER_CONTINUATION * continuations
                + batches / STATUS_CHECK_EVERY,
        }
    }
}

/// Continuations for `tasks` split evenly over `parts`, planned at `rate` tasks per second.
fn continuations_needed(tasks: u64, parts: u64, rate: f64) -> u64 {
    let per_part_seconds = tasks as f64 / parts as f64 / rate;
    parts * (per_part_seconds / PLANNING_SECONDS_PER_INVOCATION as f64).floor() as u64
}

fn messages_and_writes(data: &DataFile, file: &Planned, file_rate: f64) -> BenchResult<()> {
    println!("\n== 3. SQS messages and DynamoDB writes per 1,000 tasks");
    let tasks = 1_000_000u64;
    let mut packer = BatchPacker::new(JOB_ID, BATCH_PREFIX, MAX_MESSAGE_BYTES);
    let mut planned = Planned::default();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..tasks {
        // 100-byte keys: a path prefix and random name, as a typical large bucket holds.
        let mut key = format!("data/2026/11/{:02}/{i:010}/", i % 28 + 1);
        while key.len() < 100 {
            key.push(rng.alphanumeric());
        }
        let task = Task {
            bucket: SOURCE_BUCKET.into(),
            key,
            version_id: None,
            size: None,
        };
        if let Some(batch) = packer.push(task) {
            planned.add(&batch);
        }
    }
    if let Some(batch) = packer.finish() {
        planned.add(&batch);
    }
    let per_1000 = planned.bodies as f64 * 1000.0 / tasks as f64;
    println!(
        "100-byte keys, bucket {SOURCE_BUCKET:?}: {tasks} tasks -> {} messages ({:.0} tasks per message) = {per_1000:.3} messages per 1,000 tasks -> goal <= 2: {}",
        planned.bodies,
        tasks as f64 / planned.bodies as f64,
        verdict(per_1000 <= 2.0)
    );

    // Store calls, read from planner.rs and store.rs. Per job: UpdateItem for New->Preparing and
    // Preparing->Active, finish_planning, and reporter's conditional claim_finalize (charged even
    // when it fails). Per plan part (the whole manifest, or one inventory data file): the
    // checkpoint's PutItem (put_plan_parts) and its last advance_plan_part. Per continuation
    // (planning time ran out): advance_plan_part and mark_plan_part_continued. Reads: plan_job's
    // get_job and one inside each transition; per part get_plan_part and list_plan_parts; per
    // continuation get_job and get_plan_part; one GetItem per STATUS_CHECK_EVERY batches (the
    // cancel check). Nothing per batch or per task: batch records are written by the executor.
    for (name, n_tasks, batches, parts) in [
        ("100-byte keys, 1 part", tasks, planned.bodies, 1),
        ("the generated file, 1 part", data.rows, file.bodies, 1),
        (
            "the generated file split into 50 inventory data files",
            data.rows,
            file.bodies,
            50,
        ),
    ] {
        let continuations = continuations_needed(n_tasks, parts, file_rate);
        let store = StoreCalls::planning(parts, continuations, batches);
        let writes = store.writes as f64 * 1000.0 / n_tasks as f64;
        let reads = store.reads as f64 * 1000.0 / n_tasks as f64;
        println!(
            "{name}: {n_tasks} tasks, {batches} batches, {continuations} continuations -> {} DynamoDB writes = {writes:.4} per 1,000 tasks (goal <= 1: {}); {} reads = {reads:.4} per 1,000 tasks",
            store.writes,
            verdict(writes <= 1.0),
            store.reads
        );
    }
    // An artificial worst case: BATCHOPS_PLANNER_BUDGET_MS=0 (as tests/continuation.rs does)
    // stops every run after one batch.
    let forced = StoreCalls::planning(1, planned.bodies - 1, planned.bodies);
    println!(
        "artificial worst case, a continuation after every batch (BATCHOPS_PLANNER_BUDGET_MS=0), 100-byte keys: {} writes = {:.4} per 1,000 tasks",
        forced.writes,
        forced.writes as f64 * 1000.0 / tasks as f64
    );
    println!(
        "(writes: {WRITES_PER_JOB} per job + {WRITES_PER_PART} per plan part + {WRITES_PER_CONTINUATION} per continuation + 1 per {} batches of a part (reservations); +2 for a job that awaits confirmation: set_total_tasks and the move to Suspended. A continuation happens once per {} s of planning per part, i.e. every {:.0} million tasks at the rate measured above.)",
        batchops::planner::RESERVE_WINDOW,
        PLANNING_SECONDS_PER_INVOCATION,
        file_rate * PLANNING_SECONDS_PER_INVOCATION as f64 / 1e6
    );
    Ok(())
}
