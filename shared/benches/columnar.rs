//! Parse-to-tasks throughput of S3 Inventory data files in Apache Parquet and Apache ORC (issue 3).
//!
//! Run with `cargo bench -p batchops --bench columnar`. It writes a BENCH_ROWS-row (default
//! 5,000,000) inventory data file in each format with the Rust writers, in S3 Inventory's schema
//! (bucket, key, size, last_modified_date, e_tag, storage_class; keys of 50-200 bytes, the same
//! shapes as the CSV planner benchmark), caches them under `target/bench-data/`, then times:
//! - spool: copying the file to a temporary file while computing its MD5 (what the planner does
//!   with the S3 body before reading), and
//! - parse: reading the file into tasks (projection to bucket/key, record batches), counted by
//!   a consumer that drops them.
//!
//!
//! Then it measures the peak resident memory (VmHWM) of planning one data file, in a fresh process
//! per format and size: the binary re-executes itself as `columnar --child-memory FORMAT FILE MD5`,
//! which spools the file (copy + MD5 check, `columnar::spool`), parses it into tasks on one thread
//! and packs them on another with `BatchPacker` and `to_body()`, as the planner does, then prints
//! VmHWM. It does so at BENCH_ROWS and at BENCH_MEMORY_ROWS_LARGE rows (default 20,000,000) to show
//! that memory does not grow with the file. Goal (issue 3): under 100 MiB, flat.
//!
//! Environment: `BENCH_ROWS`, `BENCH_REPEAT` (timed runs, best taken, and runs of each memory
//! child; default 2), `BENCH_DATA_DIR`,
//! `BENCH_MEMORY_ROWS_LARGE`, `BENCH_SKIP_MEMORY=1` to skip the memory children,
//! `BENCH_SKIP_THROUGHPUT=1` to run only them.

mod common;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use batchops::manifest::columnar::{parse_columnar, spool, ColumnarFormat};
use batchops::manifest::{Task, CHUNK_TASKS};
use batchops::plan::{BatchPacker, TaskBatch, MAX_MESSAGE_BYTES};
use md5::{Digest, Md5};

use common::*;

/// Changing the generator must change this, so that a stale cached file is not reused.
const DATA_VERSION: u32 = 1;
const WRITE_BATCH_ROWS: usize = 65_536;
/// The goal for the planner's peak resident memory.
const GOAL_MIB: f64 = 100.0;
/// How much more the larger file may take and still count as "not growing".
const FLAT_MIB: f64 = 4.0;

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
    println!("batchops columnar inventory benchmark ({build}; {rows} rows; best of {repeat} runs)");
    println!(
        "machine: {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();

    let dir = data_dir();
    fs::create_dir_all(&dir)?;
    if std::env::var("BENCH_SKIP_THROUGHPUT").as_deref() != Ok("1") {
        throughput(&dir, rows, repeat)?;
    }
    if std::env::var("BENCH_SKIP_MEMORY").as_deref() == Ok("1") {
        println!("\npeak resident memory: skipped (BENCH_SKIP_MEMORY=1)");
    } else {
        let large = env_u64("BENCH_MEMORY_ROWS_LARGE", 20_000_000);
        memory(&dir, rows, large, repeat)?;
    }
    Ok(())
}

