//! Every file in `events/` is fed to the handler it is written for, against a moto server, and
//! must be handled successfully: the control, planner, executor and reporter handlers run on a
//! scenario (buckets, objects, manifests, jobs) built for the purpose, with the example values of
//! each file replaced by the scenario's. `tests/events.rs` checks that the files parse; this test
//! checks that they work. The two task-handler events are fed to the example task handler by its
//! own crate's tests (`functions/example-task-handler/src/handler.rs`).
//!
//! Each example value this test replaces must still be in its file, so that the files and the test
//! cannot drift apart silently.

use crate::common;
use crate::common::stack::{stack, Stack};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::manifest::encode_key;
use batchops::plan::TaskBatch;
use batchops::planner::{self, PlannerWork};
use batchops::report::report_manifest_key;
use batchops::sweeper;
use batchops::{control, executor, reporter};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

// The example values of the event files, replaced by the scenario's.
const EXAMPLE_JOB_ID: &str = "9f2d7c41-5b3e-4c8a-9e61-2a7d0f4b8c15";
const EXAMPLE_BATCH_ID: &str = "b00000007";
const EXAMPLE_PHOTOS_BUCKET: &str = "example-photos";
const EXAMPLE_VERSION_ID: &str = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY";
const EXAMPLE_MANIFEST_BUCKET: &str = "example-batchops-manifests";
const EXAMPLE_MANIFEST_ETAG: &str = "60e460c9d1046e73f7dde5043ac3ae85";
const EXAMPLE_REPORT_BUCKET: &str = "example-batchops-reports";
const EXAMPLE_TOKEN: &str = "tag-photos-2026-11-24";
const EXAMPLE_INVENTORY_BUCKET: &str = "example-inventory-reports";
const EXAMPLE_TEMPLATE_PREFIX: &str = "inventory/example-photos/daily-full/";
const EXAMPLE_ARRIVAL_ETAG: &str = "3c8a1b9d0e7f4a2b6c5d4e3f2a1b0c9d";
const EXAMPLE_NOTIFIED_ETAG: &str = "5d1e9f7a3b2c4d6e8f0a1b2c3d4e5f60";
const EXAMPLE_PLAN_QUEUE_ARN: &str =
    "arn:aws:sqs:us-east-1:123456789012:batchops-PlanQueue-Xk29LmQ8rT4v";

/// Where the CreateJob events' manifest lives (kept: only its bucket is replaced).
const CREATE_JOB_MANIFEST_KEY: &str = "manifests/photos-2026-11.csv";
/// The inventory manifest.json keys the planner events announce, decoded.
const ARRIVAL_MANIFEST_KEY: &str =
    "inventory/example-photos/daily-full/2026-11-24T01-00Z/manifest.json";
const NOTIFIED_MANIFEST_KEY: &str =
    "inventory reports/example-photos/daily full/2026-11-24T01-00Z/manifest.json";
/// The prefix of the template that covers NOTIFIED_MANIFEST_KEY.
const NOTIFIED_TEMPLATE_PREFIX: &str = "inventory reports/example-photos/daily full/";

/// The objects of the executor event's batch, in its order; the last one is pinned to a version.
const PHOTO_KEYS: [&str; 3] = [
    "2026/11/holiday photo 001.jpg",
    "2026/11/café+menu,final%20v2.pdf",
    "2026/11/receipts/r-1042.png",
];
/// The tag set of every tagging event.
const EVENT_TAGS: [(&str, &str); 2] = [("retention", "archive-2027"), ("owner", "photo-team")];

/// The event files fed to a handler here, and those the example task handler's tests feed.
const FED_HERE: &[&str] = &[
    "control-clone-job.json",
    "control-create-job-canary.json",
    "control-create-job.json",
    "control-delete-job-tagging.json",
    "control-delete-job-template.json",
    "control-describe-job.json",
    "control-dry-run-job.json",
    "control-get-job-tagging.json",
    "control-list-job-templates.json",
    "control-list-jobs-by-tag.json",
    "control-list-jobs.json",
    "control-put-job-tagging.json",
    "control-put-job-template.json",
    "control-rerun-failed-tasks.json",
    "control-update-job-priority.json",
    "control-update-job-rate.json",
    "control-update-job-status-cancel.json",
    "control-update-job-status-confirm.json",
    "create-job-tagging.json",
    "executor-sqs-batch.json",
    "inventory-bucket-notification.json",
    "planner-eventbridge-inventory-arrival.json",
    "planner-plan-request.json",
    "planner-s3-inventory-arrival.json",
    "planner-sqs-s3-notification.json",
    "reporter-finalize-direct.json",
    "reporter-finalize.json",
    "sweeper-scheduled.json",
];
const FED_BY_TASK_HANDLER_TESTS: &[&str] = &[
    "task-handler-schema-1.0.json",
    "task-handler-schema-2.0.json",
];

