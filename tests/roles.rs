//! Tasks run with the job's own role, against a moto server with IAM enforcement switched on
//! (`BATCHOPS_TEST_AUTH_ENDPOINT`, set up by `tests/common/moto_iam.py`): batchops runs as an
//! orchestrator user that may touch its own table, queues and system bucket and assume
//! `batchops-job-*` roles, and nothing of the data buckets. Whatever a job does to data it can
//! only do as its role.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use batchops::context::Settings;
use batchops::fault::{Fault, FaultPlan, FaultRule};
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::local::{self, RunUntil};
use batchops::report::TaskStatus;
use batchops::role::RoleMode;
use batchops::{control, Context};
use common::stack::{csv_job, stack_as, tagging, Stack};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::OnceCell;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Deserialize)]
struct Keys {
    admin: (String, String),
    orchestrator: (String, String),
}

struct Iam {
    endpoint: String,
    suffix: String,
    keys: Keys,
}

/// The IAM of the enforcing server, set up once for the whole test binary: enforcement is a
/// switch of the whole server, so every test must find the same users and roles.
static IAM: OnceCell<Iam> = OnceCell::const_new();

async fn iam() -> &'static Iam {
    IAM.get_or_init(|| async {
        let endpoint = std::env::var("BATCHOPS_TEST_AUTH_ENDPOINT").expect(
            "BATCHOPS_TEST_AUTH_ENDPOINT is not set: run the tests through scripts/with-services.sh (make test)",
        );
        let suffix = common::unique_suffix();
        let script = common::workspace_root().join("tests/common/moto_iam.py");
        let python = common::workspace_root().join(".venv/bin/python");
        let out = std::process::Command::new(python)
            .arg(script)
            .arg(&endpoint)
            .arg(&suffix)
            .output()
            .expect("run moto_iam.py");
        assert!(
            out.status.success(),
            "moto_iam.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys: Keys = serde_json::from_slice(&out.stdout).expect("keys from moto_iam.py");
        Iam {
            endpoint,
            suffix,
            keys,
        }
    })
    .await
}

async fn config_as(iam: &Iam, (key, secret): &(String, String)) -> aws_config::SdkConfig {
    crate::common::sdk_config_as(&iam.endpoint, key, secret).await
}

fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// The common stack, run by the orchestrator user, and the admin's S3 client for setup and
/// checks.
struct RoleStack {
    stack: Stack,
    admin: aws_sdk_s3::Client,
    suffix: String,
}

impl std::ops::Deref for RoleStack {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl std::ops::DerefMut for RoleStack {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }
}

async fn role_stack(tweak: impl FnOnce(&mut Settings)) -> RoleStack {
    let iam = iam().await;
    let orchestrator = config_as(iam, &iam.keys.orchestrator).await;
    let stack = stack_as(orchestrator, false, |settings| {
        settings.role_name_prefix = Some("batchops-job-".into());
        settings.role_external_id = Some(format!("batchops-test-{}", iam.suffix));
        tweak(settings);
    })
    .await;
    let admin = s3(&config_as(iam, &iam.keys.admin).await);
    RoleStack {
        stack,
        admin,
        suffix: iam.suffix.clone(),
    }
}

impl RoleStack {
    fn bucket(&self, name: &str) -> String {
        format!("roles-{name}-{}", self.suffix)
    }

    fn role(&self, name: &str) -> String {
        format!("arn:aws:iam::123456789012:role/{name}-{}", self.suffix)
    }

    async fn ensure_bucket(&self, bucket: &str) {
        if let Err(e) = self.admin.create_bucket().bucket(bucket).send().await {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default();
            assert!(
                code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists",
                "create {bucket}: {e:?}"
            );
        }
    }

    async fn put(&self, bucket: &str, key: &str, body: &str) -> String {
        let out = self
            .admin
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        out.e_tag().unwrap().trim_matches('"').to_string()
    }

    async fn tags(&self, bucket: &str, key: &str) -> Vec<(String, String)> {
        let out = self
            .admin
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }

