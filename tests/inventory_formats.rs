//! S3 Inventory reports in Apache Parquet and Apache ORC, end to end against a real moto server:
//! a job whose manifest is an inventory manifest.json with `"fileFormat": "Parquet"` or `"ORC"`
//! runs through the planner, executor and reporter (in-process, as `batchops local run` runs them)
//! and tags every object the inventory lists exactly once, never a delete marker.
//!
//! Run with `cargo test -p batchops --test inventory_formats` (moto is started by the harness,
//! or set BATCHOPS_TEST_ENDPOINT, as `scripts/with-services.sh` does).

use crate::common;
use crate::common::stack::{stack, Stack, RUN_TIMEOUT};

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use batchops::control;
use batchops::job::{CreateJobRequest, Job, JobStatus};
use batchops::local::{self, RunUntil};
use serde_json::json;

/// What the inventory scenarios add to the common stack.
impl Stack {
    /// A tagging job over the inventory whose manifest.json is at `manifest_key`.
    async fn run_inventory_job(&self, inventory: &str, manifest_key: &str, etag: &str) -> Job {
        let job_id = self
            .create_inventory_job(inventory, manifest_key, etag, None)
            .await;
        self.run_until_waiting(&job_id).await
    }

    /// Runs the job until it ends, or waits in Suspended for confirmation.
    async fn run_until_waiting(&self, job_id: &str) -> Job {
        local::run(
            &self.ctx,
            RunUntil::JobTerminal(job_id.to_string()),
            RUN_TIMEOUT,
        )
        .await
        .unwrap();
        self.job(job_id).await
    }

    async fn create_inventory_job(
        &self,
        inventory: &str,
        manifest_key: &str,
        etag: &str,
        canary_tasks: Option<u64>,
    ) -> String {
        let mut request = json!({
            "AccountId": "123456789012",
            "ConfirmationRequired": false,
            "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "inventoried", "Value": "yes"}]}},
            "Manifest": {
                // S3 Control has one inventory format; manifest.json's fileFormat says which.
                "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
                "Location": {"ObjectArn": format!("arn:aws:s3:::{inventory}/{manifest_key}"), "ETag": etag}
            },
            "Report": {"Enabled": false},
            "Priority": 10,
            "RoleArn": "arn:aws:iam::123456789012:role/batch"
        });
        if let Some(tasks) = canary_tasks {
            request["BatchOps"] = json!({"CanaryTasks": tasks});
        }
        let request = CreateJobRequest::parse(&request.to_string()).unwrap();
        control::create_job(&self.ctx, request, None)
            .await
            .unwrap()
            .job_id
    }
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Parquet,
    Orc,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::Orc => "ORC",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Orc => "orc",
        }
    }

    /// manifest.json's fileSchema, as S3 Inventory writes it for these columns.
    fn file_schema(self) -> &'static str {
        match self {
            Format::Parquet => "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional binary storage_class (UTF8);}",
            Format::Orc => "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,size:bigint,storage_class:string>",
        }
    }
}

/// One inventory row: (key, is_delete_marker).
type Row<'a> = (&'a str, bool);

