//! Reports of any size, and what is kept after a job: the reporter continued after every result
//! part, or killed mid-way and run twice at once, writes the same bytes as in one go; every item
//! of an ended job gets the table's TTL; ListJobs pages through the job list index.

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use batchops::control;
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::report::{self, ReportManifest, TaskStatus};
use batchops::{executor, planner, reporter, Error};
use common::stack::{csv_job, stack_with, tagging, Stack};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Rows of the shared manifest: about six per batch at 300-byte messages, so over 200 batches.
const ROWS: usize = 1300;

/// A stack whose batches and report files are small, so that a modest job has many of each.
async fn small_stack(tweak: impl FnOnce(&mut batchops::context::Settings)) -> Stack {
    stack_with(false, |st| {
        st.max_message_bytes = 300;
        st.report_max_file_bytes = 6000;
        tweak(st);
    })
    .await
}

/// Creates the job with a given id (the same in every twin stack, so that report file names,
/// which derive from the id, are the same) and queues its plan request.
async fn create_job_with_id(s: &Stack, job_id: &str, request: &Value) {
    let request = CreateJobRequest::parse(&request.to_string()).unwrap();
    request.validate().unwrap();
    let job = control::new_job(job_id.to_string(), request, chrono::Utc::now());
    s.ctx.store().put_new_job(&job).await.unwrap();
    batchops::queue::send_plan_request(&s.ctx, job_id)
        .await
        .unwrap();
}

/// The report's manifest.json and its files by name.
async fn report_files(
    s: &Stack,
    bucket: &str,
    job_id: &str,
) -> (ReportManifest, BTreeMap<String, Vec<u8>>) {
    let key = report::report_manifest_key(Some("reports"), job_id);
    let manifest: ReportManifest = serde_json::from_slice(&s.get(bucket, &key).await).unwrap();
    let mut files = BTreeMap::new();
    for result in &manifest.results {
        let body = s.get(&result.bucket, &result.key).await;
        assert_eq!(common::md5_hex(&body), result.md5_checksum);
        let name = result.key.rsplit('/').next().unwrap().to_string();
        files.insert(name, body);
    }
    (manifest, files)
}