    /// Objects `n` in each of buckets a and b, and a manifest of all of them in bucket m; a
    /// tagging job over it as `role`. Returns the job id and the manifest's rows.
    async fn tagging_job(&self, role_arn: &str, n: usize) -> (String, Vec<(String, String)>) {
        let (a, b, m) = (self.bucket("a"), self.bucket("b"), self.bucket("m"));
        for bucket in [&a, &b, &m] {
            self.ensure_bucket(bucket).await;
        }
        let run = common::unique_suffix();
        let mut rows = Vec::new();
        for bucket in [&a, &b] {
            for i in 0..n {
                let key = format!("{run}/obj-{i}");
                self.put(bucket, &key, "x").await;
                rows.push((bucket.clone(), key));
            }
        }
        let manifest: String = rows.iter().map(|(b, k)| format!("{b},{k}\n")).collect();
        let manifest_key = format!("{run}.csv");
        let etag = self.put(&m, &manifest_key, &manifest).await;
        let mut request = csv_job(
            &m,
            &manifest_key,
            &etag,
            tagging(&[("job", "role")]),
            &m,
            "AllTasks",
        );
        request["RoleArn"] = role_arn.into();
        let request = CreateJobRequest::parse(&request.to_string()).unwrap();
        let job_id = control::create_job(&self.ctx, request, None)
            .await
            .unwrap()
            .job_id;
        (job_id, rows)
    }

    async fn run(&self, job_id: &str) -> batchops::job::Job {
        local::run(
            &self.ctx,
            RunUntil::JobTerminal(job_id.to_string()),
            RUN_TIMEOUT,
        )
        .await
        .unwrap();
        self.ctx.store().get_job(job_id).await.unwrap()
    }
}

#[tokio::test]
async fn tasks_run_as_the_jobs_role_and_fail_access_denied_outside_it() {
    let s = role_stack(|_| {}).await;
    let (job_id, rows) = s.tagging_job(&s.role("batchops-job-tag-a"), 3).await;
    let job = s.run(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 3));

    let (a, b) = (s.bucket("a"), s.bucket("b"));
    for (bucket, key) in &rows {
        let tags = s.tags(bucket, key).await;
        if *bucket == a {
            assert_eq!(tags, vec![("job".to_string(), "role".to_string())], "{key}");
        } else {
            assert!(
                tags.is_empty(),
                "{bucket}/{key} is outside the role: {tags:?}"
            );
        }
    }
    // The report was written as the role, under its reports/ prefix.
    let key = batchops::report::report_manifest_key(Some("reports"), &job_id);
    let manifest = s
        .admin
        .get_object()
        .bucket(s.bucket("m"))
        .key(&key)
        .send()
        .await
        .unwrap();
    let manifest: batchops::report::ReportManifest =
        serde_json::from_slice(&manifest.body.collect().await.unwrap().into_bytes()).unwrap();
    let mut failed = Vec::new();
    for result in &manifest.results {
        let body = s
            .admin
            .get_object()
            .bucket(&result.bucket)
            .key(&result.key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        for row in batchops::report::decode_rows(&body).unwrap() {
            if row.status == TaskStatus::Failed {
                failed.push(row);
            }
        }
    }
    assert_eq!(failed.len(), 3);
    for row in &failed {
        assert_eq!(row.task.bucket, b);
        assert_eq!(row.error_code.as_deref(), Some("AccessDenied"), "{row:?}");
        assert_eq!(row.http_status, Some(403));
    }
    // The orchestrator itself may not tag what the job tagged: the role did it.
    let denied = s
        .ctx
        .system_s3
        .put_object_tagging()
        .bucket(&a)
        .key(&rows[0].1)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .set_tag_set(Some(vec![]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect_err("the orchestrator has no rights on data buckets");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&denied),
        Some("AccessDenied")
    );
    assert!(s.ctx.roles.assumed() >= 1);

    // A late plan request of the ended job, in a container that has not assumed the role yet,
    // is ignored without assuming it.
    let fresh = Context {
        roles: std::sync::Arc::new(batchops::role::JobRoles::default()),
        ..s.ctx.clone()
    };
    batchops::planner::plan_job(&fresh, &job_id).await.unwrap();
    assert_eq!(fresh.roles.assumed(), 0, "no AssumeRole for an ended job");
}

/// Runs a job as `role_arn` and checks that it failed in Preparing, naming the role, before any
/// task; returns the failure reason.
async fn assert_failed_preparing(s: &RoleStack, role_arn: &str) -> String {
    let (job_id, rows) = s.tagging_job(role_arn, 1).await;
    let job = s.run(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.progress.total_tasks.unwrap_or(0),
        0,
        "nothing was planned"
    );
    let failure = &job.failure_reasons[0];
    assert_eq!(failure.failure_code, "AccessDenied", "{failure:?}");
    assert!(
        failure.failure_reason.contains(role_arn),
        "the reason names the role: {}",
        failure.failure_reason
    );
    for (bucket, key) in &rows {
        assert!(s.tags(bucket, key).await.is_empty());
    }
    failure.failure_reason.clone()
}

#[tokio::test]
async fn a_role_the_stack_may_not_assume_fails_the_job_in_preparing() {
    let s = role_stack(|_| {}).await;
    let reason = assert_failed_preparing(&s, &s.role("outside")).await;
    assert!(reason.contains("JobRoleNamePrefix"), "{reason}");
}

