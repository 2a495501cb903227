//! An example user function for S3 Batch Operations' `LambdaInvoke`: for every task it reads the
//! object and answers its SHA-256 (lowercase hex) as `resultString`. Schema 1.0 and 2.0 are both
//! understood, and the answer carries the request's `invocationSchemaVersion` and `invocationId`.
//!
//! Outcomes: object read → `Succeeded`; `NoSuchKey`, `NoSuchVersion` or `NoSuchBucket` →
//! `PermanentFailure` with S3's message; any other error → `TemporaryFailure` (S3 Batch Operations
//! retries those).
//!
//! # Test knobs
//!
//! So that tests can drive every path of the caller's contract handling, the function misbehaves on
//! request:
//!
//! | behaviour          | schema 2.0 `userArguments.simulate` | object key prefix (1.0 and 2.0) |
//! |--------------------|--------------------------------------|---------------------------------|
//! | `temporary-once`   | `"temporary-once"`                   | `simulate-temporary-once/`      |
//! | `malformed`        | `"malformed"`                        | `simulate-malformed/`           |
//! | `function-error`   | `"function-error"`                   | `simulate-function-error/`      |
//! | `omit-results`     | `"omit-results"`                     | `simulate-omit-results/`        |
//! | `panic`            | `"panic"`                            | `simulate-panic/`               |
//!
//! - `temporary-once`: the first time this process sees a given (bucket, key) it answers
//!   `TemporaryFailure`; later invocations for the same object are handled normally.
//! - `malformed`: answers `{"hello":"world"}`, which breaks the contract.
//! - `function-error`: the handler returns an error, so Lambda reports a function error.
//! - `omit-results`: answers with an empty `results` and no `treatMissingKeysAs`, so the task falls
//!   back to the default `PermanentFailure`.
//! - `panic`: the handler panics, an unhandled error: `lambda_runtime` catches the panic, reports it
//!   to the Runtime API as `Lambda panicked: ...` and goes on serving the next invocations.
//!
//! An unknown `simulate` value is a function error, so that a typo in a test cannot pass silently.
//!
//! Two more schema 2.0 `userArguments` serve tests of slow functions:
//! - `sleepMs`: the invocation waits this many milliseconds before answering (a slow function);
//! - `recordTo`: `"bucket/prefix"`; each invocation writes `prefix/<invocationId>` holding the
//!   tasks' keys, one per line, so a test can count how often each task was invoked.

use batchops::invocation::{
    InvocationRequest, InvocationResponse, InvocationTask, ResultCode, TaskResult,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The object (or its version, or its bucket) does not exist: retrying will not help.
    Missing(String),
    /// Anything else: worth another try.
    Other(String),
}

/// Reads objects; the real one is S3, tests use a map.
pub trait ObjectStore {
    /// The SHA-256 of the object's content, lowercase hex.
    fn sha256(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<String, ReadError>> + Send;

    /// Writes a small object (the `recordTo` knob).
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The error that makes Lambda report a function error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    pub kind: &'static str,
    pub message: String,
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind.to_string(),
            error_message: err.message,
        }
    }
}

/// A misbehaviour asked for by a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulation {
    TemporaryOnce,
    Malformed,
    FunctionError,
    OmitResults,
    Panic,
}

impl Simulation {
    const ALL: [Simulation; 5] = [
        Simulation::TemporaryOnce,
        Simulation::Malformed,
        Simulation::FunctionError,
        Simulation::OmitResults,
        Simulation::Panic,
    ];

    fn name(self) -> &'static str {
        match self {
            Simulation::TemporaryOnce => "temporary-once",
            Simulation::Malformed => "malformed",
            Simulation::FunctionError => "function-error",
            Simulation::OmitResults => "omit-results",
            Simulation::Panic => "panic",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `simulate-<name>/...` keys trigger the behaviour in either schema.
    fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| key.starts_with(&format!("simulate-{}/", s.name())))
    }
}