fn events_dir() -> PathBuf {
    common::workspace_root().join("events")
}

/// The text of an event file with each example value replaced by the scenario's. Panics when a
/// value is not in the file, so that a changed file is noticed here.
fn event_text(name: &str, substitutions: &[(&str, &str)]) -> String {
    let path = events_dir().join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (example, value) in substitutions {
        assert!(
            text.contains(example),
            "events/{name} no longer contains the example value {example:?} that \
             tests/event_handlers.rs replaces; update the file or the test"
        );
        assert!(
            !value.contains(['"', '\\']) && !value.chars().any(char::is_control),
            "{value:?} would need JSON escaping; it cannot replace {example:?} as plain text"
        );
        text = text.replace(example, value);
    }
    text
}

/// An event file as JSON, example values replaced (see [`event_text`]).
fn event(name: &str, substitutions: &[(&str, &str)]) -> Value {
    let text = event_text(name, substitutions);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("events/{name} is not JSON after substitution: {e}"))
}

/// The body of the first SQS record of an event, as JSON.
fn first_body(event: &Value) -> Value {
    let body = event
        .pointer("/Records/0/body")
        .and_then(Value::as_str)
        .expect("an SQS record with a body");
    serde_json::from_str(body).expect("the SQS body is JSON")
}

// ---------------------------------------------------------------------------------------------
// The scenario.

/// What the scenario adds to the common stack.
impl Stack {
    async fn put_photos(&self, bucket: &str) -> Option<String> {
        let mut version = None;
        for key in PHOTO_KEYS {
            version = self
                .put_version(bucket, key, key.as_bytes().to_vec())
                .await
                .1;
        }
        version
    }

    async fn assert_tagged_by_the_events(&self, bucket: &str) {
        let expected: BTreeMap<String, String> = EVENT_TAGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for key in PHOTO_KEYS {
            assert_eq!(self.tags(bucket, key).await, expected, "tags of {key:?}");
        }
    }

    async fn drain(&self, queue_url: &str) -> Vec<Value> {
        common::drain_queue(&self.ctx, queue_url)
            .await
            .iter()
            .map(|body| serde_json::from_str(body).expect("queued bodies are JSON"))
            .collect()
    }

