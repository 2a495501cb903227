use super::parse::check_orc_types;
use super::*;
use arrow_array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow_schema::Field;
use bytes::Bytes;
use std::sync::Arc;

const FILE: &str = "inventory data file s3://inv/data/f";
const BUCKET: &str = "example-source-bucket";

fn task(key: &str, version_id: Option<&str>) -> Task {
    Task {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: version_id.map(str::to_string),
        size: None,
    }
}

/// Found by the `columnar` fuzz target: orc-rust panics on this file's compression chunk
/// header (`split_to out of bounds`); the job must fail with the file named instead.
#[test]
fn an_orc_file_that_makes_the_reader_panic_is_an_unreadable_file() {
    let data = include_bytes!("../../../../tests/fixtures/fuzz/orc-bad-compression-chunk.orc");
    match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
        Err(Error::Manifest(reason)) => {
            assert!(
                reason.starts_with(&format!(
                    "{FILE}: not a readable ORC file: the ORC reader failed on it ("
                )),
                "{reason}"
            );
            assert!(reason.ends_with("the file is corrupt"), "{reason}");
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

/// Found by the `columnar` fuzz target: a footer whose type names an earlier type as its
/// child made orc-rust recurse until the stack overflowed (an abort, not an error).
#[test]
fn an_orc_footer_whose_types_form_a_cycle_is_an_unreadable_file() {
    let data = include_bytes!("../../../../tests/fixtures/fuzz/orc-cyclic-schema.orc");
    match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
        Err(Error::Manifest(reason)) => assert!(
            reason.contains("of its footer names type") && reason.contains("the footer is corrupt"),
            "{reason}"
        ),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

/// Found by the `columnar` fuzz target: a postscript whose footer and metadata lengths run
/// past the start of the file made orc-rust allocate them (2 PiB) before reading.
#[test]
fn an_orc_postscript_with_lengths_beyond_the_file_is_an_unreadable_file() {
    let data = include_bytes!("../../../../tests/fixtures/fuzz/orc-huge-footer-length.orc");
    match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
        Err(Error::Manifest(reason)) => {
            assert!(
                reason.contains("its postscript gives a footer of"),
                "{reason}"
            )
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

/// Found by the `columnar` fuzz target: a SNAPPY footer chunk declaring 2 GiB was allocated
/// (by the type check, and by orc-rust after it); such a file is refused before either.
#[test]
fn an_orc_footer_declaring_gigabytes_is_not_allocated() {
    let data =
        include_bytes!("../../../../tests/fixtures/fuzz/orc-snappy-footer-declares-2gib.orc");
    match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
        Err(Error::Manifest(reason)) => {
            assert!(reason.contains("a footer is a few kilobytes"), "{reason}")
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn the_orc_fixtures_pass_the_type_check() {
    for name in ["versioned.orc", "versioned-snappy.orc"] {
        let path = format!(
            "{}/../tests/fixtures/inventory/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = Bytes::from(std::fs::read(&path).unwrap());
        assert_eq!(
            check_orc_types(&data),
            Ok(true),
            "{name}: checked, and sound"
        );
    }
}

fn tasks(format: ColumnarFormat, data: impl Into<Bytes>) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    let count = parse_columnar(format, data.into(), FILE, |t| {
        out.push(t);
        true
    })?;
    assert_eq!(count, out.len() as u64, "the count is the number emitted");
    Ok(out)
}

fn manifest_error<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(Error::Manifest(reason)) => reason,
        other => panic!("expected Error::Manifest, got {other:?}"),
    }
}

/// The tasks of scripts/make_inventory_fixtures.py's rows: the delete marker is gone, keys are
/// raw ('+', '%', spaces, unicode unchanged), null and empty version ids are None.
fn golden_tasks() -> Vec<Task> {
    vec![
        task("photos/2026/IMG_0001.JPG", Some("3HL4kqtJvjVBH40Nrjfkd")),
        task("docs/with space/Quarterly report (final).pdf", Some("null")),
        task("unicode/日本語/été 🦀.txt", Some("a1b2c3")),
        task("math/1+1=2 & 100%.txt", Some("Q8d9")),
        task("pre-versioning/object.bin", None),
        task("empty-version/object.bin", None),
        task("marker-null/object.bin", Some("v9")),
    ]
}

macro_rules! fixture {
    ($name:literal) => {
        &include_bytes!(concat!("../../../../tests/fixtures/inventory/", $name))[..]
    };
}

#[test]
fn pyarrow_parquet_golden_files_give_the_exact_tasks() {
    for (name, data) in [
        ("versioned.parquet (snappy)", fixture!("versioned.parquet")),
        ("versioned-gzip.parquet", fixture!("versioned-gzip.parquet")),
        ("versioned-zstd.parquet", fixture!("versioned-zstd.parquet")),
    ] {
        let got = tasks(ColumnarFormat::Parquet, data).unwrap();
        assert_eq!(got, golden_tasks(), "{name}");
    }
}

#[test]
fn pyarrow_orc_golden_files_give_the_exact_tasks() {
    for (name, data) in [
        ("versioned.orc (zlib)", fixture!("versioned.orc")),
        ("versioned-snappy.orc", fixture!("versioned-snappy.orc")),
    ] {
        let got = tasks(ColumnarFormat::Orc, data).unwrap();
        assert_eq!(got, golden_tasks(), "{name}");
    }
}

#[test]
fn truncated_golden_files_fail_naming_the_file() {
    let reason = manifest_error(tasks(
        ColumnarFormat::Parquet,
        fixture!("truncated-versioned.parquet"),
    ));
    assert!(
        reason.starts_with(&format!("{FILE}: not a readable Parquet file:")),
        "{reason}"
    );
    let reason = manifest_error(tasks(
        ColumnarFormat::Orc,
        fixture!("truncated-versioned.orc"),
    ));
    assert!(
        reason.starts_with(&format!("{FILE}: not a readable ORC file:")),
        "{reason}"
    );
}

#[test]
fn a_file_of_the_other_format_or_garbage_is_unreadable() {
    let reason = manifest_error(tasks(ColumnarFormat::Orc, fixture!("versioned.parquet")));
    assert!(
        reason.starts_with(&format!("{FILE}: not a readable ORC file")),
        "{reason}"
    );
    let reason = manifest_error(tasks(ColumnarFormat::Parquet, fixture!("versioned.orc")));
    assert!(
        reason.starts_with(&format!("{FILE}: not a readable Parquet file")),
        "{reason}"
    );
    for format in [ColumnarFormat::Parquet, ColumnarFormat::Orc] {
        for data in [&b""[..], b"\"b\",\"k\"\n", &[0u8; 4096][..]] {
            let reason = manifest_error(tasks(format, data));
            assert!(reason.starts_with(FILE), "{format}: {reason}");
        }
    }
}

#[test]
fn early_stop_returns_the_count_so_far() {
    for (format, data) in [
        (ColumnarFormat::Parquet, fixture!("versioned.parquet")),
        (ColumnarFormat::Orc, fixture!("versioned.orc")),
    ] {
        let mut seen = 0;
        let count = parse_columnar(format, Bytes::from_static(data), FILE, |_| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!((count, seen), (2, 2), "{format}");
    }
}

// --- files written by the Rust writers ------------------------------------------------

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn write(format: ColumnarFormat, batch: &RecordBatch) -> Bytes {
    let mut out = Vec::new();
    match format {
        ColumnarFormat::Parquet => {
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
            writer.write(batch).unwrap();
            writer.close().unwrap();
        }
        ColumnarFormat::Orc => {
            let mut writer = orc_rust::ArrowWriterBuilder::new(&mut out, batch.schema())
                .try_build()
                .unwrap();
            writer.write(batch).unwrap();
            writer.close().unwrap();
        }
    }
    out.into()
}

const FORMATS: [ColumnarFormat; 2] = [ColumnarFormat::Parquet, ColumnarFormat::Orc];

#[test]
fn non_versioned_inventory_with_only_bucket_and_key() {
    let data = batch(vec![
        ("bucket", strings(&[Some(BUCKET), Some(BUCKET)])),
        ("key", strings(&[Some("a b+c%20"), Some("dir/é")])),
    ]);
    for format in FORMATS {
        let got = tasks(format, write(format, &data)).unwrap();
        assert_eq!(
            got,
            vec![task("a b+c%20", None), task("dir/é", None)],
            "{format}"
        );
    }
}

#[test]
fn columns_in_another_order_with_extra_columns() {
    let data = batch(vec![
        ("storage_class", strings(&[Some("STANDARD"); 3])),
        (
            "is_delete_marker",
            Arc::new(BooleanArray::from(vec![Some(false), Some(true), None])),
        ),
        (
            "size",
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        ),
        ("key", strings(&[Some("k1"), Some("gone"), Some("k3")])),
        ("e_tag", strings(&[Some("x"), None, Some("y")])),
        ("version_id", strings(&[Some("v1"), Some("v2"), Some("")])),
        (
            "is_latest",
            Arc::new(BooleanArray::from(vec![true, true, false])),
        ),
        ("bucket", strings(&[Some(BUCKET); 3])),
    ]);
    for format in FORMATS {
        let got = tasks(format, write(format, &data)).unwrap();
        assert_eq!(
            got,
            vec![task("k1", Some("v1")), task("k3", None)],
            "{format}"
        );
    }
}

#[test]
fn many_batches_keep_file_order_and_skip_every_delete_marker() {
    let n = BATCH_ROWS * 2 + 17;
    let keys: Vec<String> = (0..n).map(|i| format!("k/{i}")).collect();
    let data = batch(vec![
        ("bucket", strings(&vec![Some(BUCKET); n])),
        (
            "key",
            strings(&keys.iter().map(|k| Some(k.as_str())).collect::<Vec<_>>()),
        ),
        (
            "is_delete_marker",
            Arc::new(BooleanArray::from(
                (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            )),
        ),
    ]);
    let expected: Vec<Task> = (0..n)
        .filter(|i| i % 3 != 0)
        .map(|i| task(&keys[i], None))
        .collect();
    for format in FORMATS {
        let got = tasks(format, write(format, &data)).unwrap();
        assert_eq!(got.len(), expected.len(), "{format}");
        assert_eq!(got, expected, "{format}");
    }
}

#[test]
fn orc_stripes_are_read_one_after_another_in_order() {
    let n = 5000;
    let keys: Vec<String> = (0..n).map(|i| format!("stripe/{i:05}")).collect();
    let data = batch(vec![
        ("bucket", strings(&vec![Some(BUCKET); n])),
        (
            "key",
            strings(&keys.iter().map(|k| Some(k.as_str())).collect::<Vec<_>>()),
        ),
    ]);
    let mut out = Vec::new();
    let mut writer = orc_rust::ArrowWriterBuilder::new(&mut out, data.schema())
        .with_stripe_byte_size(4096)
        .try_build()
        .unwrap();
    for start in (0..n).step_by(500) {
        writer.write(&data.slice(start, 500)).unwrap();
    }
    writer.close().unwrap();
    let mut file = Bytes::from(out);
    let stripes = orc_rust::reader::metadata::read_metadata(&mut file)
        .unwrap()
        .stripe_metadatas()
        .len();
    assert!(stripes >= 5, "the file has {stripes} stripes");
    let got = tasks(ColumnarFormat::Orc, file).unwrap();
    let expected: Vec<Task> = keys.iter().map(|k| task(k, None)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_file_without_a_key_column_is_refused() {
    let data = batch(vec![
        ("bucket", strings(&[Some(BUCKET)])),
        ("size", Arc::new(Int64Array::from(vec![1]))),
    ]);
    for format in FORMATS {
        let reason = manifest_error(tasks(format, write(format, &data)));
        assert_eq!(
            reason,
            format!("{FILE}: the {format} file has no key column (its columns: bucket, size)")
        );
    }
    let data = batch(vec![("key", strings(&[Some("k")]))]);
    for format in FORMATS {
        let reason = manifest_error(tasks(format, write(format, &data)));
        assert!(reason.contains("has no bucket column"), "{reason}");
    }
}

#[test]
fn a_key_column_of_the_wrong_type_is_refused() {
    let data = batch(vec![
        ("bucket", strings(&[Some(BUCKET)])),
        ("key", Arc::new(Int64Array::from(vec![1]))),
    ]);
    for format in FORMATS {
        let reason = manifest_error(tasks(format, write(format, &data)));
        assert_eq!(
            reason,
            format!("{FILE}: the {format} column key has type Int64; S3 Inventory writes it as a string")
        );
    }
}

#[test]
fn null_or_empty_key_or_bucket_fails_with_the_row() {
    type Column<'a> = &'a [Option<&'a str>];
    let cases: [(Column, Column, &str); 3] = [
        (
            &[Some(BUCKET), Some(BUCKET)],
            &[Some("k"), None],
            "row 2: the key is null",
        ),
        (
            &[Some(BUCKET), Some(BUCKET)],
            &[Some(""), Some("k")],
            "row 1: the key is empty",
        ),
        (
            &[Some(BUCKET), None],
            &[Some("k"), Some("k2")],
            "row 2: the bucket is null",
        ),
    ];
    for (buckets, keys, expected) in cases {
        let data = batch(vec![("bucket", strings(buckets)), ("key", strings(keys))]);
        for format in FORMATS {
            let reason = manifest_error(tasks(format, write(format, &data)));
            assert_eq!(reason, format!("{FILE} {expected}"), "{format}");
        }
    }
}

#[test]
fn a_null_key_on_a_delete_marker_is_not_an_error() {
    let data = batch(vec![
        ("bucket", strings(&[Some(BUCKET), Some(BUCKET)])),
        ("key", strings(&[None, Some("k")])),
        (
            "is_delete_marker",
            Arc::new(BooleanArray::from(vec![true, false])),
        ),
    ]);
    for format in FORMATS {
        assert_eq!(
            tasks(format, write(format, &data)).unwrap(),
            vec![task("k", None)]
        );
    }
}

#[test]
fn column_names_match_ignoring_case() {
    let data = batch(vec![
        ("Bucket", strings(&[Some(BUCKET)])),
        ("Key", strings(&[Some("k")])),
        ("VERSION_ID", strings(&[Some("v")])),
    ]);
    for format in FORMATS {
        assert_eq!(
            tasks(format, write(format, &data)).unwrap(),
            vec![task("k", Some("v"))]
        );
    }
}

// --- spooling to a temporary file -----------------------------------------------------

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "batchops-columnar-test-{name}-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn spool_checks_the_md5_and_leaves_no_file() {
    let dir = temp_dir("spool");
    let data = fixture!("versioned.parquet");
    let md5 = hex::encode(Md5::digest(data));
    {
        let spooled = spool(
            &mut &data[..],
            &dir,
            ColumnarFormat::Parquet,
            FILE,
            Some(&md5.to_uppercase()),
        )
        .unwrap();
        assert_eq!(spooled.bytes, data.len() as u64);
        let got = parse_columnar(
            ColumnarFormat::Parquet,
            spooled.reader(FILE).unwrap(),
            FILE,
            |_| true,
        )
        .unwrap();
        assert_eq!(got, golden_tasks().len() as u64);
        assert_eq!(
            entries(&dir),
            0,
            "the copy has no directory entry while read"
        );
    }
    assert_eq!(entries(&dir), 0);

    let wrong = "0".repeat(32);
    let reason = manifest_error(spool(
        &mut &data[..],
        &dir,
        ColumnarFormat::Parquet,
        FILE,
        Some(&wrong),
    ));
    assert_eq!(
        reason,
        format!(
            "{FILE}: MD5 mismatch: manifest.json gives MD5checksum {wrong} but the file's {} bytes hash to {md5}",
            data.len()
        )
    );
    assert_eq!(entries(&dir), 0, "no copy is left after a mismatch");

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection reset"))
        }
    }
    let reason = manifest_error(spool(&mut Failing, &dir, ColumnarFormat::Orc, FILE, None));
    assert_eq!(
        reason,
        format!("{FILE}: cannot read the file after 0 bytes: connection reset")
    );
    assert_eq!(entries(&dir), 0);
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn spool_into_a_missing_directory_names_the_file() {
    let dir = std::env::temp_dir().join(format!("batchops-missing-{}", uuid::Uuid::new_v4()));
    let reason = manifest_error(spool(&mut &b"x"[..], &dir, ColumnarFormat::Orc, FILE, None));
    assert!(
        reason.starts_with(&format!("{FILE}: cannot write a temporary copy to")),
        "{reason}"
    );
}

// --- manifest.json fileFormat and fileSchema ------------------------------------------

const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); optional boolean is_multipart_uploaded; optional binary replication_status (UTF8); optional binary encryption_status (UTF8); optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary object_lock_mode (UTF8); optional binary object_lock_legal_hold_status (UTF8); optional binary intelligent_tiering_access_tier (UTF8); optional binary bucket_key_status (UTF8); optional binary checksum_algorithm (UTF8); optional binary object_access_control_list (UTF8); optional binary object_owner (UTF8);}";
const ORC_SCHEMA: &str = "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,size:bigint,last_modified_date:timestamp,e_tag:string,storage_class:string,is_multipart_uploaded:boolean,replication_status:string,encryption_status:string,object_lock_retain_until_date:timestamp,object_lock_mode:string,object_lock_legal_hold_status:string,intelligent_tiering_access_tier:string,bucket_key_status:string,checksum_algorithm:string,object_access_control_list:string,object_owner:string>";

#[test]
fn file_formats_are_recognised() {
    assert_eq!(
        ColumnarFormat::from_file_format("Parquet"),
        Some(ColumnarFormat::Parquet)
    );
    assert_eq!(
        ColumnarFormat::from_file_format("ORC"),
        Some(ColumnarFormat::Orc)
    );
    assert_eq!(
        ColumnarFormat::from_file_format(" parquet "),
        Some(ColumnarFormat::Parquet)
    );
    assert_eq!(ColumnarFormat::from_file_format("CSV"), None);
    assert_eq!(ColumnarFormat::from_file_format("Avro"), None);
}

#[test]
fn s3_inventory_file_schemas_give_their_columns() {
    let parquet = file_schema_columns(ColumnarFormat::Parquet, PARQUET_SCHEMA);
    let orc = file_schema_columns(ColumnarFormat::Orc, ORC_SCHEMA);
    assert_eq!(parquet.len(), 20);
    assert_eq!(parquet, orc);
    assert_eq!(
        &parquet[..6],
        [
            "bucket",
            "key",
            "version_id",
            "is_latest",
            "is_delete_marker",
            "size"
        ]
    );
    assert_eq!(parquet[19], "object_owner");
    assert_eq!(
        file_schema_columns(
            ColumnarFormat::Orc,
            "struct<bucket:string,tags:struct<a:string,b:int>,key:string>"
        ),
        ["bucket", "tags", "key"]
    );
    check_file_schema(ColumnarFormat::Parquet, PARQUET_SCHEMA, "m").unwrap();
    check_file_schema(ColumnarFormat::Orc, ORC_SCHEMA, "m").unwrap();
}

#[test]
fn a_file_schema_without_key_is_refused() {
    let reason = manifest_error(check_file_schema(
        ColumnarFormat::Orc,
        "struct<bucket:string,size:bigint>",
        "manifest s3://b/manifest.json",
    ));
    assert_eq!(
        reason,
        "manifest s3://b/manifest.json: the ORC inventory fileSchema \"struct<bucket:string,size:bigint>\" has no key column"
    );
    let reason = manifest_error(check_file_schema(
        ColumnarFormat::Parquet,
        "Bucket, Key",
        "m",
    ));
    assert!(reason.contains("has no bucket column"), "{reason}");
}

const INVENTORY_JSON: &str = r#"{
    "sourceBucket": "example-source-bucket",
    "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
    "version": "2016-11-30",
    "creationTimestamp": "1514944800000",
    "fileFormat": "FORMAT",
    "fileSchema": "SCHEMA",
    "files": [{"key": "inv/data/f.FORMAT", "size": 1, "MD5checksum": "00"}]
}"#;

fn inventory(format: &str, schema: &str) -> InventoryManifest {
    let json = INVENTORY_JSON
        .replace("FORMAT", format)
        .replace("SCHEMA", schema);
    InventoryManifest::parse(json.as_bytes(), "m").unwrap()
}

#[test]
fn inventory_manifests_in_parquet_and_orc_are_supported() {
    inventory("Parquet", PARQUET_SCHEMA)
        .check_supported("m")
        .unwrap();
    inventory("ORC", ORC_SCHEMA).check_supported("m").unwrap();
    let reason = manifest_error(inventory("ORC", "struct<bucket:string>").check_supported("m"));
    assert!(reason.contains("has no key column"), "{reason}");
    let reason = manifest_error(inventory("Avro", "x").check_supported("m"));
    assert_eq!(
        reason,
        "m: inventory fileFormat Avro is not supported; S3 Inventory writes CSV, ORC or Parquet"
    );
}
