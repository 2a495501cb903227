//! The store and the control plane against a real moto server: job records, exactly-once batch
//! commits, the finalize claim, status transitions, job templates and the control requests.

use crate::common;

use batchops::control::{self, ControlRequest};
use batchops::job::{CreateJobRequest, FailureReason, JobStatus, INVENTORY_CSV_FORMAT};
use batchops::store::{BatchCounts, JobTemplate, PutJobOutcome, Store};
use batchops::{Context, Error};
use serde_json::{json, Value};

fn create_job_json() -> Value {
    json!({
        "AccountId": "123456789012",
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "blue"}]}},
        "Report": {"Bucket": "arn:aws:s3:::reports", "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "batch", "ReportScope": "AllTasks"},
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "abc"}},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch",
        "Description": "tag everything"
    })
}

fn request(tweak: impl FnOnce(&mut Value)) -> CreateJobRequest {
    let mut value = create_job_json();
    tweak(&mut value);
    CreateJobRequest::parse(&value.to_string()).unwrap()
}

fn template_request() -> CreateJobRequest {
    request(|v| {
        v.as_object_mut().unwrap().remove("Manifest");
    })
}

async fn create(ctx: &Context, req: CreateJobRequest) -> String {
    control::create_job(ctx, req, None).await.unwrap().job_id
}