    async fn plan_queue_arn(&self) -> String {
        let out = self
            .ctx
            .sqs
            .get_queue_attributes()
            .queue_url(&self.ctx.settings.plan_queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        out.attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .expect("the plan queue's ARN")
    }

    /// An S3 Inventory delivery of the photos in `data`: a gzipped CSV data file, then its
    /// manifest.json at `manifest_key`, whose ETag is returned.
    async fn put_inventory(&self, inventory: &str, manifest_key: &str, data: &str) -> String {
        let csv: String = PHOTO_KEYS
            .iter()
            .map(|key| format!("\"{data}\",\"{}\",\"false\",\"1\"\n", encode_key(key)))
            .collect();
        let gz = common::gzip(csv.as_bytes());
        let base = manifest_key.trim_end_matches("manifest.json");
        let data_key = format!("{base}data/0a1b2c.csv.gz");
        self.put_version(inventory, &data_key, gz.clone()).await;
        let manifest = json!({
            "sourceBucket": data,
            "destinationBucket": format!("arn:aws:s3:::{inventory}"),
            "version": "2016-11-30",
            "creationTimestamp": "1795484400000",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, IsDeleteMarker, Size",
            "files": [{"key": data_key, "size": gz.len(),
                       "MD5checksum": common::md5_hex(&gz)}]
        });
        self.put_version(inventory, manifest_key, manifest.to_string().into_bytes())
            .await
            .0
    }

    /// The CreateJob events' manifest: the photos of `data`, at CREATE_JOB_MANIFEST_KEY in
    /// `manifests`; returns its ETag.
    async fn put_create_job_manifest(&self, manifests: &str, data: &str) -> String {
        let csv: String = PHOTO_KEYS
            .iter()
            .map(|key| format!("{data},{}\n", encode_key(key)))
            .collect();
        self.put_version(manifests, CREATE_JOB_MANIFEST_KEY, csv.into_bytes())
            .await
            .0
    }
}

async fn control(s: &Stack, event: Value) -> Value {
    let action = event["Action"].clone();
    control::handle(&s.ctx, event)
        .await
        .unwrap_or_else(|e| panic!("control {action} failed: {e}"))
}

/// Feeds planner-plan-request.json for `job_id`, after checking that its body is the plan request
/// CreateJob queued (which is taken off the queue, so that only the event plans the job).
async fn plan_with_event(s: &Stack, job_id: &str) {
    let plan = event("planner-plan-request.json", &[(EXAMPLE_JOB_ID, job_id)]);
    let queued = s.drain(&s.ctx.settings.plan_queue_url).await;
    assert_eq!(
        queued,
        vec![first_body(&plan)],
        "the event's body is the plan request CreateJob queues"
    );
    let answer = planner::handle(&s.ctx, plan).await.unwrap();
    assert_eq!(answer, Value::Null);
}

fn tag_set_json() -> Value {
    let set: Vec<Value> = EVENT_TAGS
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!(set)
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_event_file_is_fed_to_a_handler() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let fed: BTreeSet<String> = FED_HERE
        .iter()
        .chain(FED_BY_TASK_HANDLER_TESTS)
        .map(|name| name.to_string())
        .collect();
    assert_eq!(
        on_disk, fed,
        "every event file needs a test that feeds it to its handler (tests/event_handlers.rs)"
    );
}

#[tokio::test]
async fn a_canary_job_from_its_event_runs_two_photos_reports_them_and_waits_for_confirmation() {
    let s = stack().await;
    let (photos, manifests, reports) = (
        s.bucket("photos"),
        s.bucket("manifests"),
        s.bucket("reports"),
    );
    for bucket in [&photos, &manifests, &reports] {
        s.create_bucket(bucket).await;
    }
    s.put_photos(&photos).await;
    let etag = s.put_create_job_manifest(&manifests, &photos).await;
    let token = format!("tag-photos-canary-{}", s.id);
    let created = control(
        &s,
        event(
            "control-create-job-canary.json",
            &[
                (EXAMPLE_MANIFEST_BUCKET, manifests.as_str()),
                (EXAMPLE_MANIFEST_ETAG, etag.as_str()),
                (EXAMPLE_REPORT_BUCKET, reports.as_str()),
                ("tag-photos-canary-2026-11-24", token.as_str()),
            ],
        ),
    )
    .await;
    let job_id = created["JobId"].as_str().expect("a JobId").to_string();

    let job = s.run_job(&job_id).await;
    assert_eq!(
        job.status,
        JobStatus::Suspended,
        "{:?}",
        job.status_update_reason
    );
    assert_eq!((job.progress.succeeded, job.progress.failed), (2, 0));
    let canary_report = batchops::report::report_manifest_key_in(
        &batchops::report::ReportKind::Canary.dir(Some("batch-reports"), &job_id),
    );
    assert!(s.exists(&reports, &canary_report).await, "{canary_report}");
    assert!(
        !s.exists(
            &reports,
            &report_manifest_key(Some("batch-reports"), &job_id)
        )
        .await,
        "no completion report before the job ends"
    );

    let id = [(EXAMPLE_JOB_ID, job_id.as_str())];
    control(&s, event("control-update-job-status-confirm.json", &id)).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    s.assert_tagged_by_the_events(&photos).await;
}

#[tokio::test]
async fn control_events_create_describe_list_reprioritise_confirm_and_cancel_jobs() {
    let s = stack().await;
    let (photos, manifests, reports) = (
        s.bucket("photos"),
        s.bucket("manifests"),
        s.bucket("reports"),
    );
    for bucket in [&photos, &manifests, &reports] {
        s.create_bucket(bucket).await;
    }
    s.put_photos(&photos).await;
    let etag = s.put_create_job_manifest(&manifests, &photos).await;
    let token = format!("tag-photos-{}", s.id);
    let create = |token: &str| {
        event(
            "control-create-job.json",
            &[
                (EXAMPLE_MANIFEST_BUCKET, manifests.as_str()),
                (EXAMPLE_MANIFEST_ETAG, etag.as_str()),
                (EXAMPLE_REPORT_BUCKET, reports.as_str()),
                (EXAMPLE_TOKEN, token),
            ],
        )
    };

    // CreateJob: a JobId, and the same one again for the same ClientRequestToken.
    let created = control(&s, create(&token)).await;
    let job_id = created["JobId"]
        .as_str()
        .expect("CreateJob answers a JobId")
        .to_string();
    assert_eq!(created, json!({"JobId": job_id}));
    assert_eq!(
        control(&s, create(&token)).await,
        created,
        "idempotent on the token"
    );

    // DryRunJob: the same request counted and priced, and no second job.
    let dry = control(
        &s,
        event(
            "control-dry-run-job.json",
            &[
                (EXAMPLE_MANIFEST_BUCKET, manifests.as_str()),
                (EXAMPLE_MANIFEST_ETAG, etag.as_str()),
                (EXAMPLE_REPORT_BUCKET, reports.as_str()),
            ],
        ),
    )
    .await;
    assert_eq!(dry["TotalNumberOfTasks"], PHOTO_KEYS.len(), "{dry}");
    assert_eq!(dry["FirstTasks"][0]["Bucket"], photos.as_str(), "{dry}");
    assert_eq!(dry["Duration"]["LimitedBy"], "MaxTasksPerSecond", "{dry}");
    assert!(
        dry["Cost"]["S3BatchOperationsTotalUsd"].as_f64().unwrap() > 0.25,
        "{dry}"
    );

    // The planner reads the manifest through and suspends the job for confirmation.
    plan_with_event(&s, &job_id).await;
    assert_eq!(s.job(&job_id).await.status, JobStatus::Suspended);

    let id = [(EXAMPLE_JOB_ID, job_id.as_str())];
    let described = control(&s, event("control-describe-job.json", &id)).await;
    let job = &described["Job"];
    assert_eq!(job["JobId"], job_id.as_str());
    assert!(
        job["JobArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("job/{job_id}")),
        "{job}"
    );
    assert_eq!(job["Status"], "Suspended");
    assert_eq!(job["SuspendedCause"], "AwaitingConfirmation");
    assert_eq!(job["ConfirmationRequired"], true);
    assert_eq!(job["Priority"], 10);
    assert_eq!(job["Description"], "Tag November photos for archiving");
    assert_eq!(
        job["Operation"]["S3PutObjectTagging"]["TagSet"],
        tag_set_json()
    );
    assert_eq!(
        job["Manifest"]["Location"]["ObjectArn"],
        format!("arn:aws:s3:::{manifests}/{CREATE_JOB_MANIFEST_KEY}")
    );
    assert_eq!(job["Report"]["Bucket"], format!("arn:aws:s3:::{reports}"));
    assert_eq!(
        job["ProgressSummary"]["TotalNumberOfTasks"],
        PHOTO_KEYS.len()
    );
    assert_eq!(
        job["RoleArn"],
        "arn:aws:iam::123456789012:role/batchops-job-role"
    );
    assert!(job["CreationTime"].is_string());

    let priority = control(&s, event("control-update-job-priority.json", &id)).await;
    assert_eq!(priority, json!({"JobId": job_id, "Priority": 50}));
    assert_eq!(s.job(&job_id).await.priority, 50);

    let rate = control(&s, event("control-update-job-rate.json", &id)).await;
    assert_eq!(rate, json!({"JobId": job_id, "MaxTasksPerSecond": 200}));
    assert_eq!(s.job(&job_id).await.max_tasks_per_second, Some(200));
    let tags = json!({"Tags": [{"Key": "team", "Value": "storage"},
                               {"Key": "cost-center", "Value": "1234"}]});
    assert_eq!(
        control(&s, event("control-put-job-tagging.json", &id)).await,
        json!({})
    );
    assert_eq!(
        control(&s, event("control-get-job-tagging.json", &id)).await,
        tags
    );

    let listed = control(&s, event("control-list-jobs.json", &[])).await;
    let jobs = listed["Jobs"].as_array().expect("ListJobs answers Jobs");
    assert_eq!(jobs.len(), 1, "{listed}");
    assert_eq!(jobs[0]["JobId"], job_id.as_str());
    assert_eq!(jobs[0]["Status"], "Suspended");
    assert_eq!(jobs[0]["Operation"], "S3PutObjectTagging");
    assert_eq!(jobs[0]["Priority"], 50);

    // Confirmed, the job runs to completion and tags every photo.
    let confirmed = control(&s, event("control-update-job-status-confirm.json", &id)).await;
    assert_eq!(
        confirmed,
        json!({"JobId": job_id, "Status": "Ready",
               "StatusUpdateReason": "Reviewed the manifest and the tag set"})
    );
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    s.assert_tagged_by_the_events(&photos).await;
    assert!(
        s.exists(
            &reports,
            &report_manifest_key(Some("batch-reports"), &job_id)
        )
        .await,
        "the completion report is written where the event's Report says"
    );

    // Listed by its tag once Complete; then untagged; cloned; nothing failed to run again.
    let by_tag = control(&s, event("control-list-jobs-by-tag.json", &[])).await;
    let ids: Vec<&Value> = by_tag["Jobs"]
        .as_array()
        .expect("ListJobs answers Jobs")
        .iter()
        .map(|j| &j["JobId"])
        .collect();
    assert_eq!(ids, [&json!(job_id)], "{by_tag}");
    assert_eq!(
        control(&s, event("control-delete-job-tagging.json", &id)).await,
        json!({})
    );
    assert_eq!(
        control(&s, event("control-get-job-tagging.json", &id)).await,
        json!({"Tags": []})
    );
    let clone = control(&s, event("control-clone-job.json", &id)).await;
    let clone_id = clone["JobId"].as_str().expect("CloneJob answers a JobId");
    assert_ne!(clone_id, job_id);
    let cloned = s.job(clone_id).await;
    assert!(cloned.confirmation_required());
    assert_eq!(cloned.max_tasks_per_second, Some(200));
    control(
        &s,
        json!({"Action": "UpdateJobStatus", "Input": {"JobId": clone_id,
               "RequestedJobStatus": "Cancelled"}}),
    )
    .await;
    s.drain(&s.ctx.settings.plan_queue_url).await;
    let rerun = control::handle(&s.ctx, event("control-rerun-failed-tasks.json", &id))
        .await
        .unwrap_err();
    assert!(rerun.to_string().contains("no failed tasks"), "{rerun}");

    // A second job, cancelled while it awaits confirmation.
    let second = control(&s, create(&format!("{token}-second"))).await;
    let second_id = second["JobId"].as_str().unwrap().to_string();
    assert_ne!(second_id, job_id);
    plan_with_event(&s, &second_id).await;
    assert_eq!(s.job(&second_id).await.status, JobStatus::Suspended);
    let cancelled = control(
        &s,
        event(
            "control-update-job-status-cancel.json",
            &[(EXAMPLE_JOB_ID, &second_id)],
        ),
    )
    .await;
    assert_eq!(
        cancelled,
        json!({"JobId": second_id, "Status": "Cancelled", "StatusUpdateReason": "Wrong tag value"})
    );
    let described = control(
        &s,
        event("control-describe-job.json", &[(EXAMPLE_JOB_ID, &second_id)]),
    )
    .await;
    assert_eq!(described["Job"]["Status"], "Cancelled");
    assert_eq!(described["Job"]["StatusUpdateReason"], "Wrong tag value");
    assert!(described["Job"]["TerminationDate"].is_string());
}

#[tokio::test]
async fn template_events_and_a_direct_inventory_arrival_start_a_job() {
    let s = stack().await;
    let (photos, inventory, reports) = (
        s.bucket("photos"),
        s.bucket("inventory"),
        s.bucket("reports"),
    );
    for bucket in [&photos, &inventory, &reports] {
        s.create_bucket(bucket).await;
    }
    s.put_photos(&photos).await;
    let buckets = [
        (EXAMPLE_INVENTORY_BUCKET, inventory.as_str()),
        (EXAMPLE_REPORT_BUCKET, reports.as_str()),
    ];

    let put = control(&s, event("control-put-job-template.json", &buckets)).await;
    assert_eq!(put["Name"], "daily-photo-tagging");
    assert_eq!(
        put["ManifestPrefix"],
        format!("s3://{inventory}/{EXAMPLE_TEMPLATE_PREFIX}")
    );
    assert_eq!(
        put["Template"]["Operation"]["S3PutObjectTagging"]["TagSet"],
        tag_set_json()
    );
    let listed = control(&s, event("control-list-job-templates.json", &[])).await;
    assert_eq!(listed, json!({"JobTemplates": [put]}));

    // S3 Inventory delivers under the template's prefix; S3 tells the planner directly.
    let etag = s
        .put_inventory(&inventory, ARRIVAL_MANIFEST_KEY, &photos)
        .await;
    let arrival = event(
        "planner-s3-inventory-arrival.json",
        &[
            (EXAMPLE_INVENTORY_BUCKET, inventory.as_str()),
            (EXAMPLE_ARRIVAL_ETAG, etag.as_str()),
        ],
    );
    assert_eq!(
        planner::handle(&s.ctx, arrival.clone()).await.unwrap(),
        Value::Null
    );
    let jobs = control::list_jobs(&s.ctx, &Default::default())
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 1, "the arrival starts one job: {jobs:?}");
    let job_id = jobs[0].job_id.clone();
    assert_eq!(
        jobs[0].description.as_deref(),
        Some("Tag every object of each new daily inventory")
    );
    // The same event delivered again starts nothing new, nor does the same arrival through
    // EventBridge (the InventoryTrigger=eventbridge rule's event, when both are switched on).
    planner::handle(&s.ctx, arrival).await.unwrap();
    let bridged = event(
        "planner-eventbridge-inventory-arrival.json",
        &[
            (EXAMPLE_INVENTORY_BUCKET, inventory.as_str()),
            (EXAMPLE_ARRIVAL_ETAG, etag.as_str()),
        ],
    );
    planner::handle(&s.ctx, bridged).await.unwrap();
    assert_eq!(
        control::list_jobs(&s.ctx, &Default::default())
            .await
            .unwrap()
            .jobs
            .len(),
        1
    );

    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.total_tasks, Some(3));
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    s.assert_tagged_by_the_events(&photos).await;

