use super::*;
use crate::error::Error;
use crate::job::{
    CreateJobRequest, FailureReason, Job, JobSource, JobStatus, JobTracking, Progress, S3Tag,
};
use crate::plan::{PlanCheckpoint, PlanPart};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeZone;
use chrono::{DateTime, Utc};
use std::time::Duration;

fn request() -> CreateJobRequest {
    CreateJobRequest::parse(
        r#"{
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
        "Report": {"Bucket": "arn:aws:s3:::reports", "Enabled": true, "Prefix": "p",
                   "Format": "Report_CSV_20180820", "ReportScope": "FailedTasksOnly"},
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv", "ETag": "e"}},
        "ClientRequestToken": "tok",
        "Priority": 7,
        "Description": "d"
    }"#,
    )
    .unwrap()
}

fn time(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, nanos).unwrap()
}

fn full_job() -> Job {
    Job {
        job_id: "0b9f7c3e-1111-2222-3333-444455556666".into(),
        request: request(),
        status: JobStatus::Failed,
        priority: 42,
        creation_time: time(0, 123_456_789),
        termination_date: Some(time(100, 0)),
        suspended_date: Some(time(10, 5)),
        active_since: Some(time(20, 999)),
        elapsed_active_seconds: 77,
        status_update_reason: Some("because".into()),
        failure_reasons: vec![FailureReason {
            failure_code: "TaskFailureThresholdExceeded".into(),
            failure_reason: "too many".into(),
        }],
        progress: Progress {
            total_tasks: Some(3000),
            succeeded: 1,
            failed: 2000,
            not_run: 999,
            batches_planned: Some(30),
            batches_committed: 30,
            canary_batches: Some(3),
        },
        finalize_sent: true,
        tags: vec![S3Tag {
            key: "team".into(),
            value: "a, \"b\"".into(),
        }],
        max_tasks_per_second: Some(250),
        tracking: JobTracking {
            finalize_at: Some(time(90, 1)),
            last_progress_at: Some(time(80, 2)),
            source: Some(JobSource {
                manifest: request().manifest.unwrap(),
                pin: crate::manifest::ManifestPin {
                    etag: Some("\"e\"".into()),
                    version_id: Some("v1".into()),
                },
                tasks: Some(3000),
            }),
            canary_done: true,
        },
    }
}

#[test]
fn job_round_trips_through_an_item() {
    let job = full_job();
    let item = job_to_item(&job).unwrap();
    assert_eq!(item[PK], s(&format!("JOB#{}", job.job_id)));
    assert_eq!(item[SK], s("JOB"));
    assert_eq!(job_from_item(&item).unwrap(), job);
}

#[test]
fn a_job_stored_before_job_tagging_has_the_tags_of_its_request() {
    let mut job = full_job();
    let asked = vec![S3Tag {
        key: "k".into(),
        value: "v".into(),
    }];
    job.request.tags = Some(asked.clone());
    let mut item = job_to_item(&job).unwrap();
    item.remove(A_TAGS);
    assert_eq!(job_from_item(&item).unwrap().tags, asked);
    // Once tagging has run, the stored set wins, even when it is empty.
    job.tags = vec![];
    let item = job_to_item(&job).unwrap();
    assert_eq!(item[A_TAGS], s("[]"));
    assert_eq!(job_from_item(&item).unwrap().tags, vec![]);
}

#[test]
fn new_job_round_trips_and_omits_unset_attributes() {
    let job = Job {
        status: JobStatus::New,
        termination_date: None,
        suspended_date: None,
        active_since: None,
        elapsed_active_seconds: 0,
        status_update_reason: None,
        failure_reasons: vec![],
        progress: Progress::default(),
        finalize_sent: false,
        tags: vec![],
        max_tasks_per_second: None,
        tracking: JobTracking::default(),
        ..full_job()
    };
    let item = job_to_item(&job).unwrap();
    for absent in [
        A_TERMINATION_DATE,
        A_SUSPENDED_DATE,
        A_ACTIVE_SINCE,
        A_REASON,
        A_TOTAL,
        A_PLANNED,
        A_RATE,
    ] {
        assert!(!item.contains_key(absent), "{absent} should be absent");
    }
    assert_eq!(job_from_item(&item).unwrap(), job);
}