/// A data file in S3 Inventory's versioned schema, written with the Rust Parquet / ORC writers.
fn data_file(format: Format, bucket: &str, rows: &[Row]) -> Vec<u8> {
    let n = rows.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("bucket", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("version_id", DataType::Utf8, true),
        Field::new("is_latest", DataType::Boolean, true),
        Field::new("is_delete_marker", DataType::Boolean, true),
        Field::new("size", DataType::Int64, true),
        Field::new("storage_class", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![bucket; n])),
        Arc::new(StringArray::from(
            rows.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        )),
        // An unversioned bucket: S3 Inventory leaves the version id null.
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(BooleanArray::from(vec![true; n])),
        Arc::new(BooleanArray::from(
            rows.iter().map(|(_, dm)| *dm).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(vec![1; n])),
        Arc::new(StringArray::from(vec!["STANDARD"; n])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut out = Vec::new();
    match format {
        Format::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
        Format::Orc => {
            let mut writer = orc_rust::ArrowWriterBuilder::new(&mut out, schema)
                .try_build()
                .unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
    }
    out
}

/// Uploads the data files and their manifest.json; returns the manifest's key and ETag.
/// `md5_override` replaces the MD5checksum of the data file with that index.
async fn put_inventory(
    s: &Stack,
    inventory: &str,
    source: &str,
    format: Format,
    files: &[Vec<u8>],
    md5_override: Option<(usize, &str)>,
) -> (String, String) {
    let prefix = format!("inv/{source}/{}", format.extension());
    let mut entries = Vec::new();
    for (i, body) in files.iter().enumerate() {
        let key = format!("{prefix}/data/part-{i}.{}", format.extension());
        s.put_version(inventory, &key, body.clone()).await;
        let md5 = match md5_override {
            Some((index, md5)) if index == i => md5.to_string(),
            _ => common::md5_hex(body),
        };
        entries.push(json!({"key": key, "size": body.len(), "MD5checksum": md5}));
    }
    let manifest = json!({
        "sourceBucket": source,
        "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30",
        "creationTimestamp": "1764000000000",
        "fileFormat": format.name(),
        "fileSchema": format.file_schema(),
        "files": entries
    });
    let key = format!("{prefix}/2026-11-25T01-00Z/manifest.json");
    let etag = s.put(inventory, &key, &manifest.to_string()).await;
    (key, etag)
}

const TRICKY_KEYS: &[&str] = &[
    "plain.txt",
    "dir/with space.txt",
    "dir/plus+sign.txt",
    "dir/100% done.txt",
    "dir/%2B already-encoded-looking.txt",
    "dir/ünïcødé ☃.txt",
    "dir/comma, \"quoted\".txt",
];

async fn every_listed_object_is_tagged_once(format: Format) {
    let s = stack().await;
    let source = s.new_bucket("data").await;
    let inventory = s.new_bucket("inventory").await;
    let keys: Vec<String> = (0..40)
        .map(|i| format!("photos/{i:03}.jpg"))
        .chain(TRICKY_KEYS.iter().map(|k| k.to_string()))
        .collect();
    for key in keys.iter().chain([&"photos/deleted.jpg".to_string()]) {
        s.put_version(&source, key, b"x".to_vec()).await;
    }
    // Two data files (planned in parallel, one plan part each); the second also lists a delete
    // marker for an object that exists, which must not be tagged.
    let (first, second) = keys.split_at(25);
    let rows = |keys: &[String]| -> Vec<(String, bool)> {
        keys.iter().map(|k| (k.clone(), false)).collect()
    };
    let mut second_rows = rows(second);
    second_rows.insert(3, ("photos/deleted.jpg".to_string(), true));
    let as_rows = |rows: &[(String, bool)]| -> Vec<u8> {
        let rows: Vec<Row> = rows.iter().map(|(k, dm)| (k.as_str(), *dm)).collect();
        data_file(format, &source, &rows)
    };
    let files = vec![as_rows(&rows(first)), as_rows(&second_rows)];
    let (manifest_key, etag) = put_inventory(&s, &inventory, &source, format, &files, None).await;

    let job = s.run_inventory_job(&inventory, &manifest_key, &etag).await;
    assert_eq!(
        job.status,
        JobStatus::Complete,
        "{format:?}: {:?}",
        job.failure_reasons
    );
    assert_eq!(
        job.progress.total_tasks,
        Some(keys.len() as u64),
        "{format:?}"
    );
    assert_eq!(job.progress.succeeded, keys.len() as u64, "{format:?}");
    assert_eq!(job.progress.failed, 0, "{format:?}");
    for key in &keys {
        let tags = s.tags(&source, key).await;
        assert_eq!(
            tags.get("inventoried").map(String::as_str),
            Some("yes"),
            "{format:?}: {key}"
        );
    }
    assert!(
        s.tags(&source, "photos/deleted.jpg").await.is_empty(),
        "{format:?}: a delete marker is never a task"
    );
}

#[tokio::test]
async fn a_parquet_inventory_job_tags_every_listed_object_once() {
    every_listed_object_is_tagged_once(Format::Parquet).await;
}

#[tokio::test]
async fn an_orc_inventory_job_tags_every_listed_object_once() {
    every_listed_object_is_tagged_once(Format::Orc).await;
}

async fn a_wrong_md5_fails_the_job_naming_the_file(format: Format) {
    let s = stack().await;
    let source = s.new_bucket("data").await;
    let inventory = s.new_bucket("inventory").await;
    s.put_version(&source, "a.txt", b"x".to_vec()).await;
    let files = vec![data_file(format, &source, &[("a.txt", false)])];
    let wrong = "0123456789abcdef0123456789abcdef";
    let (manifest_key, etag) =
        put_inventory(&s, &inventory, &source, format, &files, Some((0, wrong))).await;

    let job = s.run_inventory_job(&inventory, &manifest_key, &etag).await;
    assert_eq!(job.status, JobStatus::Failed, "{format:?}");
    let reason = &job
        .failure_reasons
        .first()
        .expect("a failure reason")
        .failure_reason;
    let ext = format.extension();
    let file = format!("inventory data file s3://{inventory}/inv/{source}/{ext}/data/part-0.{ext}");
    assert!(
        reason.starts_with(&format!(
            "{file}: MD5 mismatch: manifest.json gives MD5checksum {wrong}"
        )),
        "{format:?}: {reason}"
    );
    assert_eq!(
        job.progress.succeeded + job.progress.failed,
        0,
        "{format:?}"
    );
    assert!(
        s.tags(&source, "a.txt").await.is_empty(),
        "{format:?}: no task runs from a file whose MD5 is wrong"
    );
}

#[tokio::test]
async fn a_parquet_data_file_with_a_wrong_md5_fails_the_job_naming_the_file() {
    a_wrong_md5_fails_the_job_naming_the_file(Format::Parquet).await;
}

#[tokio::test]
async fn an_orc_data_file_with_a_wrong_md5_fails_the_job_naming_the_file() {
    a_wrong_md5_fails_the_job_naming_the_file(Format::Orc).await;
}

#[tokio::test]
async fn a_missing_data_file_fails_the_job_naming_the_file() {
    let s = stack().await;
    let source = s.new_bucket("data").await;
    let inventory = s.new_bucket("inventory").await;
    let manifest = json!({
        "sourceBucket": source,
        "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30",
        "fileFormat": "Parquet",
        "fileSchema": Format::Parquet.file_schema(),
        "files": [{"key": "inv/data/gone.parquet", "size": 10, "MD5checksum": "00"}]
    });
    let etag = s
        .put(&inventory, "inv/manifest.json", &manifest.to_string())
        .await;
    let job = s
        .run_inventory_job(&inventory, "inv/manifest.json", &etag)
        .await;
    assert_eq!(job.status, JobStatus::Failed);
    let reason = &job.failure_reasons[0].failure_reason;
    assert!(
        reason.starts_with(&format!(
            "inventory data file s3://{inventory}/inv/data/gone.parquet: cannot read the object: NoSuchKey"
        )),
        "{reason}"
    );
}

/// A canary over an inventory of several data files (planned in parallel without one) takes
/// the first tasks in file order, across files: 15 of three files of 10 are the first file and
/// half the second. Without a report the job still waits for confirmation; then the rest runs.
#[tokio::test]
async fn a_canary_takes_the_first_tasks_across_inventory_files_then_waits() {
    let s = stack().await;
    let source = s.new_bucket("data").await;
    let inventory = s.new_bucket("inventory").await;
    let keys: Vec<String> = (0..30).map(|i| format!("canary/{i:02}.jpg")).collect();
    for key in &keys {
        s.put_version(&source, key, b"x".to_vec()).await;
    }
    let files: Vec<Vec<u8>> = keys
        .chunks(10)
        .map(|chunk| {
            let rows: Vec<Row> = chunk.iter().map(|k| (k.as_str(), false)).collect();
            data_file(Format::Parquet, &source, &rows)
        })
        .collect();
    let (manifest_key, etag) =
        put_inventory(&s, &inventory, &source, Format::Parquet, &files, None).await;
    let job_id = s
        .create_inventory_job(&inventory, &manifest_key, &etag, Some(15))
        .await;

    let job = s.run_until_waiting(&job_id).await;
    assert_eq!(
        job.status,
        JobStatus::Suspended,
        "{:?}",
        job.status_update_reason
    );
    assert_eq!((job.progress.succeeded, job.progress.failed), (15, 0));
    for (i, key) in keys.iter().enumerate() {
        let tagged = s.tags(&source, key).await.contains_key("inventoried");
        assert_eq!(tagged, i < 15, "{key}");
    }

    control::update_job_status(&s.ctx, &job_id, JobStatus::Ready, None)
        .await
        .unwrap();
    let job = s.run_until_waiting(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(30));
    assert_eq!((job.progress.succeeded, job.progress.failed), (30, 0));
    for key in &keys {
        assert!(
            s.tags(&source, key).await.contains_key("inventoried"),
            "{key}"
        );
    }
}