    let deleted = control(&s, event("control-delete-job-template.json", &[])).await;
    assert_eq!(deleted, json!({}));
    let listed = control(&s, event("control-list-job-templates.json", &[])).await;
    assert_eq!(listed, json!({"JobTemplates": []}));
}

#[tokio::test]
async fn an_inventory_notification_through_sqs_starts_a_job() {
    let s = stack().await;
    let (photos, inventory, reports) = (
        s.bucket("photos"),
        s.bucket("inventory"),
        s.bucket("reports"),
    );
    for bucket in [&photos, &inventory, &reports] {
        s.create_bucket(bucket).await;
    }
    s.put_photos(&photos).await;
    // The notification's key (URL-encoded in the event) is not under the example template's
    // prefix: this template covers it.
    control(
        &s,
        event(
            "control-put-job-template.json",
            &[
                (EXAMPLE_INVENTORY_BUCKET, inventory.as_str()),
                (EXAMPLE_REPORT_BUCKET, reports.as_str()),
                (EXAMPLE_TEMPLATE_PREFIX, NOTIFIED_TEMPLATE_PREFIX),
            ],
        ),
    )
    .await;

    let etag = s
        .put_inventory(&inventory, NOTIFIED_MANIFEST_KEY, &photos)
        .await;
    let notification = event(
        "planner-sqs-s3-notification.json",
        &[
            (EXAMPLE_INVENTORY_BUCKET, inventory.as_str()),
            (EXAMPLE_NOTIFIED_ETAG, etag.as_str()),
        ],
    );
    assert_eq!(
        planner::handle(&s.ctx, notification).await.unwrap(),
        Value::Null
    );
    let jobs = s.ctx.store().list_jobs(&[]).await.unwrap();
    assert_eq!(jobs.len(), 1, "the notification starts one job");
    let manifest = jobs[0].manifest().unwrap();
    assert_eq!(
        manifest.location.object_arn,
        format!("arn:aws:s3:::{inventory}/{NOTIFIED_MANIFEST_KEY}"),
        "the job reads the manifest under its decoded key"
    );

    let job = s.run_job(&jobs[0].job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    s.assert_tagged_by_the_events(&photos).await;
}

/// A job over the executor event's three photos (the last pinned to `version`), planned: returns
/// its id and the batch id of its only batch, taken off the task queue.
async fn planned_photo_job(
    s: &Stack,
    photos: &str,
    version: &str,
    reports: &str,
) -> (String, String) {
    let rows: String = PHOTO_KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let pinned = if i + 1 == PHOTO_KEYS.len() {
                version
            } else {
                ""
            };
            format!("{photos},{},{pinned}\n", encode_key(key))
        })
        .collect();
    let (etag, _) = s
        .put_version(photos, "manifest.csv", rows.into_bytes())
        .await;
    let request = json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": tag_set_json()}},
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
            "Location": {"ObjectArn": format!("arn:aws:s3:::{photos}/manifest.csv"), "ETag": etag}
        },
        "Report": {"Bucket": format!("arn:aws:s3:::{reports}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "batch-reports", "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batchops-job-role"
    });
    let request = CreateJobRequest::parse(&request.to_string()).unwrap();
    let job_id = control::create_job(&s.ctx, request, None)
        .await
        .unwrap()
        .job_id;
    s.drain(&s.ctx.settings.plan_queue_url).await;
    planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let job = s.job(&job_id).await;
    assert_eq!(job.status, JobStatus::Active);
    assert_eq!(job.progress.batches_planned, Some(1));
    let queued = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    assert_eq!(queued.len(), 1, "three small tasks make one batch");
    let batch = TaskBatch::from_body(&queued[0]).unwrap();
    (job_id, batch.batch_id)
}