async fn plan_requests(ctx: &Context) -> Vec<String> {
    common::drain_queue(ctx, &ctx.settings.plan_queue_url)
        .await
        .into_iter()
        .map(|body| {
            let value: Value = serde_json::from_str(&body).unwrap();
            value["PlanJobId"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn status(ctx: &Context, job_id: &str) -> JobStatus {
    ctx.store().get_job(job_id).await.unwrap().status
}

#[tokio::test]
async fn create_table_is_idempotent() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    store.create_table_if_missing().await.unwrap();
    store.create_table_if_missing().await.unwrap();
    assert!(store.list_jobs(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_job_stores_queues_and_describes_it_in_s3_control_shape() {
    let ctx = common::test_context().await;
    let job_id = create(&ctx, request(|_| {})).await;
    assert_eq!(plan_requests(&ctx).await, vec![job_id.clone()]);

    let described =
        serde_json::to_value(control::describe_job(&ctx, &job_id).await.unwrap()).unwrap();
    let job = &described["Job"];
    assert_eq!(job["JobId"], job_id.as_str());
    assert_eq!(job["Status"], "Preparing");
    assert_eq!(job["Priority"], 10);
    assert_eq!(job["ConfirmationRequired"], false);
    assert_eq!(job["Description"], "tag everything");
    assert_eq!(
        job["JobArn"],
        format!("arn:aws:s3:us-east-1:123456789012:job/{job_id}")
    );
    assert_eq!(job["Operation"], create_job_json()["Operation"]);
    assert_eq!(job["Manifest"], create_job_json()["Manifest"]);
    assert_eq!(job["Report"], create_job_json()["Report"]);
    assert_eq!(job["ProgressSummary"]["NumberOfTasksSucceeded"], 0);
    assert_eq!(
        job["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"],
        0
    );
    assert!(job["CreationTime"].as_str().unwrap().ends_with('Z'));
    assert!(job.get("TerminationDate").is_none());
    assert!(job.get("FailureReasons").is_none());
}

#[tokio::test]
async fn create_job_refuses_an_invalid_request_and_stores_nothing() {
    let ctx = common::test_context().await;
    let no_manifest = template_request();
    let err = control::create_job(&ctx, no_manifest, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
    assert!(
        err.to_string()
            .contains("a Manifest or a ManifestGenerator is required"),
        "{err}"
    );
    assert!(ctx.store().list_jobs(&[]).await.unwrap().is_empty());
    assert!(plan_requests(&ctx).await.is_empty());
}

#[tokio::test]
async fn confirmation_override_wins_over_the_request() {
    let ctx = common::test_context().await;
    let confirm = request(|v| v["ConfirmationRequired"] = json!(true));
    let job_id = control::create_job(&ctx, confirm, Some(false))
        .await
        .unwrap()
        .job_id;
    let job = ctx.store().get_job(&job_id).await.unwrap();
    assert!(!job.confirmation_required());
    let job_id = control::create_job(&ctx, request(|_| {}), Some(true))
        .await
        .unwrap()
        .job_id;
    let job = ctx.store().get_job(&job_id).await.unwrap();
    assert!(job.confirmation_required());
}

#[tokio::test]
async fn client_request_token_makes_create_job_idempotent() {
    let ctx = common::test_context().await;
    let with_token = || request(|v| v["ClientRequestToken"] = json!("token-1"));
    let first = create(&ctx, with_token()).await;
    let second = create(&ctx, with_token()).await;
    assert_eq!(first, second);
    let other = create(
        &ctx,
        request(|v| v["ClientRequestToken"] = json!("token-2")),
    )
    .await;
    assert_ne!(first, other);
    let mut queued = plan_requests(&ctx).await;
    queued.sort();
    let mut expected = vec![first, other];
    expected.sort();
    assert_eq!(
        queued, expected,
        "one plan request per job, none for the repeat"
    );
    assert_eq!(ctx.store().list_jobs(&[]).await.unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_create_jobs_with_one_token_make_one_job() {
    let ctx = common::test_context().await;
    let calls = (0..6).map(|_| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            create(&ctx, request(|v| v["ClientRequestToken"] = json!("same"))).await
        })
    });
    let ids: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(plan_requests(&ctx).await, vec![ids[0].clone()]);
    assert_eq!(ctx.store().list_jobs(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn put_new_job_reports_the_existing_job_of_a_token() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let req = request(|v| v["ClientRequestToken"] = json!("t"));
    let first = control::new_job("job-first".into(), req.clone(), chrono::Utc::now());
    let second = control::new_job("job-second".into(), req, chrono::Utc::now());
    assert_eq!(
        store.put_new_job(&first).await.unwrap(),
        PutJobOutcome::Created
    );
    assert_eq!(
        store.put_new_job(&second).await.unwrap(),
        PutJobOutcome::Existing("job-first".into())
    );
    assert!(matches!(
        store.get_job("job-second").await,
        Err(Error::JobNotFound(_))
    ));
    // The stored job reads back as it was written.
    assert_eq!(store.get_job("job-first").await.unwrap(), first);
}

#[tokio::test]
async fn list_jobs_filters_by_status_newest_first() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let a = create(&ctx, request(|_| {})).await;
    let b = create(&ctx, request(|_| {})).await;
    let c = create(&ctx, request(|_| {})).await;
    assert!(store
        .transition(&b, JobStatus::Preparing, JobStatus::Cancelled, None, None)
        .await
        .unwrap());

    let in_statuses = |statuses: &[JobStatus]| control::ListJobsInput {
        job_statuses: statuses.to_vec(),
        ..Default::default()
    };
    let all = control::list_jobs(&ctx, &in_statuses(&[])).await.unwrap();
    let ids: Vec<_> = all.jobs.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(ids, vec![c.clone(), b.clone(), a.clone()]);
    let cancelled = control::list_jobs(&ctx, &in_statuses(&[JobStatus::Cancelled]))
        .await
        .unwrap();
    assert_eq!(cancelled.jobs.len(), 1);
    assert_eq!(cancelled.jobs[0].job_id, b);
    assert!(cancelled.jobs[0].termination_date.is_some());
    let both = control::list_jobs(
        &ctx,
        &in_statuses(&[JobStatus::Cancelled, JobStatus::Preparing]),
    )
    .await
    .unwrap();
    assert_eq!(both.jobs.len(), 3);
    assert!(
        control::list_jobs(&ctx, &in_statuses(&[JobStatus::Complete]))
            .await
            .unwrap()
            .jobs
            .is_empty()
    );

    let value = serde_json::to_value(&all).unwrap();
    assert_eq!(value["Jobs"][0]["Operation"], "S3PutObjectTagging");
    assert_eq!(value["Jobs"][0]["Status"], "Preparing");
    assert!(value["Jobs"][0].get("Manifest").is_none());
}

#[tokio::test]
async fn missing_jobs_are_job_not_found() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    assert!(matches!(store.get_job("nope").await, Err(Error::JobNotFound(id)) if id == "nope"));
    assert!(matches!(
        control::describe_job(&ctx, "nope").await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        store
            .transition("nope", JobStatus::New, JobStatus::Preparing, None, None)
            .await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        store.set_total_tasks("nope", 3).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        store.finish_planning("nope", 3, 1).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        store
            .commit_batch("nope", "b1", BatchCounts::default(), None)
            .await,
        Err(Error::JobNotFound(_))
    ));
    assert!(!claim(&store, "nope").await);
    assert!(matches!(
        control::update_job_priority(&ctx, "nope", 1).await,
        Err(Error::JobNotFound(_))
    ));
    assert!(matches!(
        control::update_job_status(&ctx, "nope", JobStatus::Cancelled, None).await,
        Err(Error::JobNotFound(_))
    ));
    // Nothing was created by the failed updates.
    assert!(store.list_jobs(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_committed_twice_counts_once() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    let counts = BatchCounts {
        succeeded: 7,
        failed: 2,
        not_run: 1,
    };
    assert!(store
        .commit_batch(&job_id, "b-1", counts, Some("parts/b-1/first.csv"))
        .await
        .unwrap());
    assert!(!store
        .commit_batch(&job_id, "b-1", counts, Some("parts/b-1/second.csv"))
        .await
        .unwrap());
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.progress.succeeded, 7);
    assert_eq!(job.progress.failed, 2);
    assert_eq!(job.progress.not_run, 1);
    assert_eq!(job.progress.batches_committed, 1);
    // The first commit's result part wins.
    let batches = store.list_batches(&job_id).await.unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].batch_id, "b-1");
    assert_eq!(batches[0].counts, counts);
    assert_eq!(batches[0].parts, vec!["parts/b-1/first.csv".to_string()]);
}

#[tokio::test]
async fn concurrent_commits_count_every_batch_exactly_once() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    const BATCHES: u64 = 12;
    const COPIES: u64 = 4;
    let commits = (0..BATCHES)
        .flat_map(|batch| (0..COPIES).map(move |copy| (batch, copy)))
        .map(|(batch, copy)| {
            let store = store.clone();
            let job_id = job_id.clone();
            tokio::spawn(async move {
                let counts = BatchCounts {
                    succeeded: batch + 1,
                    failed: 1,
                    not_run: 0,
                };
                let part = format!("parts/{batch}/{copy}.csv");
                store
                    .commit_batch(&job_id, &format!("b-{batch}"), counts, Some(&part))
                    .await
                    .unwrap()
            })
        });
    let won = futures::future::join_all(commits)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count() as u64;
    assert_eq!(won, BATCHES, "exactly one commit per batch wins");
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.progress.succeeded, (1..=BATCHES).sum::<u64>());
    assert_eq!(job.progress.failed, BATCHES);
    assert_eq!(job.progress.batches_committed, BATCHES);
    assert_eq!(
        store.list_batches(&job_id).await.unwrap().len() as u64,
        BATCHES
    );
}

#[tokio::test]
async fn finalize_is_claimed_once_after_every_batch_committed() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    let one = BatchCounts {
        succeeded: 1,
        failed: 0,
        not_run: 0,
    };
    store.commit_batch(&job_id, "b-1", one, None).await.unwrap();
    assert!(!claim(&store, &job_id).await, "planning is not complete");
    store.finish_planning(&job_id, 2, 2).await.unwrap();
    assert!(!claim(&store, &job_id).await, "a batch is missing");
    // finish_planning again (a replanned manifest) changes nothing.
    store.finish_planning(&job_id, 2, 2).await.unwrap();
    store.commit_batch(&job_id, "b-2", one, None).await.unwrap();

    let claims = (0..8).map(|_| {
        let store = store.clone();
        let job_id = job_id.clone();
        tokio::spawn(async move { claim(&store, &job_id).await })
    });
    let winners = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1);
    assert!(!claim(&store, &job_id).await);
    let job = store.get_job(&job_id).await.unwrap();
    assert!(job.finalize_sent);
    let claimed_at = job
        .tracking
        .finalize_at
        .expect("the claim's time is recorded");
    assert_eq!(job.progress.total_tasks, Some(2));
    assert_eq!(job.progress.batches_planned, Some(2));

    // The sweeper's resend: only once the last claim is older than the resend time.
    let resend = std::time::Duration::from_secs(60);
    let soon = claimed_at + chrono::Duration::seconds(30);
    assert!(store
        .claim_finalize(&job_id, soon, Some(resend))
        .await
        .unwrap()
        .is_none());
    let later = claimed_at + chrono::Duration::seconds(61);
    let again = store
        .claim_finalize(&job_id, later, Some(resend))
        .await
        .unwrap();
    assert_eq!(again, Some(later));
    // A claim given back (its send failed) can be claimed by the next caller at once.
    store.release_finalize(&job_id, later).await;
    assert!(!store.get_job(&job_id).await.unwrap().finalize_sent);
    assert!(claim(&store, &job_id).await);
}

async fn claim(store: &Store, job_id: &str) -> bool {
    store
        .claim_finalize(job_id, chrono::Utc::now(), None)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_job_without_batches_finalizes_once_planned() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    store.set_total_tasks(&job_id, 0).await.unwrap();
    assert!(!claim(&store, &job_id).await);
    store.finish_planning(&job_id, 0, 0).await.unwrap();
    assert!(claim(&store, &job_id).await);
    assert!(!claim(&store, &job_id).await);
}

#[tokio::test]
async fn transitions_follow_the_status_machine_and_record_dates_timers_and_failures() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    // create_job moved it New → Preparing already: a second mover loses.
    assert!(!store
        .transition(&job_id, JobStatus::New, JobStatus::Preparing, None, None)
        .await
        .unwrap());
    // Refused transitions change nothing.
    let err = store
        .transition(
            &job_id,
            JobStatus::Preparing,
            JobStatus::Complete,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    assert_eq!(status(&ctx, &job_id).await, JobStatus::Preparing);

    assert!(store
        .transition(
            &job_id,
            JobStatus::Preparing,
            JobStatus::Suspended,
            None,
            None
        )
        .await
        .unwrap());
    let job = store.get_job(&job_id).await.unwrap();
    assert!(job.suspended_date.is_some());
    assert!(job.termination_date.is_none());

    assert!(store
        .transition(
            &job_id,
            JobStatus::Suspended,
            JobStatus::Ready,
            Some("looks right".into()),
            None
        )
        .await
        .unwrap());
    assert!(store
        .transition(&job_id, JobStatus::Ready, JobStatus::Active, None, None)
        .await
        .unwrap());
    let job = store.get_job(&job_id).await.unwrap();
    assert!(job.active_since.is_some());
    assert_eq!(job.status_update_reason.as_deref(), Some("looks right"));

    let threshold = FailureReason {
        failure_code: "TaskFailureThresholdExceeded".into(),
        failure_reason: "more than 50% of tasks failed".into(),
    };
    assert!(store
        .transition(
            &job_id,
            JobStatus::Active,
            JobStatus::Failing,
            None,
            Some(threshold.clone())
        )
        .await
        .unwrap());
    let job = store.get_job(&job_id).await.unwrap();
    assert!(job.active_since.is_none(), "leaving Active stops the timer");
    assert!(job.elapsed_active_seconds >= 0);
    assert!(job.termination_date.is_none());

    let second = FailureReason {
        failure_code: "Other".into(),
        failure_reason: "also".into(),
    };
    assert!(store
        .transition(
            &job_id,
            JobStatus::Failing,
            JobStatus::Failed,
            None,
            Some(second.clone())
        )
        .await
        .unwrap());
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.termination_date.is_some());
    assert_eq!(job.failure_reasons, vec![threshold, second]);
    let described =
        serde_json::to_value(control::describe_job(&ctx, &job_id).await.unwrap()).unwrap();
    assert_eq!(
        described["Job"]["FailureReasons"][0]["FailureCode"],
        "TaskFailureThresholdExceeded"
    );
    assert_eq!(described["Job"]["StatusUpdateReason"], "looks right");
    assert!(described["Job"]["TerminationDate"].is_string());
    assert_eq!(described["Job"]["SuspendedCause"], "AwaitingConfirmation");

    // A terminal job moves nowhere.
    let err = store
        .transition(&job_id, JobStatus::Failed, JobStatus::Active, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_transitions_from_one_status_have_one_winner() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|_| {})).await;
    let movers = (0..6).map(|i| {
        let store = store.clone();
        let job_id = job_id.clone();
        let to = if i % 2 == 0 {
            JobStatus::Active
        } else {
            JobStatus::Cancelled
        };
        tokio::spawn(async move {
            store
                .transition(&job_id, JobStatus::Preparing, to, None, None)
                .await
                .unwrap()
        })
    });
    let winners = futures::future::join_all(movers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn confirming_a_suspended_job_makes_it_ready_and_queues_it() {
    let ctx = common::test_context().await;
    let store = ctx.store();
    let job_id = create(&ctx, request(|v| v["ConfirmationRequired"] = json!(true))).await;
    plan_requests(&ctx).await;

    // Still preparing: nothing to confirm yet.
    let err = control::update_job_status(&ctx, &job_id, JobStatus::Ready, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");

    // The planner counted the manifest and suspended the job.
    store.set_total_tasks(&job_id, 42).await.unwrap();
    store
        .transition(
            &job_id,
            JobStatus::Preparing,
            JobStatus::Suspended,
            None,
            None,
        )
        .await
        .unwrap();
    let described =
        serde_json::to_value(control::describe_job(&ctx, &job_id).await.unwrap()).unwrap();
    assert_eq!(described["Job"]["Status"], "Suspended");
    assert_eq!(described["Job"]["ConfirmationRequired"], true);
    assert_eq!(
        described["Job"]["ProgressSummary"]["TotalNumberOfTasks"],
        42
    );

    let response =
        control::update_job_status(&ctx, &job_id, JobStatus::Ready, Some("confirmed".into()))
            .await
            .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"JobId": job_id, "Status": "Ready", "StatusUpdateReason": "confirmed"})
    );
    assert_eq!(status(&ctx, &job_id).await, JobStatus::Ready);
    assert_eq!(plan_requests(&ctx).await, vec![job_id.clone()]);

    // Confirming twice is refused.
    let err = control::update_job_status(&ctx, &job_id, JobStatus::Ready, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
}