/// The function: one per process, so `temporary-once` remembers what it has seen.
pub struct Handler<S> {
    store: S,
    seen: Mutex<HashSet<(String, String)>>,
}

impl<S: ObjectStore> Handler<S> {
    pub fn new(store: S) -> Self {
        Handler {
            store,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Handles one invocation event.
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        let request: InvocationRequest =
            serde_json::from_value(event).map_err(|e| HandlerError {
                kind: "InvalidEvent",
                message: format!("the event is not an S3 Batch Operations invocation: {e}"),
            })?;
        let job_simulation = self.job_simulation(&request)?;
        self.slow_down_and_record(&request).await?;
        let task_simulations: Vec<Option<Simulation>> = request
            .tasks
            .iter()
            .map(|task| job_simulation.or_else(|| Simulation::from_key(&task.key())))
            .collect();
        if task_simulations.contains(&Some(Simulation::Panic)) {
            // Deliberate: the one way to make the runtime report an unhandled error, which is the
            // path the caller's `FunctionError: Unhandled` handling needs exercised.
            panic!("panic requested by the test knob `panic`");
        }
        if task_simulations.contains(&Some(Simulation::FunctionError)) {
            return Err(HandlerError {
                kind: "SimulatedFunctionError",
                message: "function error requested by the test knob `function-error`".into(),
            });
        }
        if task_simulations.contains(&Some(Simulation::Malformed)) {
            return Ok(json!({"hello": "world"}));
        }
        let omit = task_simulations.contains(&Some(Simulation::OmitResults));
        let mut results = Vec::with_capacity(request.tasks.len());
        if !omit {
            for (task, simulation) in request.tasks.iter().zip(task_simulations) {
                results.push(self.run_task(task, simulation).await);
            }
        }
        let response = InvocationResponse {
            invocation_schema_version: request.invocation_schema_version,
            treat_missing_keys_as: (!omit).then_some(ResultCode::PermanentFailure),
            invocation_id: request.invocation_id,
            results,
        };
        serde_json::to_value(response).map_err(|e| HandlerError {
            kind: "InternalError",
            message: format!("cannot encode the response: {e}"),
        })
    }

    /// The `sleepMs` and `recordTo` knobs.
    async fn slow_down_and_record(&self, request: &InvocationRequest) -> Result<(), HandlerError> {
        let args = request.job.user_arguments.as_ref();
        let knob_error = |message: String| HandlerError {
            kind: "InvalidUserArguments",
            message,
        };
        if let Some(ms) = args.and_then(|a| a.get("sleepMs")) {
            let ms: u64 = ms
                .parse()
                .map_err(|_| knob_error(format!("userArguments.sleepMs {ms:?} is not a number")))?;
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some(target) = args.and_then(|a| a.get("recordTo")) {
            let (bucket, prefix) = target.split_once('/').ok_or_else(|| {
                knob_error(format!(
                    "userArguments.recordTo {target:?} is not bucket/prefix"
                ))
            })?;
            let keys: Vec<String> = request.tasks.iter().map(|t| t.key()).collect();
            let key = format!("{prefix}/{}", request.invocation_id);
            self.store
                .put(bucket, &key, keys.join("\n"))
                .await
                .map_err(|message| HandlerError {
                    kind: "RecordFailed",
                    message,
                })?;
        }
        Ok(())
    }

    fn job_simulation(
        &self,
        request: &InvocationRequest,
    ) -> Result<Option<Simulation>, HandlerError> {
        let Some(name) = request
            .job
            .user_arguments
            .as_ref()
            .and_then(|args| args.get("simulate"))
        else {
            return Ok(None);
        };
        Simulation::parse(name)
            .map(Some)
            .ok_or_else(|| HandlerError {
                kind: "InvalidUserArguments",
                message: format!(
                    "userArguments.simulate {name:?} is not one of {}",
                    Simulation::ALL.map(Simulation::name).join(", ")
                ),
            })
    }

    async fn run_task(&self, task: &InvocationTask, simulation: Option<Simulation>) -> TaskResult {
        let key = task.key();
        let Some(bucket) = task.bucket() else {
            return TaskResult::new(
                &task.task_id,
                ResultCode::PermanentFailure,
                "the task names no bucket (s3Bucket or s3BucketArn)",
            );
        };
        if simulation == Some(Simulation::TemporaryOnce) && self.first_sight(&bucket, &key) {
            return TaskResult::new(
                &task.task_id,
                ResultCode::TemporaryFailure,
                "temporary failure requested by the test knob `temporary-once`",
            );
        }
        match self
            .store
            .sha256(&bucket, &key, task.s3_version_id.as_deref())
            .await
        {
            Ok(digest) => TaskResult::new(&task.task_id, ResultCode::Succeeded, digest),
            Err(ReadError::Missing(message)) => {
                TaskResult::new(&task.task_id, ResultCode::PermanentFailure, message)
            }
            Err(ReadError::Other(message)) => {
                tracing::warn!(%bucket, %key, %message, "object read failed; answering TemporaryFailure");
                TaskResult::new(&task.task_id, ResultCode::TemporaryFailure, message)
            }
        }
    }

    /// True the first time this process sees the object.
    fn first_sight(&self, bucket: &str, key: &str) -> bool {
        // A poisoned lock only means another invocation panicked mid-insert; the set is still usable.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.insert((bucket.to_string(), key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use batchops::invocation::encode_s3_key;
    use std::collections::HashMap;
    use std::sync::Arc;

    struct MapStore(HashMap<(String, String), Result<String, ReadError>>);

    impl ObjectStore for MapStore {
        async fn sha256(
            &self,
            bucket: &str,
            key: &str,
            _version_id: Option<&str>,
        ) -> Result<String, ReadError> {
            self.0
                .get(&(bucket.to_string(), key.to_string()))
                .cloned()
                .unwrap_or_else(|| Err(ReadError::Missing(format!("NoSuchKey: {key}"))))
        }

        async fn put(&self, _bucket: &str, _key: &str, _body: String) -> Result<(), String> {
            Ok(())
        }
    }

    fn handler() -> Handler<MapStore> {
        let mut objects = HashMap::new();
        for key in [
            "a b.txt",
            "simulate-temporary-once/x",
            "simulate-omit-results/x",
        ] {
            objects.insert(
                ("bkt".to_string(), key.to_string()),
                Ok(format!("sha-of-{key}")),
            );
        }
        objects.insert(
            ("bkt".to_string(), "flaky".to_string()),
            Err(ReadError::Other(
                "SlowDown: reduce your request rate".into(),
            )),
        );
        Handler::new(MapStore(objects))
    }

    fn event_1_0(key: &str) -> Value {
        json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "inv-1",
            "job": {"id": "job-1"},
            "tasks": [{"taskId": "t1", "s3Key": encode_s3_key(key), "s3VersionId": null,
                       "s3BucketArn": "arn:aws:s3:::bkt"}]
        })
    }

    fn event_2_0(key: &str, simulate: Option<&str>) -> Value {
        let mut job = json!({"id": "job-1"});
        if let Some(s) = simulate {
            job["userArguments"] = json!({"simulate": s});
        }
        json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-2",
            "job": job,
            "tasks": [{"taskId": "t1", "s3Key": encode_s3_key(key), "s3VersionId": null, "s3Bucket": "bkt"}]
        })
    }

    async fn answer(h: &Handler<MapStore>, event: Value) -> InvocationResponse {
        serde_json::from_value(h.handle(event).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn schema_1_0_answers_the_sha256_with_the_requests_ids() {
        let r = answer(&handler(), event_1_0("a b.txt")).await;
        assert_eq!(r.invocation_schema_version.as_str(), "1.0");
        assert_eq!(r.invocation_id, "inv-1");
        assert_eq!(r.treat_missing_keys_as, Some(ResultCode::PermanentFailure));
        assert_eq!(
            r.results,
            vec![TaskResult::new(
                "t1",
                ResultCode::Succeeded,
                "sha-of-a b.txt"
            )]
        );
    }

    #[tokio::test]
    async fn schema_2_0_answers_the_sha256_with_the_requests_ids() {
        let r = answer(&handler(), event_2_0("a b.txt", None)).await;
        assert_eq!(r.invocation_schema_version.as_str(), "2.0");
        assert_eq!(r.invocation_id, "inv-2");
        assert_eq!(
            r.results,
            vec![TaskResult::new(
                "t1",
                ResultCode::Succeeded,
                "sha-of-a b.txt"
            )]
        );
    }

    #[tokio::test]
    async fn a_missing_object_is_a_permanent_failure() {
        let r = answer(&handler(), event_2_0("nope", None)).await;
        assert_eq!(r.results[0].result_code, ResultCode::PermanentFailure);
        assert_eq!(
            r.results[0].result_string.as_deref(),
            Some("NoSuchKey: nope")
        );
    }

    #[tokio::test]
    async fn other_read_errors_are_temporary_failures() {
        let r = answer(&handler(), event_1_0("flaky")).await;
        assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
    }

    #[tokio::test]
    async fn temporary_once_fails_the_first_time_only_by_user_argument() {
        let h = handler();
        let first = answer(&h, event_2_0("a b.txt", Some("temporary-once"))).await;
        assert_eq!(first.results[0].result_code, ResultCode::TemporaryFailure);
        let second = answer(&h, event_2_0("a b.txt", Some("temporary-once"))).await;
        assert_eq!(second.results[0].result_code, ResultCode::Succeeded);
    }

    #[tokio::test]
    async fn temporary_once_fails_the_first_time_only_by_key_prefix() {
        let h = handler();
        let first = answer(&h, event_1_0("simulate-temporary-once/x")).await;
        assert_eq!(first.results[0].result_code, ResultCode::TemporaryFailure);
        let second = answer(&h, event_1_0("simulate-temporary-once/x")).await;
        assert_eq!(
            second.results[0],
            TaskResult::new(
                "t1",
                ResultCode::Succeeded,
                "sha-of-simulate-temporary-once/x"
            )
        );
    }

    #[tokio::test]
    async fn malformed_answers_json_that_breaks_the_contract() {
        let h = handler();
        for event in [
            event_2_0("a b.txt", Some("malformed")),
            event_1_0("simulate-malformed/x"),
        ] {
            assert_eq!(h.handle(event).await.unwrap(), json!({"hello": "world"}));
        }
    }

    #[tokio::test]
    async fn function_error_returns_an_error() {
        let h = handler();
        for event in [
            event_2_0("a b.txt", Some("function-error")),
            event_1_0("simulate-function-error/x"),
        ] {
            let err = h.handle(event).await.unwrap_err();
            assert_eq!(err.kind, "SimulatedFunctionError");
        }
    }

    #[tokio::test]
    async fn omit_results_leaves_the_task_out_without_treat_missing_keys_as() {
        let h = handler();
        for event in [
            event_2_0("a b.txt", Some("omit-results")),
            event_1_0("simulate-omit-results/x"),
        ] {
            let raw = h.handle(event).await.unwrap();
            assert!(raw.get("treatMissingKeysAs").is_none(), "{raw}");
            assert_eq!(raw["results"], json!([]));
        }
    }

    #[tokio::test]
    async fn an_unknown_simulate_value_is_a_function_error() {
        let err = handler()
            .handle(event_2_0("a b.txt", Some("explode")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "InvalidUserArguments");
        assert!(err.message.contains("explode"));
        assert!(
            err.message
                .ends_with("temporary-once, malformed, function-error, omit-results, panic"),
            "{}",
            err.message
        );
    }

    #[test]
    fn panic_is_asked_for_by_user_argument_or_key_prefix() {
        assert_eq!(Simulation::parse("panic"), Some(Simulation::Panic));
        assert_eq!(
            Simulation::from_key("simulate-panic/x.txt"),
            Some(Simulation::Panic)
        );
        assert_eq!(Simulation::from_key("simulate-panicky/x.txt"), None);
        assert_eq!(Simulation::from_key("dir/simulate-panic/x.txt"), None);
    }

    /// The message `lambda_runtime` reports as `Lambda panicked: <message>`.
    async fn panic_message(h: Arc<Handler<MapStore>>, event: Value) -> String {
        let err = tokio::spawn(async move { h.handle(event).await })
            .await
            .expect_err("the handler panics");
        let payload = err.into_panic();
        payload
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn panic_panics_inside_the_handler_and_the_handler_serves_on() {
        let h = Arc::new(handler());
        for event in [
            event_2_0("a b.txt", Some("panic")),
            event_1_0("simulate-panic/x"),
        ] {
            let message = panic_message(Arc::clone(&h), event).await;
            assert_eq!(message, "panic requested by the test knob `panic`");
        }
        // The same handler (as the runtime keeps it) answers the next invocation normally.
        let r = answer(&h, event_2_0("a b.txt", None)).await;
        assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    }

    #[tokio::test]
    async fn an_event_that_is_not_an_invocation_is_a_function_error() {
        let err = handler().handle(json!({"Records": []})).await.unwrap_err();
        assert_eq!(err.kind, "InvalidEvent");
    }
}

/// The task-handler events of `events/` fed to the handler: each must get an answer that keeps
/// the invocation contract, so that the files stay valid test events for this function.
#[cfg(test)]
mod event_files {
    use super::*;
    use batchops::invocation::{interpret_response, InvocationRequest};
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    /// Objects by (bucket, key, version id); each read is recorded.
    struct FakeStore {
        objects: HashMap<(String, String, Option<String>), Vec<u8>>,
        reads: Mutex<Vec<(String, String, Option<String>)>>,
        writes: Mutex<Vec<(String, String, String)>>,
    }

    impl FakeStore {
        fn with(objects: &[(&str, &str, Option<&str>)]) -> Self {
            let objects = objects
                .iter()
                .map(|(bucket, key, version)| {
                    let id = (
                        bucket.to_string(),
                        key.to_string(),
                        version.map(str::to_string),
                    );
                    (id, format!("content of {bucket}/{key}").into_bytes())
                })
                .collect();
            FakeStore {
                objects,
                reads: Mutex::new(Vec::new()),
                writes: Mutex::new(Vec::new()),
            }
        }
    }

    impl ObjectStore for FakeStore {
        async fn sha256(
            &self,
            bucket: &str,
            key: &str,
            version_id: Option<&str>,
        ) -> Result<String, ReadError> {
            let id = (
                bucket.to_string(),
                key.to_string(),
                version_id.map(str::to_string),
            );
            self.reads.lock().unwrap().push(id.clone());
            self.objects
                .get(&id)
                .map(|body| hex::encode(Sha256::digest(body)))
                .ok_or_else(|| {
                    ReadError::Missing(format!("NoSuchKey: {bucket}/{key} {version_id:?}"))
                })
        }

        async fn put(&self, bucket: &str, key: &str, body: String) -> Result<(), String> {
            self.writes
                .lock()
                .unwrap()
                .push((bucket.to_string(), key.to_string(), body));
            Ok(())
        }
    }

    #[tokio::test]
    async fn record_to_writes_one_object_per_invocation_and_sleep_ms_must_be_a_number() {
        let handler = Handler::new(FakeStore::with(&[("bkt", "a b.txt", None)]));
        let mut event = event_2_0_for("a b.txt");
        event["job"]["userArguments"] = json!({"sleepMs": "5", "recordTo": "rec/calls"});
        let answer = handler.handle(event.clone()).await.unwrap();
        assert_eq!(answer["results"][0]["resultCode"], "Succeeded");
        let writes = handler.store.writes.lock().unwrap().clone();
        assert_eq!(
            writes,
            vec![("rec".into(), "calls/inv-9".into(), "a b.txt".into())]
        );
        event["job"]["userArguments"] = json!({"sleepMs": "soon"});
        let err = handler.handle(event.clone()).await.unwrap_err();
        assert_eq!(err.kind, "InvalidUserArguments");
        event["job"]["userArguments"] = json!({"recordTo": "no-prefix"});
        assert_eq!(
            handler.handle(event).await.unwrap_err().kind,
            "InvalidUserArguments"
        );
    }

    fn event_2_0_for(key: &str) -> Value {
        json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-9",
            "job": {"id": "job-1"},
            "tasks": [{"taskId": "t1", "s3Key": batchops::invocation::encode_s3_key(key),
                       "s3VersionId": null, "s3Bucket": "bkt"}]
        })
    }

    fn event_file(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name} is not JSON: {e}"))
    }

    /// Feeds the file to a handler whose store holds `objects` (what the file's tasks name) and
    /// checks the answer against the contract: same invocationId and schema version, one
    /// Succeeded result per taskId with the object's SHA-256. Returns the reads the handler made.
    async fn feed(
        name: &str,
        objects: &[(&str, &str, Option<&str>)],
    ) -> Vec<(String, String, Option<String>)> {
        let event = event_file(name);
        let request: InvocationRequest = serde_json::from_value(event.clone())
            .unwrap_or_else(|e| panic!("events/{name} is not an invocation request: {e}"));
        let handler = Handler::new(FakeStore::with(objects));
        let answer = handler
            .handle(event)
            .await
            .unwrap_or_else(|e| panic!("events/{name}: function error {e}"));

        let payload = serde_json::to_vec(&answer).unwrap();
        let results = interpret_response(&payload, &request)
            .unwrap_or_else(|violation| panic!("events/{name}: {violation}"));
        assert_eq!(results.len(), request.tasks.len());
        assert_eq!(
            objects.len(),
            request.tasks.len(),
            "events/{name}: the test names one object per task"
        );

        let response: InvocationResponse = serde_json::from_value(answer).unwrap();
        assert_eq!(response.invocation_id, request.invocation_id);
        assert_eq!(
            response.invocation_schema_version,
            request.invocation_schema_version
        );
        let mut answered: Vec<&str> = response
            .results
            .iter()
            .map(|r| r.task_id.as_str())
            .collect();
        let mut sent: Vec<&str> = request.tasks.iter().map(|t| t.task_id.as_str()).collect();
        answered.sort_unstable();
        sent.sort_unstable();
        assert_eq!(answered, sent, "one result per taskId");
        for (result, (bucket, key, _)) in response.results.iter().zip(objects) {
            let expected = hex::encode(Sha256::digest(format!("content of {bucket}/{key}")));
            assert_eq!(result.result_code, ResultCode::Succeeded, "{result:?}");
            assert_eq!(result.result_string.as_deref(), Some(expected.as_str()));
        }
        let reads = handler.store.reads.lock().unwrap().clone();
        reads
    }

    fn owned(objects: &[(&str, &str, Option<&str>)]) -> Vec<(String, String, Option<String>)> {
        objects
            .iter()
            .map(|(b, k, v)| (b.to_string(), k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[tokio::test]
    async fn schema_1_0_event_reads_the_bucket_of_its_arn() {
        let objects = [("example-photos", "2026/11/holiday photo 001.jpg", None)];
        let reads = feed("task-handler-schema-1.0.json", &objects).await;
        assert_eq!(reads, owned(&objects));
    }

    #[tokio::test]
    async fn schema_2_0_event_reads_the_pinned_version() {
        let objects = [(
            "example-photos",
            "2026/11/receipts/r-1042.png",
            Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
        )];
        let reads = feed("task-handler-schema-2.0.json", &objects).await;
        assert_eq!(reads, owned(&objects));
    }
}