/// Feeds executor-sqs-batch.json as the delivery of the job's batch and checks it commits.
async fn execute_with_event(s: &Stack, job_id: &str, batch_id: &str, photos: &str, version: &str) {
    let sqs = event(
        "executor-sqs-batch.json",
        &[
            (EXAMPLE_JOB_ID, job_id),
            (EXAMPLE_BATCH_ID, batch_id),
            (EXAMPLE_PHOTOS_BUCKET, photos),
            (EXAMPLE_VERSION_ID, version),
        ],
    );
    let body = sqs
        .pointer("/Records/0/body")
        .and_then(Value::as_str)
        .unwrap();
    let batch = TaskBatch::from_body(body).unwrap();
    let keys: Vec<&str> = batch.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys, PHOTO_KEYS,
        "the event's batch holds the scenario's photos"
    );
    assert_eq!(batch.tasks[2].version_id.as_deref(), Some(version));

    let sqs: SqsEvent =
        serde_json::from_value(sqs).expect("executor-sqs-batch.json is an SQS event");
    let response = executor::handle(&s.ctx, sqs).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the batch is committed, not handed back to SQS"
    );
    let job = s.job(job_id).await;
    assert_eq!(
        job.status,
        JobStatus::Active,
        "finalizing is the reporter's"
    );
    assert_eq!(job.progress.batches_committed, 1);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    assert!(job.progress.all_batches_committed());
}