#[tokio::test]
async fn cancel_is_direct_before_work_starts_and_through_cancelling_after() {
    let ctx = common::test_context().await;
    let store = ctx.store();

    // Suspended → Cancelled, terminated now.
    let suspended = create(&ctx, request(|_| {})).await;
    store
        .transition(
            &suspended,
            JobStatus::Preparing,
            JobStatus::Suspended,
            None,
            None,
        )
        .await
        .unwrap();
    plan_requests(&ctx).await;
    let response =
        control::update_job_status(&ctx, &suspended, JobStatus::Cancelled, Some("no".into()))
            .await
            .unwrap();
    assert_eq!(response.status, JobStatus::Cancelled);
    let job = store.get_job(&suspended).await.unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(job.termination_date.is_some());
    assert_eq!(job.status_update_reason.as_deref(), Some("no"));
    assert!(
        plan_requests(&ctx).await.is_empty(),
        "nothing to settle for a direct cancel"
    );

    // Preparing → Cancelling; the planner is asked to settle it (it has no batches yet).
    let preparing = create(&ctx, request(|_| {})).await;
    plan_requests(&ctx).await;
    let response = control::update_job_status(&ctx, &preparing, JobStatus::Cancelled, None)
        .await
        .unwrap();
    assert_eq!(response.status, JobStatus::Cancelling);
    assert_eq!(status(&ctx, &preparing).await, JobStatus::Cancelling);
    assert_eq!(plan_requests(&ctx).await, vec![preparing.clone()]);

    // Active → Cancelling; the executors and the reporter finish it.
    let active = create(&ctx, request(|_| {})).await;
    store
        .transition(&active, JobStatus::Preparing, JobStatus::Active, None, None)
        .await
        .unwrap();
    plan_requests(&ctx).await;
    let response = control::update_job_status(&ctx, &active, JobStatus::Cancelled, None)
        .await
        .unwrap();
    assert_eq!(response.status, JobStatus::Cancelling);
    assert!(plan_requests(&ctx).await.is_empty());

    // Cancelling again, or a finished job: refused.
    let err = control::update_job_status(&ctx, &active, JobStatus::Cancelled, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    let err = control::update_job_status(&ctx, &suspended, JobStatus::Cancelled, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransition { .. }), "{err}");
    // Only Ready and Cancelled can be requested.
    let err = control::update_job_status(&ctx, &active, JobStatus::Complete, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
}

#[tokio::test]
async fn update_job_priority_changes_the_job() {
    let ctx = common::test_context().await;
    let job_id = create(&ctx, request(|_| {})).await;
    let response = control::update_job_priority(&ctx, &job_id, 99)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"JobId": job_id, "Priority": 99})
    );
    let described = control::describe_job(&ctx, &job_id).await.unwrap();
    assert_eq!(described.job.priority, 99);
    let err = control::update_job_priority(&ctx, &job_id, -1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
    assert_eq!(
        control::describe_job(&ctx, &job_id)
            .await
            .unwrap()
            .job
            .priority,
        99
    );
}