fn throughput(dir: &Path, rows: u64, repeat: usize) -> BenchResult<()> {
    let mut results = Vec::new();
    for (format, codec) in [
        (ColumnarFormat::Parquet, "SNAPPY"),
        (ColumnarFormat::Orc, "ZLIB"),
    ] {
        let path = data_file(dir, format, rows)?;
        let bytes = fs::metadata(&path)?.len();
        let (spool_time, ()) = best_of(repeat, || {
            let mut file = File::open(&path)?;
            let spooled = spool(&mut file, &std::env::temp_dir(), format, "bench", None)?;
            black_box(spooled.bytes);
            Ok(())
        })?;
        let mut tasks = 0;
        let (parse_time, ()) = best_of(repeat, || {
            let mut count = 0u64;
            let mut key_bytes = 0usize;
            tasks = parse_columnar(format, File::open(&path)?, "bench", |task| {
                count += 1;
                key_bytes += task.key.len();
                black_box(task);
                true
            })?;
            assert_eq!(count, rows, "every row is a task");
            black_box(key_bytes);
            Ok(())
        })?;
        results.push((format, codec, bytes, tasks, spool_time, parse_time));
    }

    println!();
    println!(
        "{:<8} {:<7} {:>10} {:>11} {:>12} {:>12} {:>14} {:>12}",
        "format", "codec", "file MiB", "tasks", "spool s", "parse s", "parse rows/s", "parse MiB/s"
    );
    for (format, codec, bytes, tasks, spool_time, parse_time) in &results {
        let secs = parse_time.as_secs_f64();
        println!(
            "{:<8} {:<7} {:>10.1} {:>11} {:>12.2} {:>12.2} {:>14.0} {:>12.1}",
            format.name(),
            codec,
            *bytes as f64 / MIB,
            tasks,
            spool_time.as_secs_f64(),
            secs,
            *tasks as f64 / secs,
            *bytes as f64 / MIB / secs
        );
    }
    println!();
    println!(
        "spool = copy to a temporary file with MD5 (from local disk here; from S3 in the planner)"
    );
    println!("parse = read bucket/key/version_id/is_delete_marker in 8192-row batches into tasks");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Peak resident memory
// ---------------------------------------------------------------------------------------------

/// What one memory child reports.
struct ChildReport {
    hwm_kib: u64,
    tasks: u64,
    bodies: u64,
    spool: Duration,
    plan: Duration,
}

/// Peak memory varies by a few MiB from run to run (thread timing decides how full the channel
/// is and what the allocator keeps): each child runs `repeat` times, and the table gives the
/// lowest and highest peak.
fn memory(dir: &Path, rows: u64, large: u64, repeat: usize) -> BenchResult<()> {
    println!();
    println!("== Peak resident memory (VmHWM of a fresh process per format and size)");
    println!("child: spool (copy + MD5 check) then parse on one thread, BatchPacker + to_body() on another");
    let exe = std::env::current_exe()?;
    let baseline = run_child(&exe, None, Path::new("-"), "-")?;
    println!(
        "process before planning: {:.1} MiB",
        baseline.hwm_kib as f64 / 1024.0
    );
    let mut sizes = vec![rows];
    if large != rows {
        sizes.push(large);
    }
    let mut lines = Vec::new();
    for format in [ColumnarFormat::Parquet, ColumnarFormat::Orc] {
        for &n in &sizes {
            let path = data_file(dir, format, n)?;
            let md5 = data_md5(&path)?;
            let layout = layout(format, &path)?;
            let mut runs = Vec::new();
            for _ in 0..repeat {
                let report = run_child(&exe, Some(format), &path, &md5)?;
                if report.tasks != n {
                    return Err(
                        format!("{format}: planned {} tasks from {n} rows", report.tasks).into(),
                    );
                }
                println!(
                    "{format} {n} rows: peak {:.1} MiB ({} bodies; spool {:.1} s, plan {:.1} s)",
                    report.hwm_kib as f64 / 1024.0,
                    report.bodies,
                    report.spool.as_secs_f64(),
                    report.plan.as_secs_f64()
                );
                runs.push(report);
            }
            let low = runs.iter().map(|r| r.hwm_kib).min().unwrap_or(0);
            let high = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
            let fastest = runs
                .into_iter()
                .min_by_key(|r| r.spool + r.plan)
                .ok_or("no memory runs")?;
            let bytes = fs::metadata(&path)?.len();
            lines.push((format, n, bytes, layout, fastest, low, high));
        }
    }

    println!();
    println!(
        "{:<8} {:>11} {:>9} {:>22} {:>8} {:>8} {:>12} {:>16}  goal (< {GOAL_MIB:.0} MiB, flat)",
        "format",
        "rows",
        "file MiB",
        "row groups/stripes",
        "spool s",
        "plan s",
        "plan rows/s",
        "peak MiB min-max"
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (format, n, bytes, layout, report, low, high) in &lines {
        // Growth compares the lowest peaks: the best estimate of what each size needs.
        let smallest = lines
            .iter()
            .filter(|l| l.0 == *format)
            .map(|l| l.5)
            .min()
            .unwrap_or(*low);
        let growth = mib(*low) - mib(smallest);
        let met = mib(*high) < GOAL_MIB && growth < FLAT_MIB;
        println!(
            "{:<8} {:>11} {:>9.1} {:>22} {:>8.2} {:>8.2} {:>12.0} {:>16}  {} ({:+.1} MiB vs smallest)",
            format.name(),
            n,
            *bytes as f64 / MIB,
            layout,
            report.spool.as_secs_f64(),
            report.plan.as_secs_f64(),
            *n as f64 / report.plan.as_secs_f64(),
            format!("{:.1}-{:.1}", mib(*low), mib(*high)),
            verdict(met),
            growth
        );
    }
    println!(
        "plan = parse + pack + to_body after the spool; the file is read from the page cache here"
    );
    Ok(())
}

/// "N x M rows": the file's row groups (Parquet) or stripes (ORC) and the rows of the first.
fn layout(format: ColumnarFormat, path: &Path) -> BenchResult<String> {
    let groups: Vec<u64> = match format {
        ColumnarFormat::Parquet => {
            use parquet::file::reader::FileReader;
            let reader =
                parquet::file::serialized_reader::SerializedFileReader::new(File::open(path)?)?;
            reader
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows() as u64)
                .collect()
        }
        ColumnarFormat::Orc => {
            let builder = orc_rust::ArrowReaderBuilder::try_new(File::open(path)?)?;
            builder
                .file_metadata()
                .stripe_metadatas()
                .iter()
                .map(|s| s.number_of_rows())
                .collect()
        }
    };
    Ok(format!(
        "{} x {} rows",
        groups.len(),
        groups.first().copied().unwrap_or(0)
    ))
}

fn run_child(
    exe: &Path,
    format: Option<ColumnarFormat>,
    path: &Path,
    md5: &str,
) -> BenchResult<ChildReport> {
    let output = Command::new(exe)
        .arg("--child-memory")
        .arg(format.map_or("none", ColumnarFormat::name))
        .arg(path)
        .arg(md5)
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("memory child failed: {}", output.status).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [hwm_kib, tasks, bodies, spool, plan] = fields[..] else {
        return Err(format!("memory child printed {text:?}").into());
    };
    Ok(ChildReport {
        hwm_kib: hwm_kib.parse()?,
        tasks: tasks.parse()?,
        bodies: bodies.parse()?,
        spool: Duration::from_secs_f64(spool.parse()?),
        plan: Duration::from_secs_f64(plan.parse()?),
    })
}

/// In the child: plan one data file as the planner does, then print VmHWM (KiB), tasks, bodies
/// and the spool and plan seconds.
fn child_memory(args: &[String]) -> BenchResult<()> {
    let [format, path, md5] = args else {
        return Err("usage: --child-memory Parquet|ORC|none FILE MD5".into());
    };
    let format = match format.as_str() {
        "none" => None,
        name => Some(
            ColumnarFormat::from_file_format(name)
                .ok_or_else(|| format!("unknown format {name}"))?,
        ),
    };
    let (mut tasks, mut bodies, mut spool_time, mut plan_time) = (0, 0, 0.0, 0.0);
    if let Some(format) = format {
        let report = plan_file(format, Path::new(path), md5)?;
        tasks = report.tasks;
        bodies = report.bodies;
        spool_time = report.spool.as_secs_f64();
        plan_time = report.plan.as_secs_f64();
    }
    println!(
        "{} {tasks} {bodies} {spool_time} {plan_time}",
        vm_hwm_kib()?
    );
    Ok(())
}

/// As the planner runs it (manifest::columnar::read_inventory_file and planner.rs): the spool
/// and the parser on one thread send chunks of CHUNK_TASKS tasks through a bounded channel to the
/// packer, which keeps up to SEND_CONCURRENCY bodies in flight.
fn plan_file(format: ColumnarFormat, path: &Path, md5: &str) -> BenchResult<ChildReport> {
    let (tx, rx) = mpsc::sync_channel::<Vec<Task>>(CHANNEL_CHUNKS);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || -> BenchResult<(u64, Duration)> {
            let mut file = File::open(path)?;
            let spooled = spool(
                &mut file,
                &std::env::temp_dir(),
                format,
                "bench file",
                Some(md5),
            )?;
            let spooled_in = started.elapsed();
            let mut chunk = Vec::with_capacity(CHUNK_TASKS);
            let rows = parse_columnar(
                format,
                spooled.reader("bench file")?,
                "bench file",
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
            Ok((rows, spooled_in))
        });
        let mut packer = BatchPacker::new(JOB_ID, BATCH_PREFIX, MAX_MESSAGE_BYTES);
        let mut in_flight = VecDeque::with_capacity(SEND_CONCURRENCY);
        let (mut tasks, mut bodies) = (0u64, 0u64);
        let mut send = |batch: &TaskBatch| {
            tasks += batch.tasks.len() as u64;
            bodies += 1;
            if in_flight.len() >= SEND_CONCURRENCY {
                black_box(in_flight.pop_front());
            }
            in_flight.push_back(batch.to_body());
        };
        for chunk in rx {
            for task in chunk {
                if let Some(batch) = packer.push(task) {
                    send(&batch);
                }
            }
        }
        if let Some(batch) = packer.finish() {
            send(&batch);
        }
        let (rows, spooled_in) = parser.join().map_err(|_| "the parser thread panicked")??;
        if rows != tasks {
            return Err(format!("parser counted {rows} tasks but {tasks} were packed").into());
        }
        Ok(ChildReport {
            hwm_kib: 0,
            tasks,
            bodies,
            spool: spooled_in,
            plan: started.elapsed() - spooled_in,
        })
    })
}

