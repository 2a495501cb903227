use super::*;
use crate::error::Error;
use crate::job::{CreateJobRequest, FailureReason, Job, JobStatus, INVENTORY_CSV_FORMAT};
use crate::store::JobTemplate;

use crate::job::Progress;
use chrono::TimeZone;
use chrono::{DateTime, Utc};
use serde_json::json;
use serde_json::Value;

const CREATE_JOB: &str = r#"{
    "AccountId": "123456789012",
    "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
    "Report": {"Bucket": "arn:aws:s3:::reports", "Enabled": true, "Prefix": "r",
               "Format": "Report_CSV_20180820", "ReportScope": "AllTasks"},
    "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                 "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv", "ETag": "e"}},
    "Priority": 10,
    "RoleArn": "arn:aws:iam::123456789012:role/batch",
    "Description": "tag"
}"#;

fn time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

fn job() -> Job {
    new_job(
        "job-1".into(),
        CreateJobRequest::parse(CREATE_JOB).unwrap(),
        time(0),
    )
}

fn template_request() -> CreateJobRequest {
    let mut request = CreateJobRequest::parse(CREATE_JOB).unwrap();
    request.manifest = None;
    request
}

fn template(name: &str, bucket: &str, prefix: &str) -> JobTemplate {
    JobTemplate {
        name: name.into(),
        manifest_bucket: bucket.into(),
        manifest_prefix: prefix.into(),
        request: template_request(),
    }
}

#[test]
fn new_jobs_start_new_with_the_requested_priority() {
    let job = job();
    assert_eq!(job.status, JobStatus::New);
    assert_eq!(job.priority, 10);
    assert_eq!(job.progress, Progress::default());
    assert!(!job.finalize_sent);
}

#[test]
fn only_an_old_new_job_is_restarted() {
    let job = job();
    assert!(!needs_restart(&job, time(5)));
    assert!(needs_restart(&job, time(61)));
    let preparing = Job {
        status: JobStatus::Preparing,
        ..job
    };
    assert!(!needs_restart(&preparing, time(600)));
}

#[test]
fn describe_job_json_has_s3_control_names_and_omits_unset_fields() {
    let value = serde_json::to_value(DescribeJobResponse {
        job: job_descriptor(&job(), time(5)),
    })
    .unwrap();
    let j = &value["Job"];
    assert_eq!(j["JobId"], "job-1");
    assert_eq!(
        j["JobArn"],
        format!(
            "arn:aws:s3:{}:123456789012:job/job-1",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
        )
    );
    assert_eq!(j["ConfirmationRequired"], false);
    assert_eq!(j["Status"], "New");
    assert_eq!(j["Priority"], 10);
    assert_eq!(j["Description"], "tag");
    assert_eq!(j["RoleArn"], "arn:aws:iam::123456789012:role/batch");
    assert_eq!(
        j["Operation"]["S3PutObjectTagging"]["TagSet"][0]["Key"],
        "k"
    );
    assert_eq!(j["Manifest"]["Location"]["ETag"], "e");
    assert_eq!(j["Report"]["ReportScope"], "AllTasks");
    assert_eq!(j["CreationTime"], "2025-06-15T15:06:40.000Z");
    let summary = &j["ProgressSummary"];
    assert_eq!(summary["NumberOfTasksSucceeded"], 0);
    assert_eq!(summary["NumberOfTasksFailed"], 0);
    assert_eq!(summary["Timers"]["ElapsedTimeInActiveSeconds"], 0);
    for absent in [
        "TerminationDate",
        "SuspendedDate",
        "SuspendedCause",
        "FailureReasons",
        "StatusUpdateReason",
    ] {
        assert!(j.get(absent).is_none(), "{absent} should be omitted: {j}");
    }
    assert!(summary.get("TotalNumberOfTasks").is_none());
}