#[tokio::test]
async fn job_templates_put_list_match_and_delete() {
    let ctx = common::test_context().await;
    let put = control::put_job_template(
        &ctx,
        "nightly",
        "s3://inventory/inv/src/",
        template_request(),
    )
    .await
    .unwrap();
    assert_eq!(put.manifest_prefix, "s3://inventory/inv/src/");
    control::put_job_template(&ctx, "all", "s3://inventory", template_request())
        .await
        .unwrap();
    // Putting a name again replaces it.
    control::put_job_template(&ctx, "all", "s3://inventory/", template_request())
        .await
        .unwrap();

    let listed = control::list_job_templates(&ctx).await.unwrap();
    let value = serde_json::to_value(&listed).unwrap();
    assert_eq!(value["JobTemplates"].as_array().unwrap().len(), 2);
    assert_eq!(value["JobTemplates"][0]["Name"], "all");
    assert_eq!(
        value["JobTemplates"][0]["ManifestPrefix"],
        "s3://inventory/"
    );
    assert_eq!(value["JobTemplates"][1]["Name"], "nightly");
    assert_eq!(value["JobTemplates"][1]["Template"]["Priority"], 10);

    let stored = ctx.store().list_templates().await.unwrap();
    let matching = |key: &str| -> Vec<String> {
        let mut names: Vec<String> = control::matching_templates(&stored, "inventory", key)
            .into_iter()
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        matching("inv/src/cfg/2026-11-25T01-00Z/manifest.json"),
        ["all", "nightly"]
    );
    assert_eq!(
        matching("other/cfg/2026-11-25T01-00Z/manifest.json"),
        ["all"]
    );
    assert!(matching("inv/src/cfg/data/part.csv.gz").is_empty());

    let with_manifest = request(|_| {});
    let err = control::put_job_template(&ctx, "bad", "s3://inventory/x/", with_manifest)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("must not have a Manifest"),
        "{err}"
    );

    control::delete_job_template(&ctx, "all").await.unwrap();
    let err = control::delete_job_template(&ctx, "all").await.unwrap_err();
    assert!(err.to_string().contains("no job template named"), "{err}");
    assert!(!ctx.store().delete_template("all").await.unwrap());
    let names: Vec<_> = control::list_job_templates(&ctx)
        .await
        .unwrap()
        .job_templates
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["nightly"]);
}