#[test]
fn counters_missing_from_an_item_read_as_zero() {
    let mut item = job_to_item(&full_job()).unwrap();
    for name in [
        A_SUCCEEDED,
        A_FAILED,
        A_NOT_RUN,
        A_COMMITTED,
        A_FINALIZE,
        A_ELAPSED_ACTIVE,
    ] {
        item.remove(name);
    }
    let job = job_from_item(&item).unwrap();
    assert_eq!(job.progress.succeeded, 0);
    assert_eq!(job.progress.batches_committed, 0);
    assert_eq!(job.elapsed_active_seconds, 0);
    assert!(!job.finalize_sent);
}

#[test]
fn malformed_items_are_errors_not_panics() {
    let mut item = job_to_item(&full_job()).unwrap();
    item.insert(A_STATUS.into(), s("Sleeping"));
    assert!(job_from_item(&item).is_err());
    let mut item = job_to_item(&full_job()).unwrap();
    item.insert(A_SUCCEEDED.into(), s("many"));
    let err = job_from_item(&item).unwrap_err().to_string();
    assert!(err.contains("succeeded"), "{err}");
    let mut item = job_to_item(&full_job()).unwrap();
    item.insert(PK.into(), s("TEMPLATE"));
    assert!(job_from_item(&item).is_err());
}

#[test]
fn batch_round_trips_through_an_item() {
    let batch = BatchRecord {
        batch_id: "b-00000042".into(),
        counts: BatchCounts {
            succeeded: 3,
            failed: 2,
            not_run: 1,
        },
        tasks: 9,
        tasks_done: 6,
        parts: vec![
            "parts/job/b-00000042/abc.csv".into(),
            "parts/job/b-00000042/def.csv".into(),
        ],
        updated_at: Some("2026-12-02T10:00:00.123Z".parse().unwrap()),
        deferral: Some(Deferral {
            id: "d1".into(),
            due: "2026-12-02T10:00:20.123Z".parse().unwrap(),
        }),
    };
    let item = batch_to_item("j", &batch);
    assert_eq!(item[SK], s("BATCH#b-00000042"));
    assert_eq!(batch_from_item(&item).unwrap(), batch);
    assert!(!batch.is_done());
    let without_part = BatchRecord {
        parts: vec![],
        tasks: 6,
        ..batch
    };
    assert!(without_part.is_done());
    assert_eq!(
        batch_from_item(&batch_to_item("j", &without_part)).unwrap(),
        without_part
    );
}

#[test]
fn plan_checkpoint_round_trips_through_an_item() {
    for checkpoint in [
        PlanCheckpoint::start(PlanPart::Whole),
        PlanCheckpoint {
            part: PlanPart::InventoryFile(12),
            next_task: 123_456_789,
            batches: 4321,
            done: true,
            continued_at: Some(123_000_000),
            reserved: 4400,
            updated_at: Some(time(5, 0)),
            resume: Some(crate::manifest::ResumePoint {
                task: 123_456_000,
                byte: 9_876_543_210,
                line: 123_456_001,
            }),
        },
    ] {
        let item = checkpoint_to_item("j", &checkpoint);
        assert_eq!(item[PK], s("JOB#j"));
        assert_eq!(
            item[SK],
            s(&format!("PLAN#{}", checkpoint.part.id())),
            "plan items never start with BATCH#, so list_batches does not see them"
        );
        assert_eq!(checkpoint_from_item(&item).unwrap(), checkpoint);
    }
    let mut item = checkpoint_to_item("j", &PlanCheckpoint::start(PlanPart::Whole));
    item.insert(A_PART.into(), s("x7"));
    assert!(checkpoint_from_item(&item).is_err());
}

#[test]
fn template_round_trips_through_an_item() {
    let mut req = request();
    req.manifest = None;
    req.client_request_token = None;
    let template = JobTemplate {
        name: "nightly".into(),
        manifest_bucket: "inventory".into(),
        manifest_prefix: "inv/source/config/".into(),
        request: req,
    };
    let item = template_to_item(&template).unwrap();
    assert_eq!(item[PK], s("TEMPLATE"));
    assert_eq!(template_from_item(&item).unwrap(), template);
}

