use super::*;

fn outcome(key: &str, status: TaskStatus) -> TaskOutcome {
    TaskOutcome {
        task: Task {
            bucket: "awsexamplebucket".into(),
            key: key.into(),
            version_id: None,
            size: None,
        },
        status,
        error_code: (status == TaskStatus::Failed).then(|| "PermanentFailure".to_string()),
        http_status: Some(200),
        result_message: "done".into(),
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn rows_put_the_http_status_before_the_error_code_like_s3() {
    let failed = TaskOutcome {
        result_message: r#"Lambda returned function error: {"errorMessage":"Task timed out"}"#
            .into(),
        ..outcome("image_14975", TaskStatus::Failed)
    };
    let succeeded = TaskOutcome {
        error_code: None,
        result_message: "{u'CopySourceVersionId': 'x', u'VersionId': 'y'}".into(),
        ..outcome("image_17775", TaskStatus::Succeeded)
    };
    assert_eq!(
        text(&encode_rows(&[failed, succeeded])),
        "awsexamplebucket,image_14975,,failed,200,PermanentFailure,\"Lambda returned function error: {\"\"errorMessage\"\":\"\"Task timed out\"\"}\"\n\
         awsexamplebucket,image_17775,,succeeded,200,,\"{u'CopySourceVersionId': 'x', u'VersionId': 'y'}\"\n"
    );
}

#[test]
fn rows_write_missing_fields_empty_and_the_version_id() {
    let row = TaskOutcome {
        task: Task {
            bucket: "b".into(),
            key: "k".into(),
            version_id: Some("v1".into()),
            size: None,
        },
        status: TaskStatus::Failed,
        error_code: Some("NoSuchKey".into()),
        http_status: None,
        result_message: String::new(),
    };
    assert_eq!(text(&encode_rows(&[row])), "b,k,v1,failed,,NoSuchKey,\n");
    assert!(encode_rows(&[]).is_empty());
}

const TRICKY_KEYS: &[&str] = &[
    "a,b.txt",
    "say \"hi\".txt",
    "line\nbreak\r\n.txt",
    "résumé/日本語 🎉.txt",
    "with space.txt",
    "one+two.txt",
    "100%.txt",
    "%20 literally",
    "dir/sub dir/a+b,c\"d%e",
];

#[test]
fn tricky_keys_are_url_encoded_in_rows_and_never_break_the_csv() {
    for key in TRICKY_KEYS {
        let bytes = encode_rows(&[outcome(key, TaskStatus::Succeeded)]);
        let row = text(&bytes);
        let encoded = crate::manifest::encode_key(key);
        assert!(
            row.starts_with(&format!("awsexamplebucket,{encoded},,succeeded,")),
            "{key:?} -> {row:?}"
        );
        // One line, seven fields: the key's commas, quotes and newlines are encoded away.
        assert_eq!(row.matches('\n').count(), 1, "{key:?} -> {row:?}");
        assert_eq!(row.split(',').count(), 7, "{key:?} -> {row:?}");
        for raw in [",", "\"", "\n", "\r", " "] {
            assert!(!encoded.contains(raw), "{key:?} encodes to {encoded:?}");
        }
    }
}

#[test]
fn rows_round_trip_for_tricky_keys_and_messages() {
    let outcomes: Vec<TaskOutcome> = TRICKY_KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| TaskOutcome {
            task: Task {
                bucket: "bucket".into(),
                key: key.to_string(),
                version_id: (i % 2 == 0).then(|| format!("v{i}")),
                size: None,
            },
            status: if i % 3 == 0 {
                TaskStatus::Failed
            } else {
                TaskStatus::Succeeded
            },
            error_code: (i % 3 == 0).then(|| "AccessDenied".to_string()),
            http_status: (i % 4 != 0).then_some(403),
            result_message: format!("message, with \"quotes\"\nand a line {key}"),
        })
        .collect();
    let decoded = decode_rows(&encode_rows(&outcomes)).unwrap();
    assert_eq!(decoded, outcomes);
}

#[test]
fn decoding_reports_bad_rows_with_their_number() {
    let err = decode_rows(b"b,k,,succeeded,200,,ok\nb,k,,maybe,200,,ok\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2") && err.contains("maybe"), "{err}");
    let err = decode_rows(b"b,k,,succeeded\n").unwrap_err().to_string();
    assert!(err.contains("expected 7 fields"), "{err}");
    let err = decode_rows(b"b,k,,failed,OK,,x\n").unwrap_err().to_string();
    assert!(err.contains("HTTP status"), "{err}");
    assert!(decode_rows(b"").unwrap().is_empty());
}