/// The MD5 of a cached data file, kept in a sidecar `FILE.md5` so it is computed once.
fn data_md5(path: &Path) -> BenchResult<String> {
    let sidecar = path.with_extension(format!(
        "{}.md5",
        path.extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
    ));
    if let Ok(text) = fs::read_to_string(&sidecar) {
        let md5 = text.trim();
        if md5.len() == 32 {
            return Ok(md5.to_string());
        }
    }
    let mut file = File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    let hex = hex::encode(md5.finalize());
    fs::write(&sidecar, format!("{hex}\n"))?;
    Ok(hex)
}

/// The cached data file of `rows` rows in `format`, generated if missing.
fn data_file(dir: &Path, format: ColumnarFormat, rows: u64) -> BenchResult<PathBuf> {
    let ext = match format {
        ColumnarFormat::Parquet => "parquet",
        ColumnarFormat::Orc => "orc",
    };
    let path = dir.join(format!("inventory-v{DATA_VERSION}-{rows}.{ext}"));
    if path.exists() {
        println!("{format}: {} (cached)", path.display());
        return Ok(path);
    }
    let start = Instant::now();
    let partial = path.with_extension(format!("{ext}.partial"));
    // A checksum sidecar of an older file of the same name would be stale.
    let _ = fs::remove_file(path.with_extension(format!("{ext}.md5")));
    write_file(&partial, format, rows)?;
    fs::rename(&partial, &path)?;
    println!(
        "{format}: wrote {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(path)
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("bucket", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("size", DataType::Int64, true),
        Field::new(
            "last_modified_date",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("e_tag", DataType::Utf8, true),
        Field::new("storage_class", DataType::Utf8, true),
    ]))
}