#[tokio::test]
async fn an_inventory_arrival_starts_one_job_even_when_redelivered() {
    let ctx = common::test_context().await;
    let template = JobTemplate {
        name: "nightly".into(),
        manifest_bucket: "inventory".into(),
        manifest_prefix: "inv/".into(),
        request: template_request(),
    };
    let key = "inv/src/cfg/2026-11-25T01-00Z/manifest.json";
    let first = control::create_job_from_inventory(&ctx, &template, "inventory", key, Some("e1"))
        .await
        .unwrap();
    let again = control::create_job_from_inventory(&ctx, &template, "inventory", key, Some("e1"))
        .await
        .unwrap();
    assert_eq!(first, again);
    let next_day = control::create_job_from_inventory(
        &ctx,
        &template,
        "inventory",
        "inv/src/cfg/2026-11-26T01-00Z/manifest.json",
        Some("e2"),
    )
    .await
    .unwrap();
    assert_ne!(first, next_day);
    let mut queued = plan_requests(&ctx).await;
    queued.sort();
    let mut expected = vec![first.job_id.clone(), next_day.job_id.clone()];
    expected.sort();
    assert_eq!(queued, expected);

    let job = ctx.store().get_job(&first.job_id).await.unwrap();
    assert!(!job.confirmation_required());
    let manifest = job.manifest().unwrap();
    assert_eq!(manifest.spec.format, INVENTORY_CSV_FORMAT);
    assert_eq!(
        manifest.location.object_arn,
        format!("arn:aws:s3:::inventory/{key}")
    );
    assert_eq!(manifest.location.etag.as_deref(), Some("e1"));
}