#[test]
fn manifest_json_has_the_shape_of_s3s_example() {
    let created = DateTime::parse_from_rfc3339("2019-04-05T17:48:39.725Z")
        .unwrap()
        .with_timezone(&Utc);
    let manifest = ReportManifest::new(
        created,
        vec![
            ReportResult {
                task_execution_status: TaskStatus::Succeeded,
                bucket: "my-job-reports".into(),
                md5_checksum: "83b1c4cbe93fc893f54053697e10fd6e".into(),
                key: "job-f8fb9d89/results/6217b0fab0de85c408b4be96aeaca9b195a7daa5.csv".into(),
            },
            ReportResult {
                task_execution_status: TaskStatus::Failed,
                bucket: "my-job-reports".into(),
                md5_checksum: "22ee037f3515975f7719699e5c416eaa".into(),
                key: "job-f8fb9d89/results/b2ddad417e94331e9f37b44f1faf8c7ed5873f2e.csv".into(),
            },
        ],
    );
    let json = serde_json::to_string(&manifest).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"Format":"Report_CSV_20180820","ReportCreationDate":"2019-04-05T17:48:39.725Z","#,
            r#""Results":[{"TaskExecutionStatus":"succeeded","Bucket":"my-job-reports","#,
            r#""MD5Checksum":"83b1c4cbe93fc893f54053697e10fd6e","#,
            r#""Key":"job-f8fb9d89/results/6217b0fab0de85c408b4be96aeaca9b195a7daa5.csv"},"#,
            r#"{"TaskExecutionStatus":"failed","Bucket":"my-job-reports","#,
            r#""MD5Checksum":"22ee037f3515975f7719699e5c416eaa","#,
            r#""Key":"job-f8fb9d89/results/b2ddad417e94331e9f37b44f1faf8c7ed5873f2e.csv"}],"#,
            r#""ReportSchema":"Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}"#
        )
    );
    let back: ReportManifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, manifest);
}

#[test]
fn report_dates_have_milliseconds_and_z() {
    let date = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.123456789+00:00")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(format_report_date(date), "2024-01-02T03:04:05.123Z");
}

#[test]
fn report_paths() {
    let id = "f8fb9d89-a3aa";
    assert_eq!(job_report_prefix(None, id), "job-f8fb9d89-a3aa");
    assert_eq!(job_report_prefix(Some(""), id), "job-f8fb9d89-a3aa");
    assert_eq!(job_report_prefix(Some("/"), id), "job-f8fb9d89-a3aa");
    assert_eq!(
        job_report_prefix(Some("batch"), id),
        "batch/job-f8fb9d89-a3aa"
    );
    assert_eq!(
        job_report_prefix(Some("batch/"), id),
        "batch/job-f8fb9d89-a3aa"
    );
    assert_eq!(
        job_report_prefix(Some("a/b//"), id),
        "a/b/job-f8fb9d89-a3aa"
    );
    assert_eq!(
        result_file_key(Some("reports/"), id, "abc"),
        "reports/job-f8fb9d89-a3aa/results/abc.csv"
    );
    assert_eq!(
        result_file_key(None, id, "abc"),
        "job-f8fb9d89-a3aa/results/abc.csv"
    );
    assert_eq!(
        report_manifest_key(Some("reports"), id),
        "reports/job-f8fb9d89-a3aa/manifest.json"
    );
    assert_eq!(
        report_manifest_key(Some(""), id),
        "job-f8fb9d89-a3aa/manifest.json"
    );
    assert_eq!(
        part_key(id, "000042", "7c1e"),
        "staging/job-f8fb9d89-a3aa/parts/000042-7c1e.csv"
    );
}

#[test]
fn file_names_are_deterministic_and_distinct() {
    let a = result_file_name("job", TaskStatus::Succeeded, 0);
    assert_eq!(a.len(), 40);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a, result_file_name("job", TaskStatus::Succeeded, 0));
    assert_ne!(a, result_file_name("job", TaskStatus::Failed, 0));
    assert_ne!(a, result_file_name("job", TaskStatus::Succeeded, 1));
    assert_ne!(a, result_file_name("other", TaskStatus::Succeeded, 0));
}

#[test]
fn md5_is_lowercase_hex() {
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
}

fn mixed_outcomes(n: usize) -> Vec<TaskOutcome> {
    (0..n)
        .map(|i| {
            let status = if i % 3 == 0 {
                TaskStatus::Failed
            } else {
                TaskStatus::Succeeded
            };
            outcome(&format!("key-{i:04}"), status)
        })
        .collect()
}

fn build(builder: ReportBuilder, outcomes: &[TaskOutcome]) -> Vec<ReportFile> {
    let mut builder = builder;
    let mut files: Vec<ReportFile> = outcomes.iter().filter_map(|o| builder.push(o)).collect();
    files.extend(builder.finish());
    files
}