fn write_file(path: &Path, format: ColumnarFormat, rows: u64) -> BenchResult<()> {
    let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let schema = schema();
    let mut rows_left = rows;
    let mut generator = RowGenerator::new(0x5eed_ba7c);
    match format {
        ColumnarFormat::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))?;
            while rows_left > 0 {
                let n = rows_left.min(WRITE_BATCH_ROWS as u64) as usize;
                writer.write(&generator.batch(&schema, n)?)?;
                rows_left -= n as u64;
            }
            writer.close()?;
        }
        ColumnarFormat::Orc => {
            let mut writer = orc_rust::ArrowWriterBuilder::new(out, schema.clone())
                .with_compression(orc_rust::compression::CompressionType::Zlib)
                .try_build()?;
            while rows_left > 0 {
                let n = rows_left.min(WRITE_BATCH_ROWS as u64) as usize;
                writer.write(&generator.batch(&schema, n)?)?;
                rows_left -= n as u64;
            }
            writer.close()?;
        }
    }
    Ok(())
}

/// Deterministic, realistic inventory rows: logs, data-lake partitions, photos, documents with
/// spaces and punctuation, backups, some unicode; keys of 50-200 bytes (raw: ORC and Parquet
/// inventories do not URL-encode keys).
struct RowGenerator {
    rng: fastrand::Rng,
    serial: u64,
}