#[tokio::test]
async fn a_role_whose_trust_policy_refuses_the_stack_fails_the_job_in_preparing() {
    // Its trust policy wants another ExternalId: STS itself refuses.
    let s = role_stack(|_| {}).await;
    let reason = assert_failed_preparing(&s, &s.role("batchops-job-untrusted")).await;
    assert!(
        reason.contains("HTTP 403 AccessDenied") && reason.contains("not authorized"),
        "{reason}"
    );
}

#[tokio::test]
async fn without_batchops_own_check_iam_refuses_a_role_outside_the_grant() {
    // The prefix check off: the orchestrator's IAM policy (roles named batchops-job-*) refuses.
    let s = role_stack(|settings| settings.role_name_prefix = None).await;
    let reason = assert_failed_preparing(&s, &s.role("outside")).await;
    assert!(reason.contains("HTTP 403 AccessDenied"), "{reason}");
}

#[tokio::test]
async fn a_role_that_does_not_exist_fails_the_job_in_preparing() {
    let mut s = role_stack(|_| {}).await;
    let missing = s.role("batchops-job-missing");
    // AWS refuses AssumeRole of a role that does not exist (AccessDenied, 403); moto hands out
    // credentials anyway and fails their first use with a 500. The fault layer gives AWS's
    // answer, in STS's own error format.
    let answer = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/orchestrator is not authorized to perform: sts:AssumeRole on resource: {missing}</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
    );
    let rule = FaultRule::new(
        "STS",
        "AssumeRole",
        Fault::Reject {
            status: 403,
            code: "AccessDenied".into(),
            message: String::new(),
            body: Some(answer),
        },
    )
    .containing(&format!("batchops-job-missing-{}", s.suffix));
    let plan = FaultPlan::new(1, vec![rule]);
    s.ctx = s.ctx.clone().with_faults(&s.config, plan.clone()).unwrap();
    let reason = assert_failed_preparing(&s, &missing).await;
    assert!(plan.fired(0) >= 1, "STS was asked for the missing role");
    assert!(
        reason.contains("HTTP 403 AccessDenied") && reason.contains("not authorized"),
        "{reason}"
    );
}

#[tokio::test]
async fn credentials_are_assumed_again_before_they_expire() {
    // A 4-second session is renewed one second ahead of its end.
    let s = role_stack(|settings| settings.role_session = Duration::from_secs(4)).await;
    let (job_id, rows) = s.tagging_job(&s.role("batchops-job-tag-a"), 2).await;
    let job = s.ctx.store().get_job(&job_id).await.unwrap();
    let data = s.ctx.for_job(&job).await.unwrap();
    let (a, key) = &rows[0];
    data.s3
        .head_object()
        .bucket(a)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(s.ctx.roles.assumed(), 1, "kept while fresh");
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    data.s3
        .head_object()
        .bucket(a)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(s.ctx.roles.assumed(), 2, "assumed again before the expiry");
    // And a whole job across renewals.
    let job = s.run(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (2, 2));
}

#[tokio::test]
async fn role_mode_orchestrator_runs_every_job_with_the_orchestrators_own_role() {
    // The admin plays an orchestrator granted on the data buckets.
    let iam = iam().await;
    let admin = config_as(iam, &iam.keys.admin).await;
    let stack = stack_as(admin.clone(), false, |settings| {
        settings.role_mode = RoleMode::Orchestrator;
    })
    .await;
    let s = RoleStack {
        stack,
        admin: s3(&admin),
        suffix: iam.suffix.clone(),
    };
    // A role the stack may not assume: irrelevant in this mode.
    let (job_id, rows) = s.tagging_job(&s.role("outside"), 2).await;
    let job = s.run(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (4, 0));
    for (bucket, key) in &rows {
        assert_eq!(s.tags(bucket, key).await.len(), 1);
    }
    assert_eq!(s.ctx.roles.assumed(), 0);
}

// ---------------------------------------------------------------- ownership checks
// moto ignores ExpectedBucketOwner; the fault layer answers as S3 does to a bucket of another
// owner (403 AccessDenied), and counts the requests that carry the header.

fn owner_rule(operation: &str, owner: &str, fault: Fault) -> FaultRule {
    FaultRule::new("S3", operation, fault)
        .containing(&format!("x-amz-expected-bucket-owner: {owner}"))
}

