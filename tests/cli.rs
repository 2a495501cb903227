//! The CLI contract, run as a user runs it: the `batchops` binary against a real moto server.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};
use std::process::{Command, Output};

fn batchops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batchops"))
        .arg("--endpoint-url")
        .arg(common::moto_endpoint())
        .args(args)
        // The CLI's own defaults must do: no stack settings from the environment.
        .env_remove("BATCHOPS_TABLE")
        .env_remove("BATCHOPS_PLAN_QUEUE_URL")
        .env_remove("BATCHOPS_TASK_QUEUE_URL")
        .env_remove("BATCHOPS_REPORT_QUEUE_URL")
        .env_remove("BATCHOPS_SYSTEM_BUCKET")
        .output()
        .expect("run batchops")
}

fn ok_json(args: &[&str]) -> Value {
    let out = batchops(args);
    assert!(
        out.status.success(),
        "batchops {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "batchops {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn job_file(dir: &std::path::Path, name: &str, job: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, job.to_string()).unwrap();
    format!("file://{}", path.display())
}

/// The whole CLI in one story, because `local up` without settings uses the one default stack.
#[tokio::test]
async fn the_cli_runs_jobs_templates_and_inventory_arrivals_on_the_emulator() {
    let config = common::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let id = common::unique_suffix();
    let (data, inventory) = (format!("cli-data-{id}"), format!("cli-inventory-{id}"));
    let dir = tempfile::tempdir().unwrap();

    ok_json(&["local", "up", "--inventory-bucket", &inventory]);
    ok_json(&["local", "up", "--inventory-bucket", &inventory]); // idempotent

    // connect-inventory: already connected, nothing to change; another way only previewed.
    let same = ok_json(&["connect-inventory", "--bucket", &inventory]);
    assert_eq!(
        (same["Diff"].as_array().unwrap().len(), &same["Applied"]),
        (0, &json!(false))
    );
    let out = batchops(&[
        "connect-inventory",
        "--bucket",
        &inventory,
        "--via",
        "eventbridge",
    ]);
    assert!(out.status.success());
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(preview["Applied"], json!(false));
    assert_eq!(preview["Diff"][1], json!("+ eventbridge on"), "{preview}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let bad = batchops(&["connect-inventory", "--bucket", &inventory, "--via", "sns"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"queue\" or \"eventbridge\""));

    s3.create_bucket().bucket(&data).send().await.unwrap();
    let mut manifest = String::new();
    for i in 0..25 {
        let key = format!("obj {i:02}.txt");
        s3.put_object()
            .bucket(&data)
            .key(&key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        manifest.push_str(&format!(
            "{data},{}\n",
            batchops::manifest::encode_key(&key)
        ));
    }
    s3.put_object()
        .bucket(&data)
        .key("m.csv")
        .body(ByteStream::from(manifest.into_bytes()))
        .send()
        .await
        .unwrap();

    let operation = json!({"S3PutObjectTagging": {"TagSet": [{"Key": "via", "Value": "cli"}]}});
    let report = json!({"Bucket": format!("arn:aws:s3:::{data}"), "Format": "Report_CSV_20180820",
                        "Enabled": true, "Prefix": "cli-reports", "ReportScope": "AllTasks"});
    let job = json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": true,
        "Operation": operation,
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": format!("arn:aws:s3:::{data}/m.csv")}},
        "Report": report,
        "Priority": 3,
        "RoleArn": "arn:aws:iam::123456789012:role/batch",
        "ClientRequestToken": format!("cli-{id}")
    });
    let file = job_file(dir.path(), "job.json", &job);

    // --no-confirmation-required overrides the file; the same token gives the same job.
    let created = ok_json(&[
        "create-job",
        "--cli-input-json",
        &file,
        "--no-confirmation-required",
    ]);
    let job_id = created["JobId"].as_str().unwrap().to_string();
    let again = ok_json(&[
        "create-job",
        "--cli-input-json",
        &file,
        "--no-confirmation-required",
    ]);
    assert_eq!(again["JobId"], created["JobId"]);

    // The same commands through the stack's control function (cargo lambda watch serves it),
    // as against a deployed stack: only lambda:InvokeFunction needed.
    std::env::var("BATCHOPS_TEST_LAMBDA_ENDPOINT")
        .expect("run through scripts/with-services.sh --lambda (make test): the control function is served by cargo lambda watch");
    let via = |args: &[&str]| {
        let mut all = vec!["--control-function", "control"];
        all.extend_from_slice(args);
        ok_json(&all)
    };
    let described = via(&["describe-job", "--job-id", &job_id]);
    assert_eq!(described["Job"]["JobId"], json!(job_id), "{described}");
    let listed = via(&["list-jobs"]);
    assert!(listed["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["JobId"] == json!(job_id)));
    let missing = batchops(&[
        "--control-function",
        "control",
        "describe-job",
        "--job-id",
        "no-such-job",
    ]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("no-such-job") && said.contains("not found"),
        "{said}"
    );

    let ran = ok_json(&["local", "run", "--job-id", &job_id]);
    // The time inside each function's handler: what Lambda would bill (the executor bench's
    // cost per task is priced from it).
    for function in ["Planner", "Executor", "Reporter"] {
        let seconds = ran["HandlerSeconds"][function].as_f64().unwrap_or(-1.0);
        assert!(seconds > 0.0, "{function}: {ran}");
    }
    assert!(ran["TaskMessages"].as_u64() >= Some(1), "{ran}");
    let described = ok_json(&["describe-job", "--job-id", &job_id]);
    assert_eq!(described["Job"]["Status"], "Complete", "{described}");
    assert_eq!(
        described["Job"]["ProgressSummary"]["NumberOfTasksSucceeded"],
        25
    );
    assert_eq!(described["Job"]["Priority"], 3);
    let tags = s3
        .get_object_tagging()
        .bucket(&data)
        .key("obj 07.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set[0].value, "cli");

    // Job tags: put (the AWS CLI's shorthand or JSON), get, list-jobs --tag, delete, locally
    // and through the control function alike.
    assert_eq!(
        ok_json(&[
            "put-job-tagging",
            "--job-id",
            &job_id,
            "--tags",
            "Key=team,Value=blue",
            "Key=env,Value=",
        ]),
        Value::Null
    );
    let tags = json!({"Tags": [{"Key": "team", "Value": "blue"}, {"Key": "env", "Value": ""}]});
    assert_eq!(ok_json(&["get-job-tagging", "--job-id", &job_id]), tags);
    assert_eq!(via(&["get-job-tagging", "--job-id", &job_id]), tags);
    let with_tags = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["list-jobs"];
        all.extend_from_slice(args);
        ok_json(&all)["Jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["JobId"].clone())
            .collect()
    };
    assert_eq!(
        with_tags(&["--tag", "team=blue", "--tag", "env="]),
        [json!(job_id)]
    );
    via(&[
        "put-job-tagging",
        "--job-id",
        &job_id,
        "--tags",
        r#"[{"Key": "team", "Value": "red"}]"#,
    ]);
    assert!(with_tags(&["--tag", "team=blue"]).is_empty());
    assert_eq!(with_tags(&["--tag", "team=red"]), [json!(job_id)]);
    via(&["delete-job-tagging", "--job-id", &job_id]);
    assert_eq!(
        ok_json(&["get-job-tagging", "--job-id", &job_id]),
        json!({"Tags": []})
    );
    let bad_tags = batchops(&[
        "put-job-tagging",
        "--job-id",
        &job_id,
        "--tags",
        "team=blue",
    ]);
    assert!(!bad_tags.status.success());
    assert!(String::from_utf8_lossy(&bad_tags.stderr).contains("Key=KEY,Value=VALUE"));

    // A dry run of a clone, here and through the control function: text, and no new job.
    let total = ok_json(&["describe-job", "--job-id", &job_id])["Job"]["ProgressSummary"]
        ["TotalNumberOfTasks"]
        .as_u64()
        .unwrap();
    let jobs_before = ok_json(&["list-jobs"])["Jobs"].as_array().unwrap().len();
    for control in [&[][..], &["--control-function", "control"][..]] {
        let mut args = control.to_vec();
        args.extend([
            "create-job",
            "--clone-of",
            &job_id,
            "--dry-run",
            "--show-tasks",
            "2",
        ]);
        let out = batchops(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.starts_with("Dry run of S3PutObjectTagging over s3://"),
            "{text}"
        );
        assert!(text.contains(&format!("Tasks:    {total}\n")), "{text}");
        assert!(text.contains("First 2 tasks:"), "{text}");
        assert!(text.contains("S3 PutObjectTagging"), "{text}");
        assert!(text.contains("S3 Batch Operations"), "{text}");
        assert!(text.contains("Estimated duration: "), "{text}");
    }
    assert_eq!(
        ok_json(&["list-jobs"])["Jobs"].as_array().unwrap().len(),
        jobs_before,
        "a dry run creates no job"
    );
    let refused = batchops(&["create-job", "--rerun-failed-of", &job_id, "--dry-run"]);
    assert!(!refused.status.success());

    // A clone, through the control function; a re-run of a job without failed tasks is refused.
    let clone = via(&[
        "create-job",
        "--clone-of",
        &job_id,
        "--confirmation-required",
    ]);
    let clone_id = clone["JobId"].as_str().unwrap().to_string();
    assert_ne!(clone_id, job_id);
    let clone_tags = ok_json(&["get-job-tagging", "--job-id", &clone_id]);
    assert_eq!(
        clone_tags,
        json!({"Tags": [{"Key": "batchops:clone-of", "Value": job_id}]})
    );
    let described = ok_json(&["describe-job", "--job-id", &clone_id]);
    assert_eq!(described["Job"]["Operation"], operation);
    assert_eq!(described["Job"]["ConfirmationRequired"], json!(true));
    ok_json(&[
        "update-job-status",
        "--job-id",
        &clone_id,
        "--requested-job-status",
        "Cancelled",
    ]);
    // describe-job --watch follows a job to its end (plain lines when stderr is not a
    // terminal), through the control function, and prints the final answer.
    let again = via(&[
        "create-job",
        "--clone-of",
        &job_id,
        "--no-confirmation-required",
        "--max-tasks-per-second",
        "20",
    ]);
    let again_id = again["JobId"].as_str().unwrap().to_string();
    let rated = via(&[
        "update-job-rate",
        "--job-id",
        &again_id,
        "--max-tasks-per-second",
        "500",
    ]);
    assert_eq!(
        rated,
        json!({"JobId": again_id, "MaxTasksPerSecond": 500}),
        "{rated}"
    );
    let described = ok_json(&["describe-job", "--job-id", &again_id]);
    assert_eq!(
        described["Job"]["BatchOps"],
        json!({"MaxTasksPerSecond": 500})
    );
    let watcher = Command::new(env!("CARGO_BIN_EXE_batchops"))
        .args(["--endpoint-url", common::moto_endpoint()])
        .args(["--control-function", "control", "describe-job", "--job-id"])
        .arg(&again_id)
        .args(["--watch", "--watch-seconds", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ok_json(&["local", "run", "--job-id", &again_id]);
    let watched = watcher.wait_with_output().unwrap();
    assert!(watched.status.success());
    let last: Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(last["Job"]["Status"], "Complete", "{last}");
    let lines = String::from_utf8_lossy(&watched.stderr);
    assert!(
        lines.contains(&format!(
            "job {again_id}: Complete: 25/25 tasks (25 succeeded, 0 failed)"
        )),
        "{lines}"
    );
    assert!(lines.lines().count() >= 2, "a line per refresh: {lines}");
    let late = batchops(&[
        "update-job-rate",
        "--job-id",
        &again_id,
        "--max-tasks-per-second",
        "5",
    ]);
    assert!(!late.status.success());
    assert!(String::from_utf8_lossy(&late.stderr).contains("has ended"));
    let no_watch = batchops(&[
        "describe-job",
        "--job-id",
        &again_id,
        "--watch-seconds",
        "1",
    ]);
    assert!(!no_watch.status.success(), "--watch-seconds needs --watch");

    // --canary: the first 10 tasks run and are reported, then the job waits (local run and
    // the watch return there); confirmed, the rest runs.
    let canary = via(&[
        "create-job",
        "--clone-of",
        &job_id,
        "--no-confirmation-required",
        "--canary",
        "10",
    ]);
    let canary_id = canary["JobId"].as_str().unwrap().to_string();
    ok_json(&["local", "run", "--job-id", &canary_id]);
    let waiting = ok_json(&["describe-job", "--job-id", &canary_id, "--watch"]);
    assert_eq!(waiting["Job"]["Status"], "Suspended", "{waiting}");
    assert_eq!(waiting["Job"]["BatchOps"], json!({"CanaryTasks": 10}));
    assert_eq!(
        waiting["Job"]["ProgressSummary"]["NumberOfTasksSucceeded"],
        10
    );
    let reason = waiting["Job"]["StatusUpdateReason"].as_str().unwrap();
    assert!(reason.contains("/canary/manifest.json"), "{reason}");
    via(&[
        "update-job-status",
        "--job-id",
        &canary_id,
        "--requested-job-status",
        "Ready",
    ]);
    ok_json(&["local", "run", "--job-id", &canary_id]);
    let ended = ok_json(&["describe-job", "--job-id", &canary_id]);
    assert_eq!(ended["Job"]["Status"], "Complete", "{ended}");
    assert_eq!(
        ended["Job"]["ProgressSummary"]["NumberOfTasksSucceeded"],
        25
    );
    for wrong in [&["--canary", "0"][..], &["--canary", "5", "--dry-run"][..]] {
        let mut args = vec!["create-job", "--clone-of", &job_id];
        args.extend_from_slice(wrong);
        assert!(!batchops(&args).status.success(), "{wrong:?} is refused");
    }

    let rerun = batchops(&["create-job", "--rerun-failed-of", &job_id]);
    assert!(!rerun.status.success());
    let said = String::from_utf8_lossy(&rerun.stderr);
    assert!(said.contains("no failed tasks"), "{said}");
    let both = batchops(&[
        "create-job",
        "--clone-of",
        &job_id,
        "--cli-input-json",
        &file,
    ]);
    assert!(!both.status.success(), "one source of the job at a time");
    let none = batchops(&["create-job"]);
    assert!(!none.status.success());

    let listed = ok_json(&["list-jobs", "--job-statuses", "Complete"]);
    assert!(listed["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["JobId"] == job_id.as_str()));
    let suspended = ok_json(&["list-jobs", "--job-statuses", "Suspended"]);
    assert!(suspended["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["JobId"] != job_id.as_str()));

    // A job template, then an inventory delivery under its prefix: a job starts by itself.
    let template = json!({"AccountId": "123456789012", "Operation": operation, "Report": report,
                          "Priority": 1, "RoleArn": "arn:aws:iam::123456789012:role/batch"});
    let template_file = job_file(dir.path(), "template.json", &template);
    let prefix = format!("s3://{inventory}/reports/{data}/");
    ok_json(&[
        "put-job-template",
        "--name",
        "cli-nightly",
        "--manifest-prefix",
        &prefix,
        "--cli-input-json",
        &template_file,
    ]);
    let templates = ok_json(&["list-job-templates"]);
    assert!(templates.to_string().contains("cli-nightly"), "{templates}");

    let csv = format!("\"{data}\",\"obj%2000.txt\"\n\"{data}\",\"obj%2001.txt\"\n");
    let gz = {
        use std::io::Write;
        let mut w = flate2_writer();
        w.write_all(csv.as_bytes()).unwrap();
        w.finish().unwrap()
    };
    let data_key = format!("reports/{data}/cfg/data/part-0.csv.gz");
    s3.put_object()
        .bucket(&inventory)
        .key(&data_key)
        .body(ByteStream::from(gz.clone()))
        .send()
        .await
        .unwrap();
    let md5 = md5_of(&gz);
    let inventory_manifest = json!({
        "sourceBucket": data, "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30", "creationTimestamp": "1732500000000", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key", "files": [{"key": data_key, "size": gz.len(), "MD5checksum": md5}]
    });
    s3.put_object()
        .bucket(&inventory)
        .key(format!(
            "reports/{data}/cfg/2026-11-25T01-00Z/manifest.json"
        ))
        .body(ByteStream::from(
            inventory_manifest.to_string().into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    ok_json(&["local", "run", "--until-idle"]);
    let all = ok_json(&["list-jobs"]);
    let started: Vec<&Value> = all["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            j["JobId"] != job_id.as_str()
                && j["Description"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("cli-nightly: s3://{inventory}/"))
        })
        .collect();
    assert_eq!(started.len(), 1, "one job for the arrival: {all}");
    assert_eq!(started[0]["Status"], "Complete");
    assert_eq!(started[0]["ProgressSummary"]["NumberOfTasksSucceeded"], 2);
    ok_json(&["delete-job-template", "--name", "cli-nightly"]);
    assert!(!ok_json(&["list-job-templates"])
        .to_string()
        .contains("cli-nightly"));

    // Errors: a clear message on stderr and a failing exit code, never a panic.
    let missing = batchops(&["describe-job", "--job-id", "no-such-job"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no-such-job") && stderr.contains("not found"),
        "{stderr}"
    );
    let mut copy = job.clone();
    copy["Operation"] = json!({"S3ReplicateObject": {}});
    let bad = job_file(dir.path(), "bad.json", &copy);
    let refused = batchops(&["create-job", "--cli-input-json", &bad]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("S3ReplicateObject") && stderr.contains("not supported"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn flate2_writer() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
}

fn md5_of(bytes: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(bytes))
}