/// Takes the finalize request the last commit queued and checks that the reporter events carry
/// the same body.
async fn take_finalize_request(s: &Stack, job_id: &str) {
    let queued = s.drain(&s.ctx.settings.report_queue_url).await;
    let sqs = event("reporter-finalize.json", &[(EXAMPLE_JOB_ID, job_id)]);
    let direct = event("reporter-finalize-direct.json", &[(EXAMPLE_JOB_ID, job_id)]);
    assert_eq!(
        queued,
        vec![first_body(&sqs)],
        "the event's body is what the executor queues"
    );
    assert_eq!(
        direct,
        first_body(&sqs),
        "the direct event is the queued body itself"
    );
}

/// The sweeper's scheduled event on a job whose finalize request was lost: the answer lists the
/// repair, and the resent request finishes the job.
#[tokio::test]
async fn the_scheduled_event_makes_the_sweeper_resend_a_lost_finalize_request() {
    let mut s = stack().await;
    s.ctx.settings.finalize_resend_after = Duration::ZERO;
    let (photos, reports) = (s.bucket("photos"), s.bucket("reports"));
    s.create_bucket(&photos).await;
    s.create_bucket(&reports).await;
    s.enable_versioning(&photos).await;
    let version = s.put_photos(&photos).await.expect("a version id");
    let (job_id, batch_id) = planned_photo_job(&s, &photos, &version, &reports).await;
    execute_with_event(&s, &job_id, &batch_id, &photos, &version).await;
    // Lost: taken off the queue and never handled.
    take_finalize_request(&s, &job_id).await;
    let answer = sweeper::handle(&s.ctx, event("sweeper-scheduled.json", &[]))
        .await
        .unwrap();
    let repairs = answer["Repairs"].as_array().expect("the repairs made");
    assert_eq!(repairs.len(), 1, "{answer}");
    assert_eq!(repairs[0]["JobId"], job_id.as_str());
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
}