/// Plans and executes the job by hand, then runs the reporter as Lambda and SQS would under
/// trouble: some invocations are killed at a random await point (their message comes back),
/// and some finalize requests are delivered twice at once.
async fn report_with_kills_and_duplicates(s: &Stack, job_id: &str, seed: u64) -> (u64, u64) {
    loop {
        let plans = common::receive(&s.ctx, &s.ctx.settings.plan_queue_url).await;
        let tasks = common::receive(&s.ctx, &s.ctx.settings.task_queue_url).await;
        if plans.is_empty() && tasks.is_empty() {
            break;
        }
        for message in plans {
            planner::handle(&s.ctx, common::sqs_event(&message))
                .await
                .unwrap();
            common::delete(&s.ctx, &s.ctx.settings.plan_queue_url, &message).await;
        }
        for message in tasks {
            executor::process_message(&s.ctx, message.body().unwrap())
                .await
                .unwrap();
            common::delete(&s.ctx, &s.ctx.settings.task_queue_url, &message).await;
        }
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut kills, mut duplicates, mut idle) = (0, 0, 0);
    let url = s.ctx.settings.report_queue_url.clone();
    for _ in 0..10_000 {
        let store = s.ctx.store();
        if store.get_job(job_id).await.unwrap().status.is_terminal() {
            return (kills, duplicates);
        }
        let messages = common::receive(&s.ctx, &url).await;
        if messages.is_empty() {
            // Nothing on the queue: the sweeper, as its schedule would, resends what was lost.
            idle += 1;
            if idle % 20 == 0 {
                batchops::sweeper::sweep(&s.ctx).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        idle = 0;
        for message in messages {
            let event = common::sqs_event(&message);
            let handled = if rng.u8(..10) == 0 {
                duplicates += 1;
                let twin = reporter::handle(&s.ctx, event.clone());
                let (a, b) = tokio::join!(twin, reporter::handle(&s.ctx, event));
                Some(succeeded(a) && succeeded(b))
            } else if rng.u8(..3) == 0 {
                kills += 1;
                let budget = Duration::from_millis(rng.u64(1..30));
                tokio::time::timeout(budget, reporter::handle(&s.ctx, event))
                    .await
                    .ok()
                    .map(succeeded)
            } else {
                Some(succeeded(reporter::handle(&s.ctx, event).await))
            };
            // A killed or failed invocation's message comes back, as SQS returns it.
            if handled == Some(true) {
                common::delete(&s.ctx, &url, &message).await;
            } else {
                common::release(&s.ctx, &url, &message).await;
            }
        }
    }
    panic!("the report of {job_id} did not finish");
}

/// Whether the reporter handled its one-record SQS event (no batch item failure).
fn succeeded(answer: batchops::Result<Value>) -> bool {
    let answer = answer.unwrap();
    answer["batchItemFailures"]
        .as_array()
        .is_some_and(Vec::is_empty)
}

#[tokio::test]
async fn reports_continued_after_every_part_or_killed_midway_are_byte_identical_to_one_made_at_once(
) {
    let one_go = small_stack(|_| {}).await;
    let data = one_go.bucket("data");
    one_go.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..ROWS {
        let key = format!("row-{i:05}");
        // Every third object is missing: failed rows, in files of their own.
        if i % 3 != 0 {
            one_go.put(&data, &key, "x").await;
        }
        rows.push((data.clone(), key));
    }
    let etag = one_go.put_manifest(&data, "m.csv", &rows).await;
    let job_id = format!("report-twin-{}", one_go.id);
    let twins = [
        one_go,
        small_stack(|st| st.reporter_budget = Some(Duration::ZERO)).await,
        small_stack(|st| {
            st.reporter_budget = Some(Duration::ZERO);
            st.finalize_resend_after = Duration::from_secs(1);
        })
        .await,
    ];
    let mut reports = Vec::new();
    for (i, s) in twins.iter().enumerate() {
        let reports_bucket = s.bucket("reports");
        s.create_bucket(&reports_bucket).await;
        let request = csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &reports_bucket,
            "AllTasks",
        );
        create_job_with_id(s, &job_id, &request).await;
        if i == 2 {
            let (kills, duplicates) = report_with_kills_and_duplicates(s, &job_id, 11).await;
            assert!(
                kills > 10 && duplicates > 5,
                "{kills} kills, {duplicates} duplicates"
            );
        }
        let summary = s.run_until_idle_summary().await;
        let job = s.ctx.store().get_job(&job_id).await.unwrap();
        assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
        assert!(job.progress.batches_committed >= 200, "{:?}", job.progress);
        if i == 1 {
            assert!(
                summary.report_messages >= job.progress.batches_committed,
                "the reporter continued after every part: {summary:?}"
            );
        }
        reports.push(report_files(s, &reports_bucket, &job_id).await);
    }
    let (first_manifest, first_files) = &reports[0];
    assert!(first_files.len() > 4, "several files of each status");
    let rows: usize = first_files
        .values()
        .map(|f| report::decode_rows(f).unwrap().len())
        .sum();
    assert_eq!(rows, ROWS);
    for (manifest, files) in &reports[1..] {
        assert_eq!(files, first_files, "the same files, byte for byte");
        let order = |m: &ReportManifest| {
            m.results
                .iter()
                .map(|r| (r.task_execution_status, r.md5_checksum.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(manifest), order(first_manifest));
        assert_eq!(manifest.report_schema, first_manifest.report_schema);
    }
    assert!(first_manifest
        .results
        .iter()
        .any(|r| r.task_execution_status == TaskStatus::Failed));
}

#[tokio::test]
async fn every_item_of_an_ended_job_expires_90_days_later_and_then_the_job_is_gone() {
    let s = small_stack(|_| {}).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..30)
        .map(|i| (data.clone(), format!("obj-{i:02}")))
        .collect();
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
    request["ClientRequestToken"] = Value::String(format!("token-{}", s.id));
    let job_id = s.create_job(request).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    let ended = job.termination_date.unwrap().timestamp();
    let ninety_days = 90 * 24 * 3600;

    let items = s
        .ctx
        .dynamodb
        .query()
        .table_name(&s.ctx.settings.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("JOB#{job_id}")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let kinds: BTreeSet<String> = items
        .iter()
        .map(|i| match &i["sk"] {
            AttributeValue::S(sk) => sk.split('#').next().unwrap().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["BATCH", "JOB", "PLAN", "REPORT"].map(String::from).into(),
        "the job, its batches, plan part and report state"
    );
    let mut token = s
        .ctx
        .dynamodb
        .get_item()
        .table_name(&s.ctx.settings.table)
        .key("pk", AttributeValue::S(format!("TOKEN#token-{}", s.id)))
        .key("sk", AttributeValue::S("TOKEN".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the token's record");
    let mut all = items;
    all.push(std::mem::take(&mut token));
    for item in &all {
        let ttl: i64 = match item.get("ttl") {
            Some(AttributeValue::N(n)) => n.parse().unwrap(),
            other => panic!("{:?} has no TTL: {other:?}", item.get("sk")),
        };
        assert!(
            (ttl - (ended + ninety_days)).abs() < 120,
            "{:?}: TTL {ttl}, job ended {ended}",
            item.get("sk")
        );
    }

    // Ninety days on: DynamoDB may not have deleted it yet, but it is gone for batchops.
    s.ctx
        .dynamodb
        .update_item()
        .table_name(&s.ctx.settings.table)
        .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .update_expression("SET #ttl = :past")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":past", AttributeValue::N((ended - 1).to_string()))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        control::describe_job(&s.ctx, &job_id).await,
        Err(Error::JobNotFound(_))
    ));
    let listed = control::list_jobs(&s.ctx, &Default::default())
        .await
        .unwrap();
    assert!(listed.jobs.iter().all(|j| j.job_id != job_id));
}

#[tokio::test]
async fn list_jobs_pages_through_250_jobs_newest_first() {
    let s = small_stack(|_| {}).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let etag = s
        .put_manifest(&data, "m.csv", &[(data.clone(), "k".into())])
        .await;
    let request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &data,
        "AllTasks",
    );
    let mut created = Vec::new();
    for i in 0..250 {
        let job_id = s.create_job(request.clone()).await;
        if i % 5 == 0 {
            control::update_job_status(&s.ctx, &job_id, JobStatus::Cancelled, None)
                .await
                .unwrap();
        }
        created.push(job_id);
    }
    let pages = |statuses: Vec<JobStatus>, max: usize| {
        let ctx = s.ctx.clone();
        async move {
            let mut pages = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let input = control::ListJobsInput {
                    job_statuses: statuses.clone(),
                    max_results: Some(max),
                    next_token: token.clone(),
                    ..Default::default()
                };
                let page = control::list_jobs(&ctx, &input).await.unwrap();
                pages.push(page.jobs);
                match page.next_token {
                    Some(next) => token = Some(next),
                    None => return pages,
                }
            }
        }
    };
    let all = pages(vec![], 100).await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes[..3], [100, 100, 50], "{sizes:?}");
    assert!(sizes[3..].iter().all(|&n| n == 0), "{sizes:?}");
    let listed: Vec<_> = all.into_iter().flatten().collect();
    let ids: Vec<String> = listed.iter().map(|j| j.job_id.clone()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 250, "each job once");
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].creation_time >= w[1].creation_time),
        "newest first"
    );
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(ids, newest_first);

    let cancelled: Vec<_> = pages(vec![JobStatus::Cancelling], 20)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(cancelled.len(), 50);
    assert!(cancelled.iter().all(|j| j.status == JobStatus::Cancelling));

    let input = |max: usize, token: Option<&str>| control::ListJobsInput {
        max_results: Some(max),
        next_token: token.map(str::to_string),
        ..Default::default()
    };
    assert!(matches!(
        control::list_jobs(&s.ctx, &input(0, None)).await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        control::list_jobs(&s.ctx, &input(10, Some("garbage"))).await,
        Err(Error::InvalidRequest(_))
    ));
}