#[test]
fn describe_job_shows_progress_failures_dates_and_the_running_timer() {
    let mut job = job();
    job.status = JobStatus::Active;
    job.active_since = Some(time(100));
    job.elapsed_active_seconds = 7;
    job.suspended_date = Some(time(50));
    job.status_update_reason = Some("go".into());
    job.failure_reasons = vec![FailureReason {
        failure_code: "X".into(),
        failure_reason: "y".into(),
    }];
    job.progress.total_tasks = Some(10);
    job.progress.succeeded = 4;
    job.progress.failed = 1;
    let value = serde_json::to_value(job_descriptor(&job, time(130))).unwrap();
    assert_eq!(value["ProgressSummary"]["TotalNumberOfTasks"], 10);
    assert_eq!(value["ProgressSummary"]["NumberOfTasksSucceeded"], 4);
    assert_eq!(value["ProgressSummary"]["NumberOfTasksFailed"], 1);
    assert_eq!(
        value["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"],
        37
    );
    assert_eq!(
        value["FailureReasons"],
        json!([{"FailureCode": "X", "FailureReason": "y"}])
    );
    assert_eq!(value["StatusUpdateReason"], "go");
    assert_eq!(value["SuspendedCause"], "AwaitingConfirmation");
    assert_eq!(value["SuspendedDate"], "2025-06-15T15:07:30.000Z");
    // The response reads back (the CLI and tests parse it).
    let back: JobDescriptor = serde_json::from_value(value).unwrap();
    assert_eq!(back.suspended_date, Some(time(50)));

    job.status = JobStatus::Complete;
    job.active_since = None;
    job.termination_date = Some(time(200));
    let value = serde_json::to_value(job_descriptor(&job, time(500))).unwrap();
    assert_eq!(
        value["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"],
        7
    );
    assert_eq!(value["TerminationDate"], "2025-06-15T15:10:00.000Z");
}

#[test]
fn list_descriptor_names_the_operation() {
    let value = serde_json::to_value(job_list_descriptor(&job(), time(0))).unwrap();
    assert_eq!(value["Operation"], "S3PutObjectTagging");
    assert_eq!(value["JobId"], "job-1");
    assert_eq!(value["Status"], "New");
    assert!(value.get("TerminationDate").is_none());
    assert!(value.get("Manifest").is_none());
}

#[test]
fn confirm_only_a_suspended_job() {
    use JobStatus::*;
    assert_eq!(requested_transition("j", Suspended, Ready).unwrap(), Ready);
    for status in [New, Preparing, Ready, Active, Complete, Cancelled] {
        let err = requested_transition("j", status, Ready).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTransition { .. }),
            "{status}: {err}"
        );
    }
}

#[test]
fn cancel_goes_direct_before_work_and_through_cancelling_after() {
    use JobStatus::*;
    for status in [New, Suspended] {
        assert_eq!(
            requested_transition("j", status, Cancelled).unwrap(),
            Cancelled
        );
    }
    for status in [Preparing, Ready, Active, Pausing, Paused] {
        assert_eq!(
            requested_transition("j", status, Cancelled).unwrap(),
            Cancelling
        );
    }
    for status in [Cancelling, Cancelled, Complete, Failing, Failed] {
        let err = requested_transition("j", status, Cancelled).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTransition { .. }),
            "{status}: {err}"
        );
    }
    // Every transition chosen is one the status machine allows.
    for from in crate::job::ALL_STATUSES {
        for requested in [Ready, Cancelled] {
            if let Ok(to) = requested_transition("j", *from, requested) {
                assert!(crate::job::can_transition(*from, to), "{from} -> {to}");
            }
        }
    }
}

#[test]
fn only_ready_and_cancelled_may_be_requested() {
    let err = requested_transition("j", JobStatus::Active, JobStatus::Complete).unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)));
    assert!(err.to_string().contains("Ready or Cancelled"), "{err}");
}

#[test]
fn s3_urls() {
    assert_eq!(
        parse_s3_url("s3://b/inv/x/").unwrap(),
        ("b".into(), "inv/x/".into())
    );
    assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
    assert_eq!(parse_s3_url("s3://b/").unwrap(), ("b".into(), "".into()));
    assert!(parse_s3_url("b/inv").is_err());
    assert!(parse_s3_url("s3:///inv").is_err());
}