#[tokio::test]
async fn the_control_handler_runs_s3_control_shaped_requests() {
    let ctx = common::test_context().await;
    let created = control::handle(
        &ctx,
        json!({"Action": "CreateJob", "Input": create_job_json()}),
    )
    .await
    .unwrap();
    let job_id = created["JobId"].as_str().unwrap().to_string();
    let described = control::handle(
        &ctx,
        json!({"Action": "DescribeJob", "Input": {"JobId": job_id}}),
    )
    .await
    .unwrap();
    assert_eq!(described["Job"]["Status"], "Preparing");
    let listed = control::handle(
        &ctx,
        json!({"Action": "ListJobs", "Input": {"JobStatuses": ["Preparing"]}}),
    )
    .await
    .unwrap();
    assert_eq!(listed["Jobs"][0]["JobId"], job_id.as_str());
    let priority = control::handle(
        &ctx,
        json!({"Action": "UpdateJobPriority", "Input": {"JobId": job_id, "Priority": 3}}),
    )
    .await
    .unwrap();
    assert_eq!(priority, json!({"JobId": job_id, "Priority": 3}));
    let cancelled = control::handle(
        &ctx,
        json!({"Action": "UpdateJobStatus",
               "Input": {"JobId": job_id, "RequestedJobStatus": "Cancelled", "StatusUpdateReason": "stop"}}),
    )
    .await
    .unwrap();
    assert_eq!(
        cancelled,
        json!({"JobId": job_id, "Status": "Cancelling", "StatusUpdateReason": "stop"})
    );

    let template = serde_json::to_value(template_request()).unwrap();
    let put = control::handle(
        &ctx,
        json!({"Action": "PutJobTemplate",
               "Input": {"Name": "t", "ManifestPrefix": "s3://inv/p/", "Template": template}}),
    )
    .await
    .unwrap();
    assert_eq!(put["Name"], "t");
    let templates = control::handle(&ctx, json!({"Action": "ListJobTemplates"}))
        .await
        .unwrap();
    assert_eq!(
        templates["JobTemplates"][0]["ManifestPrefix"],
        "s3://inv/p/"
    );
    let deleted = control::handle(
        &ctx,
        json!({"Action": "DeleteJobTemplate", "Input": {"Name": "t"}}),
    )
    .await
    .unwrap();
    assert_eq!(deleted, json!({}));

    let err = control::handle(&ctx, json!({"Action": "Frobnicate", "Input": {}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown control Action"), "{err}");
    assert!(ControlRequest::parse(&json!({"Action": "DescribeJob", "Input": {}})).is_err());
}

#[tokio::test]
async fn job_tags_are_created_read_replaced_deleted_and_filter_list_jobs() {
    let ctx = common::test_context().await;
    let run = |action: &str, input: Value| {
        let ctx = ctx.clone();
        let event = json!({"Action": action, "Input": input});
        async move { control::handle(&ctx, event).await }
    };
    let team = common::unique_suffix();
    let tagged = create(
        &ctx,
        request(|v| {
            v["Tags"] = json!([{"Key": "team", "Value": team}, {"Key": "env", "Value": "prod"}])
        }),
    )
    .await;
    let other = create(
        &ctx,
        request(|v| v["Tags"] = json!([{"Key": "team", "Value": team}])),
    )
    .await;
    let untagged = create(&ctx, request(|_| {})).await;

    // GetJobTagging answers in S3 Control's shape, the tags of CreateJob first.
    let got = run("GetJobTagging", json!({"JobId": tagged}))
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"Tags": [{"Key": "team", "Value": team}, {"Key": "env", "Value": "prod"}]})
    );
    assert_eq!(
        run("GetJobTagging", json!({"JobId": untagged}))
            .await
            .unwrap(),
        json!({"Tags": []})
    );

    // ListJobs filtered by tags: jobs with every tag asked for, pages included.
    let listed = |tags: Value, max: Option<usize>| {
        let ctx = ctx.clone();
        async move {
            let mut ids = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let input = control::ListJobsInput {
                    tags: serde_json::from_value(tags.clone()).unwrap(),
                    max_results: max,
                    next_token: token,
                    ..Default::default()
                };
                let page = control::list_jobs(&ctx, &input).await.unwrap();
                assert!(page.jobs.len() <= max.unwrap_or(1000));
                ids.extend(page.jobs.into_iter().map(|j| j.job_id));
                match page.next_token {
                    Some(next) => token = Some(next),
                    None => return ids,
                }
            }
        }
    };
    assert_eq!(
        listed(json!([{"Key": "team", "Value": team}]), None).await,
        [other.clone(), tagged.clone()]
    );
    assert_eq!(
        listed(json!([{"Key": "team", "Value": team}]), Some(1)).await,
        [other.clone(), tagged.clone()]
    );
    assert_eq!(
        listed(
            json!([{"Key": "team", "Value": team}, {"Key": "env", "Value": "prod"}]),
            None
        )
        .await,
        std::slice::from_ref(&tagged)
    );

    // PutJobTagging replaces the whole set; the stored request keeps what CreateJob asked.
    let put = run(
        "PutJobTagging",
        json!({"JobId": tagged, "Tags": [{"Key": "owner", "Value": "ops"}]}),
    )
    .await
    .unwrap();
    assert_eq!(put, json!({}));
    assert_eq!(
        run("GetJobTagging", json!({"JobId": tagged}))
            .await
            .unwrap(),
        json!({"Tags": [{"Key": "owner", "Value": "ops"}]})
    );
    assert_eq!(
        listed(json!([{"Key": "team", "Value": team}]), None).await,
        std::slice::from_ref(&other)
    );
    let stored = ctx.store().get_job(&tagged).await.unwrap();
    assert_eq!(stored.request.tags.as_ref().map(Vec::len), Some(2));

    // DeleteJobTagging, and PutJobTagging with an empty set, remove them all.
    assert_eq!(
        run("DeleteJobTagging", json!({"JobId": tagged}))
            .await
            .unwrap(),
        json!({})
    );
    assert_eq!(
        run("GetJobTagging", json!({"JobId": tagged}))
            .await
            .unwrap(),
        json!({"Tags": []})
    );
    run("PutJobTagging", json!({"JobId": other, "Tags": []}))
        .await
        .unwrap();
    assert!(listed(json!([{"Key": "team", "Value": team}]), None)
        .await
        .is_empty());

    // S3's limits, and jobs that do not exist.
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let long_key = "k".repeat(129);
    for (tags, says) in [
        (json!(too_many), "at most 50"),
        (json!([{"Key": long_key, "Value": "v"}]), "128"),
        (json!([{"Key": "k", "Value": "v".repeat(257)}]), "256"),
        (
            json!([{"Key": "k", "Value": "a"}, {"Key": "k", "Value": "b"}]),
            "more than once",
        ),
    ] {
        let err = run("PutJobTagging", json!({"JobId": tagged, "Tags": tags}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidRequest(_)) && err.to_string().contains(says),
            "{err}"
        );
    }
    assert_eq!(
        run("GetJobTagging", json!({"JobId": tagged}))
            .await
            .unwrap(),
        json!({"Tags": []}),
        "a refused PutJobTagging changes nothing"
    );
    for action in ["GetJobTagging", "DeleteJobTagging"] {
        let err = run(action, json!({"JobId": "no-such-job"}))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::JobNotFound(_)), "{action}: {err}");
    }
    let err = run(
        "PutJobTagging",
        json!({"JobId": "no-such-job", "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::JobNotFound(_)), "{err}");
}