/// Deletes every result part a job left in the system bucket, as their lifecycle rule would.
async fn expire_parts(s: &Stack, job_id: &str) -> usize {
    let listed = s
        .ctx
        .s3
        .list_objects_v2()
        .bucket(&s.ctx.settings.system_bucket)
        .prefix(format!("staging/job-{job_id}/parts/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    for key in &keys {
        s.ctx
            .s3
            .delete_object()
            .bucket(&s.ctx.settings.system_bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    keys.len()
}

fn source_input(job_id: &str, confirmation: Option<bool>) -> control::SourceJobInput {
    control::SourceJobInput {
        job_id: job_id.to_string(),
        confirmation_required: confirmation,
        max_tasks_per_second: None,
        canary_tasks: None,
        account_id: None,
    }
}

fn job_tag(job: &batchops::job::Job, key: &str) -> Option<String> {
    job.tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.clone())
}

#[tokio::test]
async fn failed_tasks_run_again_in_a_new_job_with_or_without_a_report_and_clones_copy_the_spec() {
    let s = small_stack(|_| {}).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    // 40 keys, one in four missing at first: 10 tasks fail with NoSuchKey.
    let keys: Vec<String> = (0..40).map(|i| format!("rerun/{i:02} a,b")).collect();
    for (i, key) in keys.iter().enumerate() {
        if i % 4 != 3 {
            s.put(&data, key, "x").await;
        }
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "rerun.csv", &rows).await;
    let job_json = |scope: &str, enabled: bool| {
        let mut v = csv_job(
            &data,
            "rerun.csv",
            &etag,
            tagging(&[("round", "1")]),
            &data,
            scope,
        );
        v["Report"]["Enabled"] = Value::Bool(enabled);
        v["Description"] = Value::String("nightly tagging".into());
        v["ClientRequestToken"] = Value::String(format!("token-{scope}-{enabled}"));
        v["Tags"] = serde_json::json!([{"Key": "team", "Value": "blue"}]);
        v
    };
    let no_report = s.create_job(job_json("AllTasks", false)).await;
    let failed_only = s.create_job(job_json("FailedTasksOnly", true)).await;

    // Not before the job has ended.
    let err = control::rerun_failed_tasks(&s.ctx, &source_input(&no_report, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("once it has ended"), "{err}");

    for id in [&no_report, &failed_only] {
        let job = s.run_job(id).await;
        assert_eq!(job.status, JobStatus::Complete);
        assert_eq!((job.progress.succeeded, job.progress.failed), (30, 10));
    }
    // The failed-only job's parts expire: its report is read instead. The other has no report,
    // so its parts are all there is.
    assert!(expire_parts(&s, &failed_only).await > 0);
    for (i, key) in keys.iter().enumerate() {
        if i % 4 == 3 {
            s.put(&data, key, "now here").await;
        }
    }

    let store = s.ctx.store();
    for source in [&no_report, &failed_only] {
        let rerun = control::rerun_failed_tasks(&s.ctx, &source_input(source, None))
            .await
            .unwrap()
            .job_id;
        let job = store.get_job(&rerun).await.unwrap();
        assert_eq!(
            job_tag(&job, control::RERUN_OF_TAG).as_deref(),
            Some(source.as_str())
        );
        assert_eq!(job_tag(&job, "team").as_deref(), Some("blue"));
        assert_eq!(job.request.description.as_deref(), Some("nightly tagging"));
        let manifest = job.manifest().unwrap();
        assert!(
            manifest.location.object_arn.starts_with(&format!(
                "arn:aws:s3:::{}/jobs/job-{rerun}/",
                s.ctx.settings.system_bucket
            )),
            "{}",
            manifest.location.object_arn
        );
        let job = s.run_job(&rerun).await;
        assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
        assert_eq!(job.progress.total_tasks, Some(10));
        assert_eq!((job.progress.succeeded, job.progress.failed), (10, 0));
    }
    for key in &keys {
        assert_eq!(
            s.tags(&data, key).await.get("round").map(String::as_str),
            Some("1")
        );
    }

    // A job without failed tasks has nothing to run again; one whose parts expired with no
    // report to fall back on says that its failed tasks are gone.
    let clean = store
        .list_jobs(&[])
        .await
        .unwrap()
        .into_iter()
        .find(|j| job_tag(j, control::RERUN_OF_TAG).as_deref() == Some(no_report.as_str()))
        .unwrap();
    let err = control::rerun_failed_tasks(&s.ctx, &source_input(&clean.job_id, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no failed tasks"), "{err}");
    assert!(expire_parts(&s, &no_report).await > 0);
    let err = control::rerun_failed_tasks(&s.ctx, &source_input(&no_report, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer kept"), "{err}");

    // A clone has the source's spec and current tags, a new token, and its origin in a tag.
    control::put_job_tagging(
        &s.ctx,
        &failed_only,
        &[batchops::job::S3Tag {
            key: "team".into(),
            value: "green".into(),
        }],
    )
    .await
    .unwrap();
    let clone = control::clone_job(&s.ctx, &source_input(&failed_only, Some(true)))
        .await
        .unwrap()
        .job_id;
    let source = store.get_job(&failed_only).await.unwrap();
    let cloned = store.get_job(&clone).await.unwrap();
    assert_eq!(cloned.request.operation, source.request.operation);
    assert_eq!(cloned.request.manifest, source.request.manifest);
    assert_eq!(cloned.request.report, source.request.report);
    assert_eq!(cloned.request.role_arn, source.request.role_arn);
    assert_eq!(cloned.priority, source.priority);
    assert_ne!(
        cloned.request.client_request_token,
        source.request.client_request_token
    );
    assert_eq!(job_tag(&cloned, "team").as_deref(), Some("green"));
    assert_eq!(
        job_tag(&cloned, control::CLONE_OF_TAG).as_deref(),
        Some(failed_only.as_str())
    );
    assert!(
        cloned.confirmation_required(),
        "--confirmation-required applies"
    );
    s.run_until_idle().await;
    assert_eq!(
        store.get_job(&clone).await.unwrap().status,
        JobStatus::Suspended
    );
    control::update_job_status(&s.ctx, &clone, JobStatus::Ready, None)
        .await
        .unwrap();
    let cloned = s.run_job(&clone).await;
    assert_eq!((cloned.progress.succeeded, cloned.progress.failed), (40, 0));
}

/// The canary's report: its rows, read from `<prefix>/job-<id>/canary/`.
async fn canary_rows(s: &Stack, bucket: &str, job_id: &str) -> Vec<report::TaskOutcome> {
    let dir = report::ReportKind::Canary.dir(Some("reports"), job_id);
    let key = report::report_manifest_key_in(&dir);
    let manifest: ReportManifest = serde_json::from_slice(&s.get(bucket, &key).await).unwrap();
    let mut rows = Vec::new();
    for result in &manifest.results {
        assert!(
            result.key.starts_with(&format!("{dir}/results/")),
            "{}",
            result.key
        );
        rows.extend(report::decode_rows(&s.get(&result.bucket, &result.key).await).unwrap());
    }
    rows
}

/// The keys of report rows, sorted, with the number of times each appears.
fn key_counts(rows: &[report::TaskOutcome]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.task.key.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_canary_runs_the_first_tasks_reports_them_and_waits_then_the_rest_runs_once_confirmed_or_the_job_is_cancelled(
) {
    // About six tasks per batch and a planning budget that runs out after every batch: the
    // canary (not a multiple of the batch size) is planned over several continuations.
    let s = small_stack(|st| st.planner_budget = Some(Duration::from_millis(1))).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let keys: Vec<String> = (0..60).map(|i| format!("canary/{i:02}")).collect();
    for key in &keys {
        s.put(&data, key, "x").await;
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "canary.csv", &rows).await;
    let store = s.ctx.store();
    let mut ids = Vec::new();
    for round in ["go", "stop"] {
        let mut request = csv_job(
            &data,
            "canary.csv",
            &etag,
            tagging(&[("round", round)]),
            &data,
            "AllTasks",
        );
        request["BatchOps"] = serde_json::json!({"CanaryTasks": 25});
        request["ClientRequestToken"] = Value::String(format!("canary-{round}"));
        ids.push(s.create_job(request).await);
    }
    s.run_until_idle().await;

    for (job_id, round) in ids.iter().zip(["go", "stop"]) {
        let job = store.get_job(job_id).await.unwrap();
        assert_eq!(
            job.status,
            JobStatus::Suspended,
            "{round}: {:?}",
            job.status_update_reason
        );
        assert_eq!(
            (job.progress.succeeded, job.progress.failed),
            (25, 0),
            "{round}"
        );
        assert!(job.canary_ran());
        let reason = job.status_update_reason.clone().unwrap_or_default();
        assert!(
            reason.starts_with("canary done: 25 tasks ran, 25 succeeded, 0 failed"),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("job-{job_id}/canary/manifest.json")),
            "{reason}"
        );
        let described = s.describe(job_id).await;
        assert_eq!(described["Job"]["BatchOps"]["CanaryTasks"], 25);
        assert_eq!(described["Job"]["SuspendedCause"], "AwaitingConfirmation");
        // The canary's report has exactly the first 25 tasks of the manifest, once each.
        let counts = key_counts(&canary_rows(&s, &data, job_id).await);
        let first: BTreeMap<String, usize> = keys[..25].iter().map(|k| (k.clone(), 1)).collect();
        assert_eq!(counts, first, "{round}");
        // A finalize request delivered again finds no report due and changes nothing.
        let again = reporter::finalize_job(&s.ctx, job_id).await.unwrap();
        assert_eq!(again, reporter::Finalized::NotDue(JobStatus::Suspended));
        assert_eq!(
            store.get_job(job_id).await.unwrap().status,
            JobStatus::Suspended
        );
    }
    // The two jobs tagged the same 25 objects (the last one's tag stays); nothing past them.
    for key in &keys[25..] {
        assert!(
            s.tags(&data, key).await.is_empty(),
            "{key} is past the canary"
        );
    }

    // Confirmed: the rest runs, each task once; the final report has every task once.
    control::update_job_status(&s.ctx, &ids[0], JobStatus::Ready, None)
        .await
        .unwrap();
    // Cancelled after its canary: it ends through Cancelling, its canary counted and reported.
    let cancelled = control::update_job_status(&s.ctx, &ids[1], JobStatus::Cancelled, None)
        .await
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelling);
    s.run_until_idle().await;

    let go = store.get_job(&ids[0]).await.unwrap();
    assert_eq!(go.status, JobStatus::Complete, "{:?}", go.failure_reasons);
    assert_eq!(go.progress.total_tasks, Some(60));
    assert_eq!(
        (
            go.progress.succeeded,
            go.progress.failed,
            go.progress.not_run
        ),
        (60, 0, 0)
    );
    let (_, rows) = s.report(&data, "reports", &ids[0]).await;
    let all: BTreeMap<String, usize> = keys.iter().map(|k| (k.clone(), 1)).collect();
    assert_eq!(key_counts(&rows), all);
    for key in &keys[25..] {
        assert_eq!(
            s.tags(&data, key).await.get("round").map(String::as_str),
            Some("go"),
            "{key}"
        );
    }

    let stop = store.get_job(&ids[1]).await.unwrap();
    assert_eq!(
        stop.status,
        JobStatus::Cancelled,
        "{:?}",
        stop.failure_reasons
    );
    assert_eq!(
        stop.progress.total_tasks,
        Some(25),
        "only the canary's tasks are the job's"
    );
    assert_eq!((stop.progress.succeeded, stop.progress.not_run), (25, 0));
    let (_, rows) = s.report(&data, "reports", &ids[1]).await;
    let first: BTreeMap<String, usize> = keys[..25].iter().map(|k| (k.clone(), 1)).collect();
    assert_eq!(key_counts(&rows), first);
}

#[tokio::test]
async fn a_job_cancelled_while_its_canary_is_queued_ends_cancelled_with_only_the_canary_counted() {
    let s = small_stack(|_| {}).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let keys: Vec<String> = (0..40).map(|i| format!("queued/{i:02}")).collect();
    for key in &keys {
        s.put(&data, key, "x").await;
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "queued.csv", &rows).await;
    let mut request = csv_job(
        &data,
        "queued.csv",
        &etag,
        tagging(&[("late", "yes")]),
        &data,
        "AllTasks",
    );
    request["BatchOps"] = serde_json::json!({"CanaryTasks": 20});
    let job_id = s.create_job(request).await;
    // The canary is planned (its batches queued, not yet run), then the job is cancelled.
    planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let store = s.ctx.store();
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Active);
    assert!(job.progress.canary_batches.is_some());
    assert_eq!(job.progress.batches_planned, None);
    let cancelled = control::update_job_status(&s.ctx, &job_id, JobStatus::Cancelled, None)
        .await
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelling);
    s.run_until_idle().await;

    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Cancelled,
        "{:?}",
        job.failure_reasons
    );
    assert_eq!(job.progress.total_tasks, Some(20));
    assert_eq!(
        job.progress.succeeded + job.progress.failed + job.progress.not_run,
        20
    );
    assert!(
        !job.canary_ran(),
        "a cancelled canary is not reported as a canary"
    );
    for key in &keys[20..] {
        assert!(
            s.tags(&data, key).await.is_empty(),
            "{key} is past the canary"
        );
    }
}