#[tokio::test]
async fn a_report_bucket_of_another_owner_fails_the_job_before_any_task() {
    let s = common::stack::stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..3).map(|i| (data.clone(), format!("o{i}"))).collect();
    for (_, key) in &rows {
        s.put(&data, key, "x").await;
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let mut request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &data,
        "AllTasks",
    );
    request["Report"]["ExpectedBucketOwner"] = "111122223333".into();
    let job_id = s.create_job(request).await;
    let denied = Fault::Reject {
        status: 403,
        code: "AccessDenied".into(),
        message: "Access Denied".into(),
        body: None,
    };
    let plan = FaultPlan::new(1, vec![owner_rule("PutObject", "111122223333", denied)]);
    let ctx = s.ctx.clone().with_faults(&s.config, plan.clone()).unwrap();
    local::run(&ctx, RunUntil::JobTerminal(job_id.clone()), RUN_TIMEOUT)
        .await
        .unwrap();
    let job = s.ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let failure = &job.failure_reasons[0];
    assert_eq!(failure.failure_code, "ReportNotWritten");
    assert!(
        failure
            .failure_reason
            .contains("not owned by Report.ExpectedBucketOwner 111122223333"),
        "{failure:?}"
    );
    assert!(plan.fired(0) >= 1);
    for (_, key) in &rows {
        assert!(s.tags(&data, key).await.is_empty(), "no task ran");
    }
}

#[tokio::test]
async fn every_request_to_the_system_bucket_names_the_stacks_account() {
    let s = common::stack::stack_with(false, |settings| {
        settings.system_bucket_owner = Some("123456789012".into());
    })
    .await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..3).map(|i| (data.clone(), format!("o{i}"))).collect();
    for (_, key) in &rows {
        s.put(&data, key, "x").await;
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &data,
            "AllTasks",
        ))
        .await;
    let system = s.ctx.settings.system_bucket.clone();
    let count = |op: &str| {
        FaultRule::new("S3", op, Fault::Delay { millis: 0 }).containing(&format!("/{system}/"))
    };
    let with_owner = |op: &str| owner_rule(op, "123456789012", Fault::Delay { millis: 0 });
    // The first matching rule fires: rules 0-1 take the requests that name the owner, rules
    // 2-3 any other request to the system bucket.
    let plan = FaultPlan::new(
        1,
        vec![
            with_owner("PutObject"),
            with_owner("GetObject"),
            count("PutObject"),
            count("GetObject"),
        ],
    );
    let ctx = s.ctx.clone().with_faults(&s.config, plan.clone()).unwrap();
    local::run(&ctx, RunUntil::JobTerminal(job_id.clone()), RUN_TIMEOUT)
        .await
        .unwrap();
    let job = s.ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert!(
        plan.fired(0) >= 1 && plan.fired(1) >= 1,
        "result parts written and read"
    );
    assert_eq!(
        plan.fired(2),
        0,
        "a PutObject to the system bucket without the owner"
    );
    assert_eq!(
        plan.fired(3),
        0,
        "a GetObject from the system bucket without the owner"
    );
}

// ---------------------------------------------------------------- secrets in logs

/// What the functions log, in their JSON format, kept in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread, so that the subscriber set for this test sees every task of the run.
#[tokio::test(flavor = "current_thread")]
async fn no_credential_or_object_data_reaches_the_logs_even_at_debug() {
    let logs = Captured::default();
    let subscriber = batchops::telemetry::json_subscriber(
        "debug"
            .parse::<tracing_subscriber::filter::Targets>()
            .unwrap(),
        logs.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = role_stack(|_| {}).await;
    let role = s.role("batchops-job-tag-a");
    let (job_id, rows) = s.tagging_job(&role, 2).await;
    let body = "object-body-5d1f0c9e-never-logged";
    for (bucket, key) in &rows {
        s.put(bucket, key, body).await;
    }
    let job = s.run(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);

    let role_credentials = {
        use aws_credential_types::provider::ProvideCredentials;
        let clients = s
            .ctx
            .roles
            .get(&role, &job_id)
            .expect("the role was assumed");
        clients.credentials.provide_credentials().await.unwrap()
    };
    let iam = iam().await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("assumed the job's role") && text.lines().count() > 50,
        "the run was logged at debug ({} lines)",
        text.lines().count()
    );
    let secrets = [
        ("orchestrator secret key", iam.keys.orchestrator.1.as_str()),
        ("role secret key", role_credentials.secret_access_key()),
        (
            "role session token",
            role_credentials.session_token().unwrap(),
        ),
        ("object body", body),
        ("a request signature", "Signature="),
        ("a presigned URL", "X-Amz-Signature"),
        ("a presigned URL's credential", "X-Amz-Credential"),
    ];
    for (what, secret) in secrets {
        assert!(!text.contains(secret), "{what} in the logs");
    }
}