#[tokio::test]
async fn executor_and_reporter_events_commit_a_batch_and_finish_the_job() {
    let s = stack().await;
    let (photos, reports) = (s.bucket("photos"), s.bucket("reports"));
    s.create_bucket(&photos).await;
    s.create_bucket(&reports).await;
    s.enable_versioning(&photos).await;
    let version = s
        .put_photos(&photos)
        .await
        .expect("a versioned bucket answers version ids");
    // A newer version on top: the pinned version, not the latest, is the one tagged.
    s.put_version(&photos, PHOTO_KEYS[2], b"newer".to_vec())
        .await;

    // SQS event to the reporter: the answer is a partial batch response.
    let (job_id, batch_id) = planned_photo_job(&s, &photos, &version, &reports).await;
    execute_with_event(&s, &job_id, &batch_id, &photos, &version).await;
    let expected: BTreeMap<String, String> = EVENT_TAGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in &PHOTO_KEYS[..2] {
        assert_eq!(s.tags(&photos, key).await, expected, "{key}");
    }
    assert_eq!(
        s.tags_of_version(&photos, PHOTO_KEYS[2], Some(&version))
            .await,
        expected
    );
    assert!(
        s.tags(&photos, PHOTO_KEYS[2]).await.is_empty(),
        "the latest version is not the task's"
    );

    take_finalize_request(&s, &job_id).await;
    let finalize = event("reporter-finalize.json", &[(EXAMPLE_JOB_ID, &job_id)]);
    let answer = reporter::handle(&s.ctx, finalize).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(s.job(&job_id).await.status, JobStatus::Complete);
    assert!(
        s.exists(
            &reports,
            &report_manifest_key(Some("batch-reports"), &job_id)
        )
        .await
    );

    // The direct event (a console test) answers with the final status.
    let (second_id, batch_id) = planned_photo_job(&s, &photos, &version, &reports).await;
    execute_with_event(&s, &second_id, &batch_id, &photos, &version).await;
    take_finalize_request(&s, &second_id).await;
    let direct = event(
        "reporter-finalize-direct.json",
        &[(EXAMPLE_JOB_ID, &second_id)],
    );
    let answer = reporter::handle(&s.ctx, direct).await.unwrap();
    assert_eq!(
        answer,
        json!({"FinalizeJobId": second_id, "Status": "Complete"})
    );
    assert_eq!(s.job(&second_id).await.status, JobStatus::Complete);
    assert!(
        s.exists(
            &reports,
            &report_manifest_key(Some("batch-reports"), &second_id)
        )
        .await
    );
}

