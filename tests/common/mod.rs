//! Test harness shared by the integration test binaries: one moto server (and, on demand, one
//! `cargo lambda watch`) per test binary, and contexts with fresh, uniquely named resources on it.
//!
//! `BATCHOPS_TEST_ENDPOINT` points the tests at a moto server that is already running; otherwise
//! the first test that needs one starts moto (`moto_server.py` here, which serialises DynamoDB
//! requests as DynamoDB's atomicity requires) on a free loopback port. Child servers stop when
//! the test binary exits: each runs under a small shell that kills it as soon as its stdin (held
//! by this process) closes.
#![allow(dead_code)]

pub mod scripted;
pub mod stack;

use batchops::context::Settings;
use batchops::Context;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);
const LAMBDA_START_TIMEOUT: Duration = Duration::from_secs(60);
/// The first invocation compiles the function; give it time.
const LAMBDA_WARM_UP_TIMEOUT: Duration = Duration::from_secs(900);
/// The function the LambdaInvoke tests call (a binary of the workspace).
pub const TASK_HANDLER: &str = "example-task-handler";

/// A server of this test binary; it stops when `stdin` closes (at the latest when the process
/// exits). An external server has neither.
struct Server {
    url: String,
    _process: Option<(Child, ChildStdin)>,
}

static MOTO: OnceLock<Server> = OnceLock::new();
static LAMBDA: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
static LAMBDA_SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// The workspace root (this file lives in `<root>/tests/common`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The URL of the moto server of this test binary, started on first use.
pub fn moto_endpoint() -> &'static str {
    &MOTO
        .get_or_init(|| {
            set_test_environment();
            match std::env::var("BATCHOPS_TEST_ENDPOINT") {
                Ok(url) if !url.is_empty() => Server::external(url),
                _ => start_moto(),
            }
        })
        .url
}

/// Test credentials and region for anything that reads the environment (SDK defaults, job ARNs,
/// child processes). Set once, before any client exists.
fn set_test_environment() {
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
}

impl Server {
    /// A server somebody else runs: nothing to keep alive.
    fn external(url: String) -> Server {
        Server {
            url,
            _process: None,
        }
    }

    /// Runs `program args...` in its own process group, under a shell that kills the group when
    /// our end of its stdin closes. Output goes to `log`.
    fn spawn(
        program: &str,
        args: &[String],
        url: String,
        envs: &[(&str, String)],
        log: &str,
    ) -> Server {
        // setsid gives the server its own process group, so that killing the group also stops
        // whatever it started (cargo lambda's function processes).
        let script = r#"prog="$1"; shift; if command -v setsid >/dev/null 2>&1; then setsid "$prog" "$@" </dev/null & else "$prog" "$@" </dev/null & fi; pid=$!; cat >/dev/null; kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0"#;
        let log_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(log);
        let log_file = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log_file.try_clone().expect("clone log file");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(program)
            .args(args)
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdin = child.stdin.take().expect("child stdin");
        Server {
            url,
            _process: Some((child, stdin)),
        }
    }
}

/// Starts moto through `moto_server.py` beside this file (DynamoDB requests serialised, see
/// there) with the workspace's `.venv/bin/python`, or `BATCHOPS_TEST_PYTHON`.
fn start_moto() -> Server {
    let python = std::env::var("BATCHOPS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run `make test`, which installs moto into .venv, or set BATCHOPS_TEST_ENDPOINT",
        python.display()
    );
    let script = workspace_root().join("tests/common/moto_server.py");
    let port = free_port();
    let server = Server::spawn(
        &python.to_string_lossy(),
        &[
            script.to_string_lossy().into_owned(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
        format!("http://127.0.0.1:{port}"),
        &[],
        &format!("moto-{port}.log"),
    );
    wait_for_port(port, MOTO_START_TIMEOUT, "moto server");
    server
}

/// A loopback port that is free now (the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < timeout,
            "{what} did not listen on port {port} within {}s",
            timeout.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SDK configuration for the moto server: fixed test credentials, us-east-1.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_config_on(moto_endpoint()).await
}

/// Test credentials and region for every client, all sent to `url` (moto, or a scripted
/// endpoint).
pub async fn sdk_config_on(url: &str) -> aws_config::SdkConfig {
    sdk_config_as(url, "testing", "testing").await
}

/// Like [`sdk_config_on`], signing with the access key `key` and its `secret` (an IAM user's, on
/// a server that enforces IAM).
pub async fn sdk_config_as(url: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(batchops::context::https_client())
        .endpoint_url(url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key, secret, None, None, "tests",
        ))
        .load()
        .await
}

/// A short random suffix that makes resource names unique per test (lowercase, bucket-safe).
/// The requests the run's moto server received whose line (`METHOD host/path?query`, as
/// `moto_server.py` writes each down) contains `text`, in order: what reached the server.
pub fn server_requests(text: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let address = moto_endpoint().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).expect("connect to moto server");
    let text = percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC);
    write!(
        stream,
        "GET /_batchops/requests?contains={text} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("ask moto server for its requests");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("read moto server's requests");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "moto server keeps no request log (tests/common/moto_server.py does): {head}"
    );
    body.lines().map(String::from).collect()
}

pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Settings for tests: the given resource names, small retry delays.
pub fn test_settings(
    table: String,
    plan_queue_url: String,
    task_queue_url: String,
    report_queue_url: String,
    system_bucket: String,
) -> Settings {
    Settings {
        table,
        plan_queue_url,
        task_queue_url,
        report_queue_url,
        system_bucket,
        executor_concurrency: 8,
        lambda_max_attempts: 5,
        lambda_retry_base: Duration::from_millis(20),
        max_message_bytes: batchops::plan::MAX_MESSAGE_BYTES,
        report_read_concurrency: 16,
        ..Settings::default()
    }
}

