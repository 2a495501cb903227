//! What a job tells the world as it runs: an EventBridge event on every status change, shaped like
//! the `JobStatusChanged` event S3 Batch Operations records, and CloudWatch metrics per batch in
//! Embedded Metric Format (EMF: one JSON line on stdout, which Lambda sends to CloudWatch Logs and
//! CloudWatch turns into metrics).
//!
//! Events go to the bus `BATCHOPS_EVENT_BUS` (the template sets the account's `default` bus);
//! without it, none are sent. Sending is best effort: the status change is already stored, so a
//! failed PutEvents is logged and the job goes on.

use crate::job::{FailureReason, Job, JobStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The `source` of batchops' events (a custom source may not start with `aws.`).
pub const EVENT_SOURCE: &str = "batchops";
/// Their `detail-type`.
pub const STATUS_CHANGED: &str = "JobStatusChanged";
/// The CloudWatch namespace of batchops' metrics.
pub const METRIC_NAMESPACE: &str = "batchops";

/// Where status-change events go.
#[derive(Debug, Clone)]
pub struct EventSink {
    /// The EventBridge client that sends the events (PutEvents).
    pub client: aws_sdk_eventbridge::Client,
    /// The event bus's name or ARN (`BATCHOPS_EVENT_BUS`).
    pub bus: String,
}

/// The `detail` of a status-change event: S3's CloudTrail record of `JobStatusChanged`, whose
/// `serviceEventDetails` carry jobId, jobArn, status, jobEventId, failureCodes and
/// statusChangeReason; batchops adds the status the job left.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangedDetail {
    /// `eventName`: always `JobStatusChanged`.
    pub event_name: &'static str,
    /// `eventSource`: always `batchops`.
    pub event_source: &'static str,
    /// `eventTime`: when the status changed, ISO 8601 in UTC to the second.
    pub event_time: String,
    /// `awsRegion`: the Region from `AWS_REGION` (`us-east-1` when unset).
    pub aws_region: String,
    /// `serviceEventDetails`: the job and the change.
    pub service_event_details: ServiceEventDetails,
}

/// The `serviceEventDetails` of a status-change event: which job changed, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEventDetails {
    /// `jobId`: the job's id.
    pub job_id: String,
    /// `jobArn`: the job's ARN, also the event's resource.
    pub job_arn: String,
    /// `status`: the status the job moved to.
    pub status: JobStatus,
    /// `previousStatus`: the status the job left (batchops' own member).
    pub previous_status: JobStatus,
    /// `jobEventId`: a new UUID for each event.
    pub job_event_id: String,
    /// `failureCodes`: the job's failure codes so far, with the one of this change; empty if none.
    pub failure_codes: Vec<String>,
    /// `statusChangeReason`: the reason given with the change, as a list of one; empty if none.
    pub status_change_reason: Vec<String>,
}

/// The event of `job` (as it was before the change) moving to `to`.
pub fn status_changed(
    job: &Job,
    to: JobStatus,
    reason: Option<&str>,
    failure: Option<&FailureReason>,
    at: DateTime<Utc>,
) -> StatusChangedDetail {
    let mut failure_codes: Vec<String> = job
        .failure_reasons
        .iter()
        .map(|f| f.failure_code.clone())
        .collect();
    if let Some(failure) = failure {
        failure_codes.push(failure.failure_code.clone());
    }
    failure_codes.dedup();
    StatusChangedDetail {
        event_name: STATUS_CHANGED,
        event_source: EVENT_SOURCE,
        event_time: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        aws_region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        service_event_details: ServiceEventDetails {
            job_id: job.job_id.clone(),
            job_arn: job.job_arn(),
            status: to,
            previous_status: job.status,
            job_event_id: uuid::Uuid::new_v4().to_string(),
            failure_codes,
            status_change_reason: reason.map(|r| vec![r.to_string()]).unwrap_or_default(),
        },
    }
}