#[test]
fn all_tasks_scope_splits_succeeded_and_failed_files() {
    let outcomes = mixed_outcomes(9);
    let files = build(ReportBuilder::new("j", ReportScope::AllTasks), &outcomes);
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].status, TaskStatus::Succeeded);
    assert_eq!(files[1].status, TaskStatus::Failed);
    let succeeded = decode_rows(&files[0].bytes).unwrap();
    let failed = decode_rows(&files[1].bytes).unwrap();
    assert_eq!(files[0].rows, 6);
    assert_eq!(files[1].rows, 3);
    assert!(succeeded.iter().all(|o| o.status == TaskStatus::Succeeded));
    assert!(failed.iter().all(|o| o.status == TaskStatus::Failed));
    assert_eq!(
        failed
            .iter()
            .map(|o| o.task.key.as_str())
            .collect::<Vec<_>>(),
        ["key-0000", "key-0003", "key-0006"]
    );
    assert_eq!(
        files[0].name,
        result_file_name("j", TaskStatus::Succeeded, 0)
    );
    assert_eq!(files[1].name, result_file_name("j", TaskStatus::Failed, 0));
}

#[test]
fn failed_tasks_only_scope_drops_succeeded_rows() {
    let outcomes = mixed_outcomes(9);
    let files = build(
        ReportBuilder::new("j", ReportScope::FailedTasksOnly),
        &outcomes,
    );
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].status, TaskStatus::Failed);
    assert_eq!(decode_rows(&files[0].bytes).unwrap().len(), 3);
    let all_good: Vec<_> = (0..5)
        .map(|i| outcome(&format!("k{i}"), TaskStatus::Succeeded))
        .collect();
    assert!(build(
        ReportBuilder::new("j", ReportScope::FailedTasksOnly),
        &all_good
    )
    .is_empty());
}

#[test]
fn files_roll_over_past_the_size_limit_and_keep_every_row() {
    let outcomes: Vec<_> = (0..100)
        .map(|i| outcome(&format!("key-{i:04}"), TaskStatus::Succeeded))
        .collect();
    let row_len = encode_rows(&outcomes[..1]).len();
    // Room for three rows per file.
    let limit = row_len * 3 + row_len / 2;
    let files = build(
        ReportBuilder::new("j", ReportScope::AllTasks).with_max_file_bytes(limit),
        &outcomes,
    );
    assert_eq!(files.len(), 34);
    for (i, file) in files.iter().enumerate() {
        assert!(file.bytes.len() <= limit);
        assert_eq!(file.index, i as u32);
        assert_eq!(
            file.name,
            result_file_name("j", TaskStatus::Succeeded, i as u32)
        );
    }
    let rows: Vec<TaskOutcome> = files
        .iter()
        .flat_map(|f| decode_rows(&f.bytes).unwrap())
        .collect();
    assert_eq!(rows, outcomes);
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 100);
}

#[test]
fn a_row_larger_than_the_limit_gets_a_file_of_its_own() {
    let outcomes = vec![
        outcome("a", TaskStatus::Failed),
        TaskOutcome {
            result_message: "x".repeat(500),
            ..outcome("b", TaskStatus::Failed)
        },
        outcome("c", TaskStatus::Failed),
    ];
    let files = build(
        ReportBuilder::new("j", ReportScope::AllTasks).with_max_file_bytes(100),
        &outcomes,
    );
    assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), [1, 1, 1]);
}

#[test]
fn building_twice_gives_the_same_files() {
    let outcomes = mixed_outcomes(50);
    let make = || {
        build(
            ReportBuilder::new("job-1", ReportScope::AllTasks).with_max_file_bytes(300),
            &outcomes,
        )
    };
    assert_eq!(make(), make());
}

#[test]
fn a_builder_saved_and_restored_after_every_row_builds_the_same_files() {
    let outcomes = mixed_outcomes(60);
    let new = || ReportBuilder::new("job-1", ReportScope::AllTasks).with_max_file_bytes(300);
    let whole = build(new(), &outcomes);
    let mut files = Vec::new();
    let mut saved: Vec<(TaskStatus, OpenFileState, Vec<u8>)> = Vec::new();
    for outcome in &outcomes {
        // A new invocation: a fresh builder, restored from what the last one saved.
        let mut builder = new();
        for (status, state, bytes) in saved.drain(..) {
            builder.resume_file(status, state, bytes);
        }
        files.extend(builder.push(outcome));
        for status in [TaskStatus::Succeeded, TaskStatus::Failed] {
            let (state, bytes) = builder.open_file(status);
            saved.push((status, state, bytes.to_vec()));
        }
    }
    let mut builder = new();
    for (status, state, bytes) in saved {
        builder.resume_file(status, state, bytes);
    }
    files.extend(builder.finish());
    let key = |f: &ReportFile| (f.status == TaskStatus::Failed, f.index);
    let mut whole = whole;
    whole.sort_by_key(key);
    files.sort_by_key(key);
    assert_eq!(files, whole);
}