#[tokio::test]
async fn the_create_job_file_makes_a_job() {
    let s = stack().await;
    let (photos, manifests, reports) = (
        s.bucket("photos"),
        s.bucket("manifests"),
        s.bucket("reports"),
    );
    for bucket in [&photos, &manifests, &reports] {
        s.create_bucket(bucket).await;
    }
    s.put_photos(&photos).await;
    let etag = s.put_create_job_manifest(&manifests, &photos).await;
    let text = event_text(
        "create-job-tagging.json",
        &[
            (EXAMPLE_MANIFEST_BUCKET, manifests.as_str()),
            (EXAMPLE_MANIFEST_ETAG, etag.as_str()),
            (EXAMPLE_REPORT_BUCKET, reports.as_str()),
        ],
    );
    let request = CreateJobRequest::parse(&text).unwrap();
    let created = control::create_job(&s.ctx, request, None).await.unwrap();
    let queued = s.drain(&s.ctx.settings.plan_queue_url).await;
    assert_eq!(queued, vec![json!({"PlanJobId": created.job_id})]);
    planner::plan_job(&s.ctx, &created.job_id).await.unwrap();
    let job = s.job(&created.job_id).await;
    assert_eq!(
        job.status,
        JobStatus::Suspended,
        "the file asks for confirmation"
    );
    assert_eq!(job.progress.total_tasks, Some(3));
    assert_eq!(
        job.request.client_request_token.as_deref(),
        Some(EXAMPLE_TOKEN)
    );
}

/// The file's notification configuration as the SDK's type; fails on a member it does not map,
/// so that nothing in the file is dropped silently.
fn notification_configuration(file: &Value) -> NotificationConfiguration {
    let object = file.as_object().expect("a JSON object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["QueueConfigurations"]);
    let mut configuration = NotificationConfiguration::builder();
    for queue in file["QueueConfigurations"].as_array().unwrap() {
        let members: BTreeSet<&str> = queue
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            BTreeSet::from(["Id", "QueueArn", "Events", "Filter"])
        );
        let mut key_filter = S3KeyFilter::builder();
        for rule in queue["Filter"]["Key"]["FilterRules"].as_array().unwrap() {
            key_filter = key_filter.filter_rules(
                FilterRule::builder()
                    .name(FilterRuleName::from(rule["Name"].as_str().unwrap()))
                    .value(rule["Value"].as_str().unwrap())
                    .build(),
            );
        }
        let mut builder = QueueConfiguration::builder()
            .id(queue["Id"].as_str().unwrap())
            .queue_arn(queue["QueueArn"].as_str().unwrap())
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(key_filter.build())
                    .build(),
            );
        for name in queue["Events"].as_array().unwrap() {
            builder = builder.events(Event::from(name.as_str().unwrap()));
        }
        configuration = configuration.queue_configurations(builder.build().unwrap());
    }
    configuration.build()
}

#[tokio::test]
async fn the_inventory_bucket_notification_sends_manifest_arrivals_to_the_plan_queue() {
    let s = stack().await;
    let inventory = s.bucket("inventory");
    s.create_bucket(&inventory).await;
    let arn = s.plan_queue_arn().await;
    let file = event(
        "inventory-bucket-notification.json",
        &[(EXAMPLE_PLAN_QUEUE_ARN, arn.as_str())],
    );
    s.ctx
        .s3
        .put_bucket_notification_configuration()
        .bucket(&inventory)
        .notification_configuration(notification_configuration(&file))
        .send()
        .await
        .expect("S3 accepts the notification configuration");

    let stored = s
        .ctx
        .s3
        .get_bucket_notification_configuration()
        .bucket(&inventory)
        .send()
        .await
        .unwrap();
    let queues = stored.queue_configurations();
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].id(), Some("batchops-inventory-manifest"));
    assert_eq!(queues[0].queue_arn(), arn);
    assert_eq!(queues[0].events(), [Event::S3ObjectCreated]);
    let rules = queues[0]
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default();
    let rules: Vec<(String, &str)> = rules
        .iter()
        .map(|r| {
            (
                r.name()
                    .map(|n| n.as_str().to_lowercase())
                    .unwrap_or_default(),
                r.value().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(rules, [("suffix".to_string(), "manifest.json")]);

    // With it, a delivered manifest.json (and nothing else) reaches the planner's queue, in a
    // form the planner reads.
    s.drain(&s.ctx.settings.plan_queue_url).await;
    s.put_version(&inventory, "inv/src/daily/data/x.csv.gz", b"data".to_vec())
        .await;
    s.put_version(&inventory, ARRIVAL_MANIFEST_KEY, b"{}".to_vec())
        .await;
    let bodies = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    let work: Vec<PlannerWork> = bodies
        .iter()
        .flat_map(|body| planner::parse_event(&serde_json::from_str(body).unwrap()).unwrap())
        .collect();
    assert!(
        matches!(work.as_slice(), [PlannerWork::ManifestArrived { bucket, key, .. }]
            if *bucket == inventory && key == ARRIVAL_MANIFEST_KEY),
        "{work:?}"
    );
}