/// Sends one status-change event; a failure is logged, never returned.
pub async fn send(sink: &EventSink, detail: &StatusChangedDetail) {
    let job_id = detail.service_event_details.job_id.as_str();
    let text = match serde_json::to_string(detail) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "cannot serialise a status-change event");
            return;
        }
    };
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(EVENT_SOURCE)
        .detail_type(STATUS_CHANGED)
        .event_bus_name(&sink.bus)
        .resources(&detail.service_event_details.job_arn)
        .detail(text)
        .build();
    match sink.client.put_events().entries(entry).send().await {
        Ok(out) if out.failed_entry_count() == 0 => {}
        Ok(out) => {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!(job_id, bus = %sink.bus, reason = %why, "EventBridge refused a status-change event");
        }
        Err(e) => {
            tracing::warn!(job_id, bus = %sink.bus, error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "cannot send a status-change event");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics in Embedded Metric Format.

/// What one executor invocation did with its batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchMetrics {
    /// The batch's job; the `JobId` dimension.
    pub job_id: String,
    /// The job's operation name, e.g. `S3PutObjectTagging`; the `Operation` dimension.
    pub operation: String,
    /// Tasks of the batch that succeeded (`TasksSucceeded`).
    pub succeeded: u64,
    /// Tasks of the batch that failed (`TasksFailed`).
    pub failed: u64,
    /// Each task's time, in the order they ended.
    pub task_latencies: Vec<Duration>,
    /// Requests that S3 or Lambda throttled (retried or not).
    pub throttles: u64,
    /// How long the invocation took over the batch (`BatchDuration`, in milliseconds).
    pub batch_duration: Duration,
}

/// EMF takes at most 100 values per metric: a larger batch's task times are sampled evenly.
const MAX_VALUES: usize = 100;

/// The EMF document of a batch: metrics by job and operation, and by operation alone.
pub fn emf(metrics: &BatchMetrics, at: DateTime<Utc>) -> Value {
    let latencies: Vec<f64> = sample(&metrics.task_latencies, MAX_VALUES)
        .iter()
        .map(|d| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
        .collect();
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["JobId", "Operation"], ["Operation"]],
                "Metrics": [
                    {"Name": "TasksSucceeded", "Unit": "Count"},
                    {"Name": "TasksFailed", "Unit": "Count"},
                    {"Name": "TaskLatency", "Unit": "Milliseconds"},
                    {"Name": "Throttles", "Unit": "Count"},
                    {"Name": "BatchDuration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "JobId": metrics.job_id,
        "Operation": metrics.operation,
        "TasksSucceeded": metrics.succeeded,
        "TasksFailed": metrics.failed,
        "TaskLatency": latencies,
        "Throttles": metrics.throttles,
        "BatchDuration": metrics.batch_duration.as_millis() as u64,
    })
}

fn sample(values: &[Duration], max: usize) -> Vec<Duration> {
    if values.len() <= max {
        return values.to_vec();
    }
    (0..max).map(|i| values[i * values.len() / max]).collect()
}

/// Writes the batch's EMF line to stdout, where Lambda's log capture takes it (apart from the
/// tracing logs, which are JSON lines too but carry no `_aws` member).
pub fn put_metrics(metrics: &BatchMetrics) {
    use std::io::Write;
    let line = emf(metrics, Utc::now()).to_string();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::CreateJobRequest;

    fn job(status: JobStatus, failures: &[&str]) -> Job {
        let request = CreateJobRequest::parse(
            &json!({
                "AccountId": "123456789012",
                "Operation": {"S3DeleteObjectTagging": {}},
                "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                             "Location": {"ObjectArn": "arn:aws:s3:::m/m.csv"}},
                "Report": {"Enabled": false},
                "Priority": 1,
                "RoleArn": "arn:aws:iam::123456789012:role/batch"
            })
            .to_string(),
        )
        .unwrap();
        let mut job = crate::control::new_job("j-1".into(), request, Utc::now());
        job.status = status;
        job.failure_reasons = failures
            .iter()
            .map(|code| FailureReason {
                failure_code: code.to_string(),
                failure_reason: "why".into(),
            })
            .collect();
        job
    }

    #[test]
    fn a_status_change_is_shaped_like_s3s_job_status_changed() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let failure = FailureReason {
            failure_code: "ThresholdExceeded".into(),
            failure_reason: "too many failed".into(),
        };
        let detail = status_changed(
            &job(JobStatus::Active, &["ManifestReadFailed"]),
            JobStatus::Failing,
            Some("failure threshold"),
            Some(&failure),
            at,
        );
        let value = serde_json::to_value(&detail).unwrap();
        let details = &value["serviceEventDetails"];
        assert_eq!(value["eventName"], "JobStatusChanged");
        assert_eq!(value["eventSource"], "batchops");
        assert_eq!(value["eventTime"], "2026-12-02T10:00:00Z");
        assert_eq!(details["jobId"], "j-1");
        assert!(details["jobArn"]
            .as_str()
            .unwrap()
            .ends_with(":123456789012:job/j-1"));
        assert_eq!(details["status"], "Failing");
        assert_eq!(details["previousStatus"], "Active");
        assert_eq!(
            details["failureCodes"],
            json!(["ManifestReadFailed", "ThresholdExceeded"])
        );
        assert_eq!(details["statusChangeReason"], json!(["failure threshold"]));
        assert_eq!(details["jobEventId"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn a_batchs_metrics_are_one_emf_document_by_job_and_operation() {
        let metrics = BatchMetrics {
            job_id: "j-1".into(),
            operation: "S3PutObjectTagging".into(),
            succeeded: 250,
            failed: 6,
            task_latencies: (0..256).map(|i| Duration::from_micros(1500 * i)).collect(),
            throttles: 3,
            batch_duration: Duration::from_millis(4321),
        };
        let at = Utc::now();
        let doc = emf(&metrics, at);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], at.timestamp_millis());
        assert_eq!(directive["Namespace"], "batchops");
        assert_eq!(
            directive["Dimensions"],
            json!([["JobId", "Operation"], ["Operation"]])
        );
        // Every metric the directive names is a member of the document.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(!doc[name].is_null(), "{name}");
        }
        assert_eq!(doc["JobId"], "j-1");
        assert_eq!(doc["Operation"], "S3PutObjectTagging");
        assert_eq!(
            (doc["TasksSucceeded"].clone(), doc["TasksFailed"].clone()),
            (json!(250), json!(6))
        );
        assert_eq!(doc["Throttles"], 3);
        assert_eq!(doc["BatchDuration"], 4321);
        let latencies = doc["TaskLatency"].as_array().unwrap();
        assert_eq!(latencies.len(), 100, "EMF takes at most 100 values");
        assert_eq!(latencies[0], json!(0.0));
        assert_eq!(
            latencies[1],
            json!(3.0),
            "every 2.56th task, in milliseconds"
        );
    }
}