/// A context on the moto server with its own new table, queues and system bucket: the stack
/// fixture's, with the settings of [`test_settings`].
pub async fn test_context() -> Context {
    stack::stack_with(false, |settings| {
        settings.executor_concurrency = 8;
        settings.lambda_max_attempts = 5;
        settings.report_read_concurrency = 16;
    })
    .await
    .ctx
}

pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"))
        .queue_url
        .expect("queue URL")
}

/// Up to ten messages waiting on a queue, received but not deleted.
pub async fn receive(ctx: &Context, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    ctx.sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive messages")
        .messages
        .unwrap_or_default()
}

/// Deletes a message that `receive` returned.
pub async fn delete(ctx: &Context, queue_url: &str, message: &aws_sdk_sqs::types::Message) {
    if let Some(handle) = message.receipt_handle() {
        ctx.sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .expect("delete message");
    }
}

/// Makes a received message visible again at once, as a failed Lambda invocation would (after
/// its visibility timeout).
pub async fn release(ctx: &Context, queue_url: &str, message: &aws_sdk_sqs::types::Message) {
    if let Some(handle) = message.receipt_handle() {
        ctx.sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
            .expect("release message");
    }
}

/// A received message as the one-record SQS event that Lambda would deliver to a handler.
pub fn sqs_event(message: &aws_sdk_sqs::types::Message) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "eventSource": "aws:sqs",
        "messageId": message.message_id,
        "body": message.body,
    }]})
}

/// Every message body waiting on a queue (received and deleted).
pub async fn drain_queue(ctx: &Context, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let messages = receive(ctx, queue_url).await;
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            delete(ctx, queue_url, &message).await;
            bodies.extend(message.body);
        }
    }
}

/// Creates a bucket on the emulator.
pub async fn create_bucket(ctx: &Context, bucket: &str) {
    ctx.s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
}

/// The Lambda Invoke endpoint of `cargo lambda watch` serving the workspace's functions:
/// `BATCHOPS_TEST_LAMBDA_ENDPOINT`, or one started on first use and shared by the test binary. Functions reach S3 on the moto server. The first
/// call also invokes the example task handler once, so that its compilation happens here and not
/// inside a test's timing.
pub async fn lambda_endpoint() -> String {
    LAMBDA
        .get_or_init(|| async {
            // `make test` starts one `cargo lambda watch` for every test binary.
            let url = match std::env::var("BATCHOPS_TEST_LAMBDA_ENDPOINT") {
                Ok(url) if !url.is_empty() => url,
                _ => start_lambda_watch(),
            };
            warm_up(&url).await;
            url
        })
        .await
        .clone()
}

fn start_lambda_watch() -> String {
    let moto = moto_endpoint().to_string();
    let program = std::env::var("BATCHOPS_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/cargo-lambda"));
    assert!(
        program.exists(),
        "cargo-lambda not found at {} (run `make test`, which installs it, or set BATCHOPS_CARGO_LAMBDA)",
        program.display()
    );
    let port = free_port();
    let env_vars = format!(
        "AWS_ENDPOINT_URL={moto},AWS_ACCESS_KEY_ID=testing,AWS_SECRET_ACCESS_KEY=testing,AWS_REGION={REGION}"
    );
    let args: Vec<String> = [
        "lambda",
        "watch",
        "--ignore-changes",
        "--quiet",
        "--invoke-address",
        "127.0.0.1",
        "--invoke-port",
        &port.to_string(),
        "--env-vars",
        &env_vars,
        // As scripts/lambda-watch.sh: more instances drain its queue sooner (cargo-lambda 1.9.2
        // deadlocks once 100 invokes wait for one function).
        "--concurrency",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Runs from the workspace root, so it serves every function binary of the workspace.
    let server = Server::spawn(
        &program.to_string_lossy(),
        &args,
        format!("http://127.0.0.1:{port}"),
        &[
            ("AWS_ENDPOINT_URL", moto),
            // Its own target dir: cargo lambda builds with other settings than `cargo test`, and a
            // shared one would rebuild the whole dependency tree each time either of them runs.
            (
                "CARGO_TARGET_DIR",
                workspace_root()
                    .join("target/lambda-watch")
                    .display()
                    .to_string(),
            ),
        ],
        &format!("cargo-lambda-{port}.log"),
    );
    wait_for_port(port, LAMBDA_START_TIMEOUT, "cargo lambda watch");
    let url = server.url.clone();
    *LAMBDA_SERVER.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
    url
}

async fn warm_up(url: &str) {
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .endpoint_url(url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let invoke = lambda
        .invoke()
        .function_name(TASK_HANDLER)
        .payload(aws_sdk_lambda::primitives::Blob::new(b"{}".to_vec()))
        .send();
    // Any answer (even a function error for this empty event) means the function is built.
    let _ = tokio::time::timeout(LAMBDA_WARM_UP_TIMEOUT, invoke).await;
}

/// PutObject with the test's client; the caller picks what it needs (ETag, version id) from the
/// output.
pub async fn put_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    body: impl Into<aws_sdk_s3::primitives::ByteStream>,
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    ctx.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject s3://{bucket}/{key}: {e:?}"))
}

/// An ETag as manifests give it, without S3's quotes.
pub fn unquoted_etag(out: &aws_sdk_s3::operation::put_object::PutObjectOutput) -> String {
    out.e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// One gzip member, as S3 Inventory writes its CSV data files.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Hex MD5, as an inventory manifest.json gives each data file's `MD5checksum`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(bytes))
}
