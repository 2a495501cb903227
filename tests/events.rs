//! Every file in `events/` is fed to the parser of the function it is written for, so that the test
//! events (for `sam local invoke`, the Lambda console and the docs) stay valid as the code changes.
//!
//! A new file in `events/` needs a check here: unknown files fail the test.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use batchops::control::{self, ControlRequest};
use batchops::invocation::{InvocationRequest, SchemaVersion};
use batchops::job::CreateJobRequest;
use batchops::plan::TaskBatch;
use batchops::planner::{self, PlannerWork};
use batchops::queue::{FinalizeRequest, PlanRequest};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read_json(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// The check of every event file, by name. Each returns a description of what went wrong.
fn check(name: &str, event: &Value) -> Result<(), String> {
    match name {
        "planner-s3-inventory-arrival.json" => check_planner_s3(event),
        "planner-sqs-s3-notification.json" => check_planner_sqs_s3(event),
        "planner-plan-request.json" => check_planner_plan_request(event),
        "planner-eventbridge-inventory-arrival.json" => check_planner_eventbridge(event),
        "executor-sqs-batch.json" => check_executor(event),
        "reporter-finalize.json" => check_reporter_sqs(event),
        "reporter-finalize-direct.json" => check_reporter_direct(event),
        "create-job-tagging.json" => check_create_job_file(event),
        "inventory-bucket-notification.json" => check_notification_configuration(event),
        "sweeper-scheduled.json" => check_scheduled(event),
        "task-handler-schema-1.0.json" => check_invocation(event, SchemaVersion::V1),
        "task-handler-schema-2.0.json" => check_invocation(event, SchemaVersion::V2),
        _ if name.starts_with("control-") => check_control(name, event),
        _ => Err("no check for this file: add one to tests/events.rs".into()),
    }
}

/// An EventBridge Scheduler event, as the sweeper's schedule sends it.
fn check_scheduled(event: &Value) -> Result<(), String> {
    let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or_default();
    if field("detail-type") != "Scheduled Event" || !field("source").starts_with("aws.") {
        return Err(format!(
            "not a scheduled event: detail-type {:?}, source {:?}",
            field("detail-type"),
            field("source")
        ));
    }
    Ok(())
}

fn sqs_event(event: &Value) -> Result<SqsEvent, String> {
    let sqs: SqsEvent =
        serde_json::from_value(event.clone()).map_err(|e| format!("not an SQS event: {e}"))?;
    if sqs.records.is_empty() {
        return Err("SQS event without records".into());
    }
    for record in &sqs.records {
        if record.event_source.as_deref() != Some("aws:sqs") {
            return Err(format!("record eventSource {:?}", record.event_source));
        }
        if record.message_id.as_deref().unwrap_or_default().is_empty() {
            return Err("SQS record without messageId".into());
        }
    }
    Ok(sqs)
}

fn bodies(sqs: &SqsEvent) -> Vec<&str> {
    sqs.records
        .iter()
        .map(|r| r.body.as_deref().unwrap_or_default())
        .collect()
}

/// An S3 event for an inventory manifest.json, as S3 sends it (key URL-encoded).
fn check_s3_manifest_event(event: &Value) -> Result<(), String> {
    let s3: S3Event =
        serde_json::from_value(event.clone()).map_err(|e| format!("not an S3 event: {e}"))?;
    for record in &s3.records {
        if record.event_source.as_deref() != Some("aws:s3") {
            return Err(format!("S3 record eventSource {:?}", record.event_source));
        }
        if !record
            .event_name
            .as_deref()
            .unwrap_or_default()
            .starts_with("ObjectCreated:")
        {
            return Err(format!("S3 record eventName {:?}", record.event_name));
        }
    }
    let work = planner::parse_event(event).map_err(|e| e.to_string())?;
    expect_manifest_arrival(&work)
}

fn expect_manifest_arrival(work: &[PlannerWork]) -> Result<(), String> {
    match work {
        [PlannerWork::ManifestArrived { bucket, key, .. }] => {
            if bucket.is_empty() || !key.ends_with("/manifest.json") || key.contains('+') {
                return Err(format!(
                    "expected a decoded inventory manifest.json key, got s3://{bucket}/{key}"
                ));
            }
            Ok(())
        }
        other => Err(format!(
            "expected one manifest arrival, planner read {other:?}"
        )),
    }
}

/// What the template's InventoryManifestRule delivers (S3 through EventBridge).
fn check_planner_eventbridge(event: &Value) -> Result<(), String> {
    let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or_default();
    if (field("source"), field("detail-type")) != ("aws.s3", "Object Created") {
        return Err("not an EventBridge S3 Object Created event".into());
    }
    let work = planner::parse_event(event).map_err(|e| e.to_string())?;
    expect_manifest_arrival(&work)
}

fn check_planner_s3(event: &Value) -> Result<(), String> {
    check_s3_manifest_event(event)
}

fn check_planner_sqs_s3(event: &Value) -> Result<(), String> {
    let sqs = sqs_event(event)?;
    for body in bodies(&sqs) {
        let inner: Value =
            serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
        check_s3_manifest_event(&inner)?;
        let raw_key = inner
            .pointer("/Records/0/s3/object/key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !raw_key.contains('+') {
            return Err(format!(
                "this event is meant to show a URL-encoded key (a space as '+'), got {raw_key:?}"
            ));
        }
    }
    let work = planner::parse_event(event).map_err(|e| e.to_string())?;
    expect_manifest_arrival(&work)
}

fn check_planner_plan_request(event: &Value) -> Result<(), String> {
    let sqs = sqs_event(event)?;
    let mut job_ids = Vec::new();
    for body in bodies(&sqs) {
        let request: PlanRequest =
            serde_json::from_str(body).map_err(|e| format!("body is not a plan request: {e}"))?;
        job_ids.push(request.job_id);
    }
    let work = planner::parse_event(event).map_err(|e| e.to_string())?;
    let planned: Vec<String> = work
        .into_iter()
        .map(|w| match w {
            PlannerWork::Plan(job_id) => Ok(job_id),
            other => Err(format!("expected a plan request, planner read {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    if planned != job_ids {
        return Err(format!("planner read {planned:?}, bodies name {job_ids:?}"));
    }
    Ok(())
}

fn check_executor(event: &Value) -> Result<(), String> {
    let sqs = sqs_event(event)?;
    for body in bodies(&sqs) {
        let batch = TaskBatch::from_body(body).map_err(|e| e.to_string())?;
        if batch.job_id.is_empty() || batch.batch_id.is_empty() || batch.tasks.is_empty() {
            return Err(format!("incomplete task batch: {batch:?}"));
        }
        if batch
            .tasks
            .iter()
            .any(|t| t.bucket.is_empty() || t.key.is_empty())
        {
            return Err(format!("task without bucket or key: {batch:?}"));
        }
    }
    Ok(())
}

fn check_reporter_sqs(event: &Value) -> Result<(), String> {
    let sqs = sqs_event(event)?;
    for body in bodies(&sqs) {
        let request: FinalizeRequest = serde_json::from_str(body)
            .map_err(|e| format!("body is not a finalize request: {e}"))?;
        if request.job_id.is_empty() {
            return Err("empty FinalizeJobId".into());
        }
    }
    Ok(())
}

fn check_reporter_direct(event: &Value) -> Result<(), String> {
    let request: FinalizeRequest = serde_json::from_value(event.clone())
        .map_err(|e| format!("not a finalize request: {e}"))?;
    if request.job_id.is_empty() {
        return Err("empty FinalizeJobId".into());
    }
    Ok(())
}

/// A file for `aws s3control create-job --cli-input-json` / `batchops create-job`.
fn check_create_job_file(event: &Value) -> Result<(), String> {
    let request = CreateJobRequest::parse(&event.to_string()).map_err(|e| e.to_string())?;
    request.validate().map_err(|e| e.to_string())
}

/// `control-<action-in-kebab-case>[-variant].json` holds a request of that action.
fn check_control(name: &str, event: &Value) -> Result<(), String> {
    let request = ControlRequest::parse(event).map_err(|e| e.to_string())?;
    let action = event
        .get("Action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.starts_with(&format!("control-{}", kebab_case(action))) {
        return Err(format!("file name does not match its Action {action:?}"));
    }
    match request {
        ControlRequest::CreateJob(request) => request.validate().map_err(|e| e.to_string()),
        ControlRequest::PutJobTemplate(input) => {
            control::job_template(&input.name, &input.manifest_prefix, input.template)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        ControlRequest::UpdateJobStatus(input) => {
            let wanted = if name.contains("confirm") {
                "Ready"
            } else {
                "Cancelled"
            };
            if input.requested_job_status.as_str() != wanted {
                return Err(format!(
                    "RequestedJobStatus is {}, the file name says {wanted}",
                    input.requested_job_status
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn kebab_case(action: &str) -> String {
    let mut out = String::new();
    for (i, c) in action.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A request of the S3 Batch Operations LambdaInvoke contract, as the example task handler takes it.
fn check_invocation(event: &Value, schema: SchemaVersion) -> Result<(), String> {
    let request: InvocationRequest = serde_json::from_value(event.clone())
        .map_err(|e| format!("not an invocation request: {e}"))?;
    if request.invocation_schema_version != schema {
        return Err(format!(
            "invocationSchemaVersion {}, file name says {schema}",
            request.invocation_schema_version
        ));
    }
    if request.tasks.is_empty() {
        return Err("no tasks".into());
    }
    for task in &request.tasks {
        let named_by_schema = match schema {
            SchemaVersion::V1 => task.s3_bucket_arn.is_some() && task.s3_bucket.is_none(),
            SchemaVersion::V2 => task.s3_bucket.is_some() && task.s3_bucket_arn.is_none(),
        };
        if !named_by_schema || task.bucket().is_none() {
            return Err(format!(
                "schema {schema} names the bucket in {}: {task:?}",
                if schema == SchemaVersion::V1 {
                    "s3BucketArn"
                } else {
                    "s3Bucket"
                }
            ));
        }
    }
    if schema == SchemaVersion::V2 && request.job.user_arguments.is_none() {
        return Err("the 2.0 example should show job.userArguments".into());
    }
    // S3 sends s3VersionId even when it is null.
    let tasks = event
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.iter().any(|t| t.get("s3VersionId").is_none()) {
        return Err("every task carries s3VersionId (null when unversioned)".into());
    }
    Ok(())
}

/// The notification configuration of the inventory bucket; template.yaml prints the same JSON in
/// its InventoryNotificationCommand output.
fn check_notification_configuration(event: &Value) -> Result<(), String> {
    let configs = event
        .get("QueueConfigurations")
        .and_then(Value::as_array)
        .ok_or("no QueueConfigurations")?;
    let [config] = configs.as_slice() else {
        return Err("expected one queue configuration".into());
    };
    let events = config
        .get("Events")
        .and_then(Value::as_array)
        .ok_or("no Events")?;
    if !events.iter().any(|e| e == "s3:ObjectCreated:*") {
        return Err("Events must include s3:ObjectCreated:*".into());
    }
    let rules = config
        .pointer("/Filter/Key/FilterRules")
        .and_then(Value::as_array)
        .ok_or("no Filter.Key.FilterRules")?;
    let suffix = rules
        .iter()
        .find(|r| r.get("Name").and_then(Value::as_str) == Some("suffix"))
        .and_then(|r| r.get("Value"))
        .and_then(Value::as_str);
    if suffix != Some("manifest.json") {
        return Err("the filter must be suffix manifest.json".into());
    }
    let template = std::fs::read_to_string(events_dir().join("../template.yaml"))
        .map_err(|e| format!("cannot read template.yaml: {e}"))?;
    // The output's command (the last one in the file; the header comment wraps its JSON).
    let marker = "--notification-configuration '";
    let in_template = template
        .rfind(marker)
        .map(|at| &template[at + marker.len()..])
        .and_then(|rest| rest.split('\'').next())
        .ok_or("template.yaml has no --notification-configuration '...' in its outputs")?;
    let mut in_template: Value = serde_json::from_str(in_template)
        .map_err(|e| format!("template.yaml's notification configuration is not JSON: {e}"))?;
    let mut expected = event.clone();
    expected["QueueConfigurations"][0]["QueueArn"] = Value::String("${PlanQueue.Arn}".into());
    in_template["QueueConfigurations"][0]["QueueArn"] = Value::String("${PlanQueue.Arn}".into());
    if in_template != expected {
        return Err(format!(
            "template.yaml's InventoryNotificationCommand differs from this file: {in_template}"
        ));
    }
    Ok(())
}

#[test]
fn every_event_file_parses_for_its_handler() {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| {
            check(name, &read_json(name))
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "invalid event files:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_function_and_case_has_an_event() {
    let required = [
        "planner-s3-inventory-arrival.json",
        "planner-sqs-s3-notification.json",
        "planner-plan-request.json",
        "executor-sqs-batch.json",
        "reporter-finalize.json",
        "reporter-finalize-direct.json",
        "control-create-job.json",
        "control-create-job-canary.json",
        "control-describe-job.json",
        "control-dry-run-job.json",
        "control-list-jobs.json",
        "control-update-job-status-confirm.json",
        "control-update-job-status-cancel.json",
        "control-update-job-priority.json",
        "control-update-job-rate.json",
        "control-get-job-tagging.json",
        "control-put-job-tagging.json",
        "control-delete-job-tagging.json",
        "control-clone-job.json",
        "control-rerun-failed-tasks.json",
        "control-put-job-template.json",
        "control-list-job-templates.json",
        "control-delete-job-template.json",
        "task-handler-schema-1.0.json",
        "task-handler-schema-2.0.json",
        "create-job-tagging.json",
        "inventory-bucket-notification.json",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| !events_dir().join(name).is_file())
        .collect();
    assert!(missing.is_empty(), "missing event files: {missing:?}");
}

#[test]
fn every_control_action_has_an_event() {
    let missing: Vec<&str> = control::CONTROL_ACTIONS
        .iter()
        .copied()
        .filter(|action| {
            let prefix = format!("control-{}", kebab_case(action));
            !std::fs::read_dir(events_dir())
                .expect("events/ exists")
                .any(|e| {
                    let name = e.expect("readable entry").file_name();
                    let name = name.to_string_lossy();
                    name == format!("{prefix}.json") || name.starts_with(&format!("{prefix}-"))
                })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "control actions without an event: {missing:?}"
    );
}

#[test]
fn sqs_events_carry_the_md5_of_their_bodies() {
    use md5::{Digest, Md5};
    for name in [
        "planner-sqs-s3-notification.json",
        "planner-plan-request.json",
        "executor-sqs-batch.json",
        "reporter-finalize.json",
    ] {
        let sqs = sqs_event(&read_json(name)).unwrap();
        for record in &sqs.records {
            let body = record.body.as_deref().unwrap_or_default();
            let md5 = hex::encode(Md5::digest(body.as_bytes()));
            assert_eq!(record.md5_of_body.as_deref(), Some(md5.as_str()), "{name}");
        }
    }
}

/// The IAM statements of template.yaml that allow a data action on every bucket, object or
/// function, with these parameters (`tests/common/template_policies.py`).
fn wide_statements(parameters: &[&str]) -> Vec<Value> {
    template_policies(&[], parameters)
}

/// Every ARN that the template's Allow statements name, with these parameters.
fn granted_arns(parameters: &[&str]) -> Vec<Value> {
    template_policies(&["--arns"], parameters)
}

fn template_policies(flags: &[&str], parameters: &[&str]) -> Vec<Value> {
    let root = events_dir().join("..");
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/common/template_policies.py"))
        .args(flags)
        .arg(root.join("template.yaml"))
        .args(parameters)
        .output()
        .expect("run template_policies.py (scripts/bootstrap.sh installs the .venv)");
    assert!(
        out.status.success(),
        "template_policies.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn the_default_template_grants_no_data_action_on_every_resource() {
    assert_eq!(wide_statements(&[]), Vec::<Value>::new());
    // The check sees such grants: orchestrator mode with its "*" bucket defaults has them.
    let wide = wide_statements(&["RoleMode=orchestrator"]);
    assert!(
        wide.iter().any(|s| s["sid"] == "ActOnTargetObjects"),
        "{wide:?}"
    );
    let narrowed = wide_statements(&[
        "RoleMode=orchestrator",
        "TargetBucketNames=data",
        "ManifestBucketNames=manifests",
        "ReportBucketNames=reports",
        "TaskFunctionArns=arn:aws:lambda:us-east-1:111122223333:function:f",
    ]);
    assert_eq!(narrowed, Vec::<Value>::new());
}

#[test]
fn every_arn_the_template_grants_is_in_the_stacks_partition() {
    let arns = granted_arns(&[
        "AWS::Partition=aws-cn",
        "AWS::Region=cn-north-1",
        "RoleMode=orchestrator",
        "TargetBucketNames=a,b",
        "ManifestBucketNames=m",
        "ReportBucketNames=r",
        "InventoryBucketName=inv",
        "KmsKeyArn=arn:aws-cn:kms:cn-north-1:111122223333:key/k1",
    ]);
    let resources: Vec<&str> = arns.iter().filter_map(|a| a["resource"].as_str()).collect();
    // The lists built from bucket names, the inventory bucket and the stack's key are all there.
    for expected in [
        "arn:aws-cn:s3:::b/*",
        "arn:aws-cn:s3:::m/*",
        "arn:aws-cn:s3:::r/*",
        "arn:aws-cn:s3:::inv",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/k1",
    ] {
        assert!(resources.contains(&expected), "{expected} in {resources:?}");
    }
    let outside: Vec<&&str> = resources
        .iter()
        .filter(|r| !r.starts_with("arn:aws-cn:"))
        .collect();
    assert!(outside.is_empty(), "ARNs outside aws-cn: {outside:?}");
    // Without a key, no KMS grant at all.
    let default = granted_arns(&["RoleMode=orchestrator"]);
    assert!(default
        .iter()
        .all(|a| !a["resource"].as_str().unwrap_or("").contains(":kms:")));
}

#[test]
fn object_kms_keys_are_granted_to_the_executor_in_orchestrator_mode_only() {
    let keys =
        "arn:aws:kms:us-east-1:111122223333:key/k1,arn:aws:kms:us-east-1:111122223333:key/k2";
    let key_grants = |parameters: &[&str]| -> Vec<(String, String)> {
        granted_arns(parameters)
            .iter()
            .filter(|a| a["sid"] == "UseObjectKeys")
            .map(|a| {
                (
                    a["function"].as_str().unwrap().to_string(),
                    a["resource"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let parameter = format!("ObjectKmsKeyArns={keys}");
    assert_eq!(
        key_grants(&["RoleMode=orchestrator", &parameter]),
        keys.split(',')
            .map(|k| ("ExecutorFunction".to_string(), k.to_string()))
            .collect::<Vec<_>>()
    );
    // None by default, and none with job roles (each job's role grants its keys).
    assert!(key_grants(&["RoleMode=orchestrator"]).is_empty());
    assert!(key_grants(&[&parameter]).is_empty());
}

#[test]
fn every_function_that_changes_a_jobs_status_may_put_events_on_the_bus_and_only_there() {
    let grants = |parameters: &[&str]| -> Vec<(String, String)> {
        granted_arns(parameters)
            .iter()
            .filter(|a| a["sid"] == "PutStatusChangeEvents")
            .map(|a| {
                (
                    a["function"].as_str().unwrap().to_string(),
                    a["resource"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let functions = [
        "PlannerFunction",
        "ExecutorFunction",
        "ReporterFunction",
        "ControlFunction",
        "SweeperFunction",
    ];
    assert_eq!(
        grants(&["EventBusName=ops"]),
        functions
            .iter()
            .map(|f| (
                f.to_string(),
                "arn:aws:events:us-east-1:111122223333:event-bus/ops".to_string()
            ))
            .collect::<Vec<_>>()
    );
    assert!(grants(&["EventBusName="]).is_empty(), "no bus, no grant");
}