const SERVICES: &[&str] = &["api-gateway", "checkout", "search", "auth", "billing"];
const TABLES: &[&str] = &["events", "page_views", "orders", "sessions", "clicks_raw"];
const WORDS: &[&str] = &[
    "Quarterly report",
    "Invoice",
    "meeting notes",
    "Draft (final)",
    "Budget 2026",
    "Résumé",
    "notes & ideas",
];
const UNICODE: &[&str] = &[
    "音楽/アーティスト/アルバム",
    "документы/отчёты",
    "Müller & Söhne/Überweisungen",
    "été/vacances à Nice",
    "😀 emoji folder",
];
const FILLER: &[&str] = &["archive", "2026", "tmp", "shard-", "export", "v2", "raw"];
const STORAGE_CLASSES: &[&str] = &["STANDARD", "STANDARD", "INTELLIGENT_TIERING", "GLACIER_IR"];

impl RowGenerator {
    fn new(seed: u64) -> Self {
        RowGenerator {
            rng: fastrand::Rng::with_seed(seed),
            serial: 0,
        }
    }

    fn batch(&mut self, schema: &Arc<Schema>, n: usize) -> BenchResult<RecordBatch> {
        let mut keys = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        let mut dates = Vec::with_capacity(n);
        let mut etags = Vec::with_capacity(n);
        let mut classes = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(self.key());
            let rng = &mut self.rng;
            sizes.push(if rng.u8(..) < 20 {
                rng.i64(..1 << 34)
            } else {
                rng.i64(..1 << 22)
            });
            dates.push(1_546_300_800_000 + rng.i64(..250_000_000_000));
            etags.push(format!("{:016x}{:016x}", rng.u64(..), rng.u64(..)));
            classes.push(STORAGE_CLASSES[rng.usize(..STORAGE_CLASSES.len())]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![SOURCE_BUCKET; n])),
            Arc::new(StringArray::from(keys)),
            Arc::new(Int64Array::from(sizes)),
            Arc::new(TimestampMillisecondArray::from(dates)),
            Arc::new(StringArray::from(etags)),
            Arc::new(StringArray::from(classes)),
        ];
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    fn key(&mut self) -> String {
        use std::fmt::Write as _;
        self.serial += 1;
        let n = self.serial;
        let rng = &mut self.rng;
        let target = rng.usize(50..=200);
        let mut key = String::with_capacity(256);
        let (y, mo, d, h) = (
            rng.u32(2019..=2026),
            rng.u32(1..=12),
            rng.u32(1..=28),
            rng.u32(0..24),
        );
        let name = match rng.u32(0..100) {
            0..=29 => {
                let svc = SERVICES[rng.usize(..SERVICES.len())];
                let _ = write!(key, "logs/{svc}/{y}/{mo:02}/{d:02}/{h:02}/");
                format!(
                    "{svc}-i-{:016x}-{y}{mo:02}{d:02}T{h:02}Z.log.gz",
                    rng.u64(..)
                )
            }
            30..=49 => {
                let table = TABLES[rng.usize(..TABLES.len())];
                let _ = write!(key, "warehouse/{table}/dt={y}-{mo:02}-{d:02}/hour={h:02}/");
                format!(
                    "part-{:05}-{:08x}.c000.snappy.parquet",
                    n % 100_000,
                    rng.u32(..)
                )
            }
            50..=69 => {
                let _ = write!(key, "photos/user-{}/{y}/{mo:02}/", rng.u32(..1_000_000));
                format!("IMG_{:04}.JPG", n % 10_000)
            }
            70..=81 => {
                let _ = write!(key, "users/{}/documents/", rng.u32(..1_000_000));
                format!(
                    "{} {n} (v{}).pdf",
                    WORDS[rng.usize(..WORDS.len())],
                    rng.u8(1..9)
                )
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
                let _ = write!(key, "shared/{}/", UNICODE[rng.usize(..UNICODE.len())]);
                format!(
                    "{:02} {} {n}.txt",
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
        key
    }
}