#[test]
fn entering_active_starts_the_timer() {
    let now = time(50, 0);
    let update = transition_update(JobStatus::Ready, JobStatus::Active, None, now, None, None);
    assert_eq!(
        update.expression(),
        "SET #status = :to, active_since = :since"
    );
    assert!(update
        .values
        .contains(&(":since".into(), s(&time_to_string(now)))));
}

#[test]
fn leaving_active_adds_whole_seconds_and_stops_the_timer() {
    let update = transition_update(
        JobStatus::Active,
        JobStatus::Complete,
        Some(time(10, 0)),
        time(75, 900_000_000),
        Some("done"),
        None,
    );
    let expression = update.expression();
    assert!(
        expression.contains("termination_date = :now"),
        "{expression}"
    );
    assert!(
        expression.contains("elapsed_active_seconds = if_not_exists"),
        "{expression}"
    );
    assert!(expression.ends_with(" REMOVE active_since"), "{expression}");
    assert!(
        expression.contains("status_update_reason = :reason"),
        "{expression}"
    );
    assert!(update.values.contains(&(":elapsed".into(), n(65))));
    assert!(update.values.contains(&(":to".into(), s("Complete"))));
}

#[test]
fn suspension_and_failures_are_recorded() {
    let update = transition_update(
        JobStatus::Preparing,
        JobStatus::Suspended,
        None,
        time(0, 0),
        None,
        None,
    );
    assert!(update.expression().contains("suspended_date = :now"));
    assert!(!update.expression().contains("termination_date"));
    assert!(!update.expression().contains("canary"));
    // Suspended after a canary: the canary is done and the finalize claim is free again for
    // the final report.
    for from in [JobStatus::Active, JobStatus::Pausing, JobStatus::Paused] {
        let update = transition_update(from, JobStatus::Suspended, None, time(0, 0), None, None);
        let expression = update.expression();
        assert!(
            expression.contains("canary_done = :canary_done"),
            "{expression}"
        );
        assert!(
            expression.contains("REMOVE canary_batches, finalize_sent, finalize_at"),
            "{expression}"
        );
    }
    let failure = FailureReason {
        failure_code: "ManifestReadFailed".into(),
        failure_reason: "ETag mismatch".into(),
    };
    let update = transition_update(
        JobStatus::Preparing,
        JobStatus::Failed,
        None,
        time(0, 0),
        None,
        Some(&failure),
    );
    assert!(update.expression().contains("list_append"));
    assert!(update.values.contains(&(
        ":failure".into(),
        AttributeValue::L(vec![failure_to_value(&failure)])
    )));
    assert!(update.values.iter().any(|(name, _)| name == ":empty"));
}

#[test]
fn the_list_index_orders_jobs_newest_first_by_text() {
    let job = |id: &str, secs: i64, nanos: u32| Job {
        job_id: id.into(),
        creation_time: time(secs, nanos),
        ..full_job()
    };
    let mut keys = [
        list_sort_key(&job("a", 1, 0)),
        list_sort_key(&job("b", 3, 0)),
        list_sort_key(&job("c", 1, 500_000_000)),
        list_sort_key(&job("d", 1, 5)),
    ];
    keys.sort_by(|x, y| y.cmp(x));
    let ids: Vec<&str> = keys.iter().map(|k| k.rsplit('#').next().unwrap()).collect();
    assert_eq!(ids, ["b", "c", "d", "a"], "{keys:?}");
}

#[test]
fn list_tokens_round_trip_and_bad_ones_are_refused() {
    let item = Item::from([
        (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
        (
            A_LIST_SK.to_string(),
            s("2026-12-02T00:00:00.000000000Z#j1"),
        ),
        (PK.to_string(), s("JOB#j1")),
        (SK.to_string(), s(JOB_SK)),
    ]);
    let token = encode_list_token(&item).unwrap();
    assert_eq!(decode_list_token(&token).unwrap(), item);
    for bad in ["", "not base64!", "e30"] {
        assert!(
            matches!(decode_list_token(bad), Err(Error::InvalidRequest(_))),
            "{bad}"
        );
    }
}

#[test]
fn commit_backoff_grows_and_stays_bounded() {
    for attempt in 1..20 {
        let delay = commit_backoff(attempt);
        assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_secs(4));
    }
    let total: Duration = (1..10).map(commit_backoff).sum();
    assert!(total >= Duration::from_secs(8), "{total:?}");
}