#[test]
fn templates_refuse_a_manifest_a_token_confirmation_and_bad_names() {
    let ok = job_template("nightly", "s3://inv/prefix/", template_request()).unwrap();
    assert_eq!(ok.manifest_bucket, "inv");
    assert_eq!(ok.manifest_prefix, "prefix/");

    let with_manifest = CreateJobRequest::parse(CREATE_JOB).unwrap();
    let err = job_template("t", "s3://inv/p", with_manifest).unwrap_err();
    assert!(
        err.to_string().contains("must not have a Manifest"),
        "{err}"
    );

    let mut with_token = template_request();
    with_token.client_request_token = Some("t".into());
    assert!(job_template("t", "s3://inv/p", with_token).is_err());

    let mut confirm = template_request();
    confirm.confirmation_required = Some(true);
    assert!(job_template("t", "s3://inv/p", confirm).is_err());

    assert!(job_template("bad name", "s3://inv/p", template_request()).is_err());
    assert!(job_template("", "s3://inv/p", template_request()).is_err());
    assert!(job_template("t", "inv/p", template_request()).is_err());

    let mut bad_report = template_request();
    bad_report.report.bucket = None;
    let err = job_template("t", "s3://inv/p", bad_report).unwrap_err();
    assert!(err.to_string().contains("Report.Bucket"), "{err}");
}

#[test]
fn matching_templates_need_bucket_prefix_and_manifest_json() {
    let templates = vec![
        template("a", "inv", "src/cfg/"),
        template("b", "inv", "src/"),
        template("c", "other", "src/cfg/"),
        template("d", "inv", ""),
    ];
    let names = |bucket, key| -> Vec<String> {
        matching_templates(&templates, bucket, key)
            .into_iter()
            .map(|t| t.name.clone())
            .collect()
    };
    assert_eq!(
        names("inv", "src/cfg/2026-01-01T01-00Z/manifest.json"),
        ["a", "b", "d"]
    );
    assert_eq!(names("inv", "elsewhere/manifest.json"), ["d"]);
    assert!(names("inv", "src/cfg/2026-01-01T01-00Z/manifest.checksum").is_empty());
    assert!(names("inv", "src/cfg/data/x.csv.gz").is_empty());
    assert_eq!(names("other", "src/cfg/manifest.json"), ["c"]);
    assert!(names("nobody", "src/cfg/manifest.json").is_empty());
}

#[test]
fn inventory_requests_use_the_inventory_manifest_and_a_stable_token() {
    let t = template("nightly", "inv", "src/");
    let key = "src/cfg/2026-01-01T01-00Z/manifest.json";
    let request = inventory_job_request(&t, "inv", key, Some("abc"));
    request.validate().unwrap();
    let manifest = request.manifest.as_ref().unwrap();
    assert_eq!(manifest.spec.format, INVENTORY_CSV_FORMAT);
    assert_eq!(
        manifest.location.object_arn,
        format!("arn:aws:s3:::inv/{key}")
    );
    assert_eq!(manifest.location.etag.as_deref(), Some("abc"));
    assert_eq!(request.confirmation_required, Some(false));
    assert_eq!(request.priority, 10);
    let token = request.client_request_token.clone().unwrap();
    assert_eq!(token.len(), 64);
    // Same arrival, same token; any difference, another token.
    assert_eq!(
        inventory_job_request(&t, "inv", key, Some("abc")).client_request_token,
        Some(token.clone())
    );
    for other in [
        inventory_token("nightly", "inv", key, Some("abd")),
        inventory_token("nightly", "inv", key, None),
        inventory_token("weekly", "inv", key, Some("abc")),
        inventory_token("nightly", "inv2", key, Some("abc")),
        inventory_token("nightly", "inv", "src/other/manifest.json", Some("abc")),
    ] {
        assert_ne!(other, token);
    }
    assert_ne!(
        inventory_token("ab", "c", "k", None),
        inventory_token("a", "bc", "k", None)
    );
}

