//! The planner's events: which work an invocation brings (a plan request, a part to continue, a
//! manifest that arrived), read from plan requests, S3 notifications, EventBridge S3 events and
//! SQS records holding any of these.

use super::*;

/// One piece of work an invocation of the planner brings, read by [`parse_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannerWork {
    /// Plan the job with this id (a plan request without `Part`).
    Plan(String),
    /// Plan (continue) one part of a job from its checkpoint.
    PlanPart {
        /// The job the part belongs to.
        job_id: String,
        /// The part to plan, from the request's `Part` id.
        part: PlanPart,
        /// A continuation's `From`: where the part stood when it was sent.
        from_task: Option<u64>,
    },
    /// An object was created (S3 notification or EventBridge `Object Created`): when it is an
    /// inventory `manifest.json`, the job templates whose prefix covers it start jobs.
    ManifestArrived {
        /// Bucket of the new object.
        bucket: String,
        /// Key of the new object, decoded (S3 notifications URL-encode it).
        key: String,
        /// The new object's ETag, when the event gives it.
        etag: Option<String>,
    },
}

/// Reads the planner's event: a plan request (`queue::PlanRequest`, `{"PlanJobId"}` with
/// `"Part"` for one plan part), an S3 event notification (`S3Notification`),
/// an EventBridge `Object Created` event, or an SQS event (`SqsMessage`) whose bodies are any of
/// these. Which one it is shows in its keys; each is then read as its type.
pub fn parse_event(event: &Value) -> Result<Vec<PlannerWork>> {
    if event.get("PlanJobId").is_some() {
        let request: PlanRequest = serde_json::from_value(event.clone())
            .map_err(|e| Error::Message(format!("plan request {event}: {e}")))?;
        return Ok(vec![plan_work(request)?]);
    }
    if event.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return parse_eventbridge_s3(event);
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        // S3 sends `{"Event":"s3:TestEvent",...}` when a notification is configured.
        if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(Vec::new());
        }
        return Err(Error::Message(
            "planner event is neither a plan request, an S3 event nor an SQS event".into(),
        ));
    };
    let mut work = Vec::new();
    for record in records {
        let source = record
            .get("eventSource")
            .or_else(|| record.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match source {
            "aws:sqs" => {
                let message: SqsMessage = serde_json::from_value(record.clone())
                    .map_err(|e| Error::Message(format!("SQS record in the planner event: {e}")))?;
                let body = message.body.ok_or_else(|| {
                    Error::Message("SQS record without a body in the planner event".into())
                })?;
                let inner: Value = serde_json::from_str(&body)
                    .map_err(|e| Error::Message(format!("plan queue message is not JSON: {e}")))?;
                work.extend(parse_event(&inner)?);
            }
            "aws:s3" => work.extend(parse_s3_record(record)?),
            other => {
                return Err(Error::Message(format!(
                    "planner event record has unexpected eventSource {other:?}"
                )))
            }
        }
    }
    Ok(work)
}

pub(super) fn plan_work(request: PlanRequest) -> Result<PlannerWork> {
    Ok(match request.part {
        Some(part) => PlannerWork::PlanPart {
            job_id: request.job_id,
            part: PlanPart::parse(&part)?,
            from_task: request.from_task,
        },
        None => PlannerWork::Plan(request.job_id),
    })
}

/// The parts of an EventBridge S3 event the planner reads (the bucket's EventBridge switch and
/// the template's rule): the bucket and the key as stored (not URL-encoded, unlike S3's own
/// notifications).
#[derive(Debug, Deserialize)]
pub(super) struct EventBridgeS3 {
    #[serde(rename = "detail-type", default)]
    detail_type: String,
    detail: Option<EventBridgeS3Detail>,
}

#[derive(Debug, Deserialize)]
pub(super) struct EventBridgeS3Detail {
    bucket: BucketName,
    object: EventBridgeObject,
}

#[derive(Debug, Deserialize)]
pub(super) struct BucketName {
    name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct EventBridgeObject {
    key: String,
    #[serde(default)]
    etag: Option<String>,
}

/// An EventBridge S3 event: `Object Created` is a manifest that may have arrived; other S3
/// events are none of the planner's business.
pub(super) fn parse_eventbridge_s3(event: &Value) -> Result<Vec<PlannerWork>> {
    if event.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Ok(Vec::new());
    }
    let event: EventBridgeS3 = serde_json::from_value(event.clone())
        .map_err(|e| Error::Message(format!("EventBridge S3 event: {e}")))?;
    let detail = event.detail.ok_or_else(|| {
        Error::Message(format!(
            "EventBridge S3 event {} without detail",
            event.detail_type
        ))
    })?;
    Ok(vec![PlannerWork::ManifestArrived {
        bucket: detail.bucket.name,
        key: detail.object.key,
        etag: detail.object.etag,
    }])
}

/// The parts of an S3 event notification record the planner reads. (Not `aws_lambda_events`'
/// `S3EventRecord`: it requires `eventTime`, `userIdentity` and `requestParameters`, which S3
/// sends but moto's notifications, those `local up` wires, leave out.)
#[derive(Debug, Deserialize)]
pub(super) struct S3Notification {
    s3: S3NotificationEntity,
}

#[derive(Debug, Deserialize)]
pub(super) struct S3NotificationEntity {
    bucket: BucketName,
    object: S3NotificationObject,
}

#[derive(Debug, Deserialize)]
pub(super) struct S3NotificationObject {
    key: String,
    #[serde(rename = "eTag", default)]
    e_tag: Option<String>,
}

/// An S3 event notification record: `ObjectCreated:*` is a manifest that may have arrived.
pub(super) fn parse_s3_record(record: &Value) -> Result<Option<PlannerWork>> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.starts_with("ObjectCreated") {
        return Ok(None);
    }
    let record: S3Notification = serde_json::from_value(record.clone())
        .map_err(|e| Error::Message(format!("S3 record: {e}")))?;
    let raw_key = record.s3.object.key;
    // S3 event keys are URL-encoded (spaces as '+').
    let key = manifest::decode_key(&raw_key)
        .map_err(|e| Error::Message(format!("S3 event key {raw_key:?}: {e}")))?;
    Ok(Some(PlannerWork::ManifestArrived {
        bucket: record.s3.bucket.name,
        key,
        etag: record.s3.object.e_tag,
    }))
}