#[test]
fn parses_every_control_action() {
    let create: Value = serde_json::from_str(CREATE_JOB).unwrap();
    let cases = [
        json!({"Action": "CreateJob", "Input": create}),
        json!({"Action": "DescribeJob", "Input": {"JobId": "j", "AccountId": "1"}}),
        json!({"Action": "ListJobs", "Input": {"JobStatuses": ["Active", "Complete"]}}),
        json!({"Action": "ListJobs"}),
        json!({"Action": "UpdateJobStatus", "Input": {"JobId": "j", "RequestedJobStatus": "Ready", "StatusUpdateReason": "ok"}}),
        json!({"Action": "UpdateJobPriority", "Input": {"JobId": "j", "Priority": 3}}),
        json!({"Action": "PutJobTemplate", "Input": {"Name": "n", "ManifestPrefix": "s3://b/p", "Template": serde_json::to_value(template_request()).unwrap()}}),
        json!({"Action": "ListJobTemplates", "Input": {}}),
        json!({"Action": "DeleteJobTemplate", "Input": {"Name": "n"}}),
    ];
    for case in &cases {
        ControlRequest::parse(case).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    assert_eq!(
        ControlRequest::parse(&cases[2]).unwrap(),
        ControlRequest::ListJobs(ListJobsInput {
            job_statuses: vec![JobStatus::Active, JobStatus::Complete],
            account_id: None,
            ..Default::default()
        })
    );
    assert_eq!(
        ControlRequest::parse(&cases[4]).unwrap(),
        ControlRequest::UpdateJobStatus(UpdateJobStatusInput {
            job_id: "j".into(),
            requested_job_status: JobStatus::Ready,
            status_update_reason: Some("ok".into()),
            account_id: None
        })
    );
}

#[test]
fn refuses_unknown_actions_and_bad_inputs_clearly() {
    let err = ControlRequest::parse(&json!({"Action": "DeleteJob", "Input": {}})).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown control Action \"DeleteJob\""),
        "{err}"
    );
    assert!(err.to_string().contains("DescribeJob"), "{err}");
    let err = ControlRequest::parse(&json!({"Input": {}})).unwrap_err();
    assert!(err.to_string().contains("Action"), "{err}");
    let err = ControlRequest::parse(&json!({"Action": "DescribeJob", "Input": {"JobID": "j"}}))
        .unwrap_err();
    assert!(err.to_string().contains("DescribeJob Input"), "{err}");
    let err = ControlRequest::parse(&json!({"Action": "UpdateJobStatus",
        "Input": {"JobId": "j", "RequestedJobStatus": "Go"}}))
    .unwrap_err();
    assert!(err.to_string().contains("UpdateJobStatus Input"), "{err}");
}

#[test]
fn responses_serialise_in_s3_control_shape() {
    let created = serde_json::to_value(CreateJobResponse { job_id: "j".into() }).unwrap();
    assert_eq!(created, json!({"JobId": "j"}));
    let status = serde_json::to_value(UpdateJobStatusResponse {
        job_id: "j".into(),
        status: JobStatus::Cancelling,
        status_update_reason: None,
    })
    .unwrap();
    assert_eq!(status, json!({"JobId": "j", "Status": "Cancelling"}));
    let priority = serde_json::to_value(UpdateJobPriorityResponse {
        job_id: "j".into(),
        priority: 5,
    })
    .unwrap();
    assert_eq!(priority, json!({"JobId": "j", "Priority": 5}));
    let t = template("n", "b", "p/");
    let listed = serde_json::to_value(ListJobTemplatesResponse {
        job_templates: vec![JobTemplateDescriptor::from(&t)],
    })
    .unwrap();
    assert_eq!(listed["JobTemplates"][0]["Name"], "n");
    assert_eq!(listed["JobTemplates"][0]["ManifestPrefix"], "s3://b/p/");
    assert!(listed["JobTemplates"][0]["Template"]
        .get("Manifest")
        .is_none());
    assert_eq!(
        serde_json::to_value(DeleteJobTemplateResponse {}).unwrap(),
        json!({})
    );
}
