use super::*;
use std::io::{self, Read};

use md5::{Digest, Md5};

use crate::error::{Error, Result};
use flate2::write::GzEncoder;
use std::io::Write;

const SRC: &str = "manifest s3://b/m.csv";

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn task(bucket: &str, key: &str, version_id: Option<&str>) -> Task {
    Task {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.map(str::to_string),
        size: None,
    }
}

fn csv_tasks(data: &[u8], names: &[&str]) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    let count = parse_csv_manifest(data, &fields(names), SRC, |t| {
        tasks.push(t);
        true
    })?;
    assert_eq!(count, tasks.len() as u64);
    Ok(tasks)
}

/// Every task of `data` read from `start` on, with the resume point after each.
fn tasks_from(data: &[u8], start: ResumePoint) -> Result<Vec<(Task, ResumePoint)>> {
    let mut out = Vec::new();
    let from = usize::try_from(start.byte).unwrap();
    parse_csv_manifest_from(
        &data[from..],
        &fields(&["Bucket", "Key"]),
        SRC,
        start,
        |t, p| {
            out.push((t, p));
            true
        },
    )?;
    Ok(out)
}

#[test]
fn a_csv_manifest_resumed_at_any_point_gives_exactly_the_remaining_tasks() {
    // A byte order mark, CRLF and LF endings, a blank line, a quoted key with a line break.
    let data = "\u{feff}b,k0\r\nb,k1\n\nb,\"k%0A2\"\r\nb,\"k\n3\"\nb,k4\nb,k5".as_bytes();
    let whole = tasks_from(data, ResumePoint::default()).unwrap();
    let keys: Vec<&str> = whole.iter().map(|(t, _)| t.key.as_str()).collect();
    assert_eq!(keys, ["k0", "k1", "k\n2", "k\n3", "k4", "k5"]);
    for (i, (_, point)) in whole.iter().enumerate() {
        assert_eq!(point.task, i as u64 + 1);
        let rest = tasks_from(data, *point).unwrap();
        assert_eq!(
            rest.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
            whole[i + 1..]
                .iter()
                .map(|(t, _)| t.clone())
                .collect::<Vec<_>>(),
            "resumed after task {i} at {point:?}"
        );
        assert_eq!(rest, whole[i + 1..].to_vec(), "the same points again");
    }
}

#[test]
fn a_resumed_csv_manifest_names_lines_from_the_start_of_the_file() {
    let data = b"b,k0\r\nb,k1\nb,\"a\nb\"\nb,k3\nb,k4,extra\n";
    let whole = manifest_error(csv_tasks(data, &["Bucket", "Key"]));
    assert!(
        whole.ends_with("line 6: expected 2 columns (Bucket, Key), found 3"),
        "{whole}"
    );
    let mut points = Vec::new();
    let _ = parse_csv_manifest_from(
        &data[..],
        &fields(&["Bucket", "Key"]),
        SRC,
        ResumePoint::default(),
        |_, p| {
            points.push(p);
            true
        },
    );
    for point in points {
        let from = usize::try_from(point.byte).unwrap();
        let resumed = parse_csv_manifest_from(
            &data[from..],
            &fields(&["Bucket", "Key"]),
            SRC,
            point,
            |_, _| true,
        );
        match resumed {
            Err(Error::Manifest(reason)) => assert_eq!(reason, whole, "from {point:?}"),
            other => panic!("{other:?}"),
        }
    }
}

fn manifest_error(result: Result<Vec<Task>>) -> String {
    match result {
        Err(Error::Manifest(reason)) => reason,
        other => panic!("expected Error::Manifest, got {other:?}"),
    }
}

/// Hands out one byte per read, the worst a network stream can do.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((byte, rest)), Some(slot)) => {
                *slot = *byte;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

fn csv_tasks_trickled(data: &[u8], names: &[&str]) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    parse_csv_manifest(Trickle(data), &fields(names), SRC, |t| {
        tasks.push(t);
        true
    })?;
    Ok(tasks)
}

#[test]
fn csv_two_columns() {
    let tasks = csv_tasks(b"b1,k1\nb2,dir/k2\n", &["Bucket", "Key"]).unwrap();
    assert_eq!(
        tasks,
        vec![task("b1", "k1", None), task("b2", "dir/k2", None)]
    );
}

#[test]
fn csv_three_columns_with_empty_version() {
    let tasks = csv_tasks(b"b,k1,v1\nb,k2,\n", &["Bucket", "Key", "VersionId"]).unwrap();
    assert_eq!(
        tasks,
        vec![task("b", "k1", Some("v1")), task("b", "k2", None)]
    );
}

#[test]
fn csv_columns_follow_fields_including_ignore() {
    let tasks = csv_tasks(b"x,v1,k1,b\n", &["Ignore", "VersionId", "Key", "Bucket"]).unwrap();
    assert_eq!(tasks, vec![task("b", "k1", Some("v1"))]);
}

#[test]
fn csv_bom_crlf_and_blank_trailing_lines() {
    let data = b"\xEF\xBB\xBFb,k1\r\nb,k2\r\n\r\n\n";
    assert_eq!(
        csv_tasks(data, &["Bucket", "Key"]).unwrap(),
        vec![task("b", "k1", None), task("b", "k2", None)]
    );
}

#[test]
fn csv_bom_is_skipped_even_when_reads_are_tiny() {
    let data = b"\xEF\xBB\xBFb,k1\nb,k2\n";
    let mut tasks = Vec::new();
    parse_csv_manifest(Trickle(data), &fields(&["Bucket", "Key"]), SRC, |t| {
        tasks.push(t);
        true
    })
    .unwrap();
    assert_eq!(tasks, vec![task("b", "k1", None), task("b", "k2", None)]);
}

#[test]
fn csv_quoted_fields_with_commas_quotes_and_newlines() {
    let data = b"\"b\",\"a,b\"\nb,\"say \"\"hi\"\"\"\nb,\"two\nlines\"\n";
    assert_eq!(
        csv_tasks(data, &["Bucket", "Key"]).unwrap(),
        vec![
            task("b", "a,b", None),
            task("b", "say \"hi\"", None),
            task("b", "two\nlines", None)
        ]
    );
}

#[test]
fn csv_unterminated_quote_fails_with_the_line_it_opens_on() {
    // Found by a hostile run: the csv crate runs an open quote to the end of the file, so
    // two lines became one task whose key held a newline.
    let data = b"src,a.txt\nsrc,\"a.txt\nsrc,a.txt\n";
    let reason = manifest_error(csv_tasks(data, &["Bucket", "Key"]));
    assert!(
        reason.starts_with(&format!(
            "{SRC} line 2: a quoted field opened on this line is never closed"
        )),
        "{reason}"
    );
    // The same, read a byte at a time, and without a final newline.
    let reason = manifest_error(csv_tasks_trickled(b"b,k\nb,k\nb,\"k", &["Bucket", "Key"]));
    assert!(
        reason.starts_with(&format!("{SRC} line 3: a quoted field")),
        "{reason}"
    );
}

#[test]
fn csv_quotes_that_close_and_literal_quotes_still_parse() {
    let data = b"b,\"a\"\"b\"\nb,x\"y\nb,\"q\"\n\"b\",\"\"\"\"\n";
    let tasks = csv_tasks(data, &["Bucket", "Key"]).unwrap();
    let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["a\"b", "x\"y", "q", "\""]);
}

#[test]
fn csv_rows_have_a_bound() {
    let mut data = b"b,k\nb,".to_vec();
    data.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES + 10));
    data.extend_from_slice(b"\nb,k\n");
    let reason = manifest_error(csv_tasks(&data, &["Bucket", "Key"]));
    assert!(
        reason.starts_with(&format!("{SRC} line 2: a row is longer than 65536 bytes")),
        "{reason}"
    );
    // An open quote followed by a large file fails at the bound, not at the end of the file.
    let mut data = b"b,\"k\n".to_vec();
    for i in 0..10_000 {
        data.extend_from_slice(format!("b,key{i}\n").as_bytes());
    }
    let reason = manifest_error(csv_tasks(&data, &["Bucket", "Key"]));
    assert!(
        reason.contains("line 1: a quoted field opened on line 1 runs on for more than"),
        "{reason}"
    );
}

#[test]
fn csv_keys_are_url_decoded() {
    let data = b"b,my+file%2B1.txt\nb,caf%C3%A9/%25done%2C\nb,plain/%F0%9F%A6%80\n";
    assert_eq!(
        csv_tasks(data, &["Bucket", "Key"]).unwrap(),
        vec![
            task("b", "my file+1.txt", None),
            task("b", "café/%done,", None),
            task("b", "plain/🦀", None)
        ]
    );
}

#[test]
fn csv_wrong_column_count_names_the_line() {
    let reason = manifest_error(csv_tasks(b"b,k\nb,k\nb,k,x\n", &["Bucket", "Key"]));
    assert_eq!(
        reason,
        "manifest s3://b/m.csv line 3: expected 2 columns (Bucket, Key), found 3"
    );
    let reason = manifest_error(csv_tasks(b"b,k,v\nb,k\n", &["Bucket", "Key", "VersionId"]));
    assert_eq!(
        reason,
        "manifest s3://b/m.csv line 2: expected 3 columns (Bucket, Key, VersionId), found 2"
    );
}

#[test]
fn csv_line_numbers_count_blank_lines_and_quoted_newlines() {
    let reason = manifest_error(csv_tasks(
        b"b,\"multi\nline\"\n\nb,k,extra\n",
        &["Bucket", "Key"],
    ));
    assert!(
        reason.starts_with("manifest s3://b/m.csv line 4: "),
        "{reason}"
    );
}

#[test]
fn csv_bad_percent_encoding_names_the_line() {
    let reason = manifest_error(csv_tasks(b"b,ok\nb,bad%zzkey\n", &["Bucket", "Key"]));
    assert_eq!(
        reason,
        "manifest s3://b/m.csv line 2: cannot decode key \"bad%zzkey\": invalid percent-escape \"%zz\" at byte 3"
    );
    let reason = manifest_error(csv_tasks(b"b,truncated%4\n", &["Bucket", "Key"]));
    assert!(reason.contains("line 1: cannot decode key"), "{reason}");
}

#[test]
fn csv_invalid_utf8_after_decoding_names_the_line() {
    let reason = manifest_error(csv_tasks(b"b,k\nb,k\nb,%FF%FE\n", &["Bucket", "Key"]));
    assert_eq!(
        reason,
        "manifest s3://b/m.csv line 3: cannot decode key \"%FF%FE\": the decoded key is not valid UTF-8"
    );
}

#[test]
fn csv_empty_key_and_empty_bucket_name_the_line() {
    let reason = manifest_error(csv_tasks(b"b,k\nb,\n", &["Bucket", "Key"]));
    assert_eq!(reason, "manifest s3://b/m.csv line 2: the key is empty");
    let reason = manifest_error(csv_tasks(b",k\n", &["Bucket", "Key"]));
    assert_eq!(
        reason,
        "manifest s3://b/m.csv line 1: the bucket name is empty"
    );
}

#[test]
fn csv_bad_fields_spec_is_refused() {
    let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket"]));
    assert!(reason.contains("must name Key"), "{reason}");
    let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket", "Key", "Key"]));
    assert!(reason.contains("Key more than once"), "{reason}");
    let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket", "Name"]));
    assert!(reason.contains("\"Name\""), "{reason}");
}

#[test]
fn csv_empty_manifest_has_no_tasks() {
    assert_eq!(csv_tasks(b"", &["Bucket", "Key"]).unwrap(), vec![]);
    assert_eq!(
        csv_tasks(b"\xEF\xBB\xBF\n\n", &["Bucket", "Key"]).unwrap(),
        vec![]
    );
}

#[test]
fn csv_stops_quietly_when_emit_says_stop() {
    let mut seen = 0;
    let count = parse_csv_manifest(
        &b"b,1\nb,2\nb,3\nb,4\n"[..],
        &fields(&["Bucket", "Key"]),
        SRC,
        |_| {
            seen += 1;
            seen < 2
        },
    )
    .unwrap();
    assert_eq!((count, seen), (2, 2));
}

// --- S3 Inventory ----------------------------------------------------------------------

const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size";
const FILE: &str = "inventory data file s3://dest/inv/data/1.csv.gz";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn inventory_tasks(stored: &[u8], schema: &str, md5: Option<&str>) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    let count = parse_inventory_data_file(stored, schema, FILE, md5, |t| {
        tasks.push(t);
        true
    })?;
    assert_eq!(count, tasks.len() as u64);
    Ok(tasks)
}

#[test]
fn inventory_rows_follow_file_schema_and_skip_delete_markers() {
    let csv = concat!(
        "\"src\",\"a%20b.txt\",\"v1\",\"true\",\"false\",\"10\"\n",
        "\"src\",\"deleted\",\"v2\",\"true\",\"true\",\"\"\n",
        "\"src\",\"old+version\",\"v0\",\"false\",\"false\",\"3\"\n",
        "\"src\",\"unversioned\",\"\",\"true\",\"false\",\"4\"\n",
    );
    let stored = gzip(csv.as_bytes());
    let tasks = inventory_tasks(&stored, SCHEMA, Some(&md5_hex(&stored))).unwrap();
    assert_eq!(
        tasks,
        vec![
            task("src", "a b.txt", Some("v1")),
            task("src", "old version", Some("v0")),
            task("src", "unversioned", None)
        ]
    );
}

#[test]
fn inventory_columns_in_any_order() {
    let schema = "Size, Key, StorageClass, Bucket";
    let stored = gzip(b"\"5\",\"dir/f%C3%A9\",\"STANDARD\",\"src\"\n");
    let tasks = inventory_tasks(&stored, schema, Some(&md5_hex(&stored))).unwrap();
    assert_eq!(tasks, vec![task("src", "dir/fé", None)]);
}

#[test]
fn inventory_with_several_gzip_members_is_read_whole() {
    let mut stored = gzip(b"\"src\",\"k1\"\n");
    stored.extend(gzip(b"\"src\",\"k2\"\n"));
    let tasks = inventory_tasks(&stored, "Bucket, Key", Some(&md5_hex(&stored))).unwrap();
    assert_eq!(
        tasks,
        vec![task("src", "k1", None), task("src", "k2", None)]
    );
}

#[test]
fn inventory_md5_mismatch_names_the_file() {
    let stored = gzip(b"\"src\",\"k1\"\n");
    let reason = manifest_error(inventory_tasks(
        &stored,
        "Bucket, Key",
        Some("0123456789abcdef0123456789abcdef"),
    ));
    assert!(
        reason.starts_with(
            "inventory data file s3://dest/inv/data/1.csv.gz: MD5 mismatch: manifest.json gives MD5checksum 0123456789abcdef0123456789abcdef but the file's"
        ),
        "{reason}"
    );
    assert!(reason.ends_with(&md5_hex(&stored)), "{reason}");
}

#[test]
fn inventory_md5_is_compared_ignoring_case() {
    let stored = gzip(b"\"src\",\"k1\"\n");
    let upper = md5_hex(&stored).to_uppercase();
    assert_eq!(
        inventory_tasks(&stored, "Bucket, Key", Some(&upper))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn inventory_truncated_gzip_names_the_file() {
    let rows: String = (0..200).map(|i| format!("\"src\",\"key-{i}\"\n")).collect();
    let stored = gzip(rows.as_bytes());
    let truncated = &stored[..stored.len() - 10];
    let reason = manifest_error(inventory_tasks(
        truncated,
        "Bucket, Key",
        Some(&md5_hex(truncated)),
    ));
    assert!(
        reason.starts_with(
            "inventory data file s3://dest/inv/data/1.csv.gz: cannot read the gzipped CSV"
        ),
        "{reason}"
    );
}

#[test]
fn inventory_not_gzip_names_the_file() {
    let stored = b"\"src\",\"k1\"\n";
    let reason = manifest_error(inventory_tasks(stored, "Bucket, Key", None));
    assert!(reason.starts_with(FILE), "{reason}");
    assert!(
        reason.contains("cannot read the gzipped CSV at the start"),
        "{reason}"
    );
}

#[test]
fn inventory_row_errors_name_file_and_line() {
    let stored = gzip(b"\"src\",\"k1\"\n\"src\",\"k2\",\"extra\"\n");
    let reason = manifest_error(inventory_tasks(&stored, "Bucket, Key", None));
    assert_eq!(
        reason,
        format!("{FILE} line 2: expected 2 columns (Bucket, Key), found 3")
    );
}

#[test]
fn inventory_schema_without_key_is_refused() {
    let stored = gzip(b"\"src\"\n");
    let reason = manifest_error(inventory_tasks(&stored, "Bucket, Size", None));
    assert!(reason.contains("has no Key column"), "{reason}");
}

#[test]
fn plain_inventory_csv_parses() {
    let mut tasks = Vec::new();
    let count = parse_inventory_csv(&b"\"src\",\"k%2B1\"\n"[..], "Bucket, Key", FILE, |t| {
        tasks.push(t);
        true
    })
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(tasks, vec![task("src", "k+1", None)]);
}

const INVENTORY_JSON: &str = r#"{
    "sourceBucket": "example-source-bucket",
    "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
    "version": "2016-11-30",
    "creationTimestamp": "1514944800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size",
    "files": [
        {
            "key": "Inventory/example-source-bucket/2016-11-06T21-32Z/files/939c6d46.csv.gz",
            "size": 2147483647,
            "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc"
        }
    ]
}"#;

#[test]
fn inventory_manifest_json_parses() {
    let inventory = InventoryManifest::parse(INVENTORY_JSON.as_bytes(), SRC).unwrap();
    assert_eq!(inventory.source_bucket, "example-source-bucket");
    assert_eq!(
        inventory.destination_bucket_name(),
        "example-inventory-destination-bucket"
    );
    assert_eq!(
        inventory.creation_timestamp.as_deref(),
        Some("1514944800000")
    );
    assert_eq!(inventory.files.len(), 1);
    assert_eq!(inventory.files[0].size, 2147483647);
    assert_eq!(
        inventory.files[0].md5_checksum,
        "f11166069f1990abeb9c97ace9cdfabc"
    );
    inventory.check_supported(SRC).unwrap();
    assert_eq!(
        inventory.data_file_source(&inventory.files[0]),
        "inventory data file s3://example-inventory-destination-bucket/Inventory/example-source-bucket/2016-11-06T21-32Z/files/939c6d46.csv.gz"
    );
    // Serialises back with AWS's field names.
    let json = serde_json::to_value(&inventory).unwrap();
    assert_eq!(
        json["files"][0]["MD5checksum"],
        "f11166069f1990abeb9c97ace9cdfabc"
    );
    assert_eq!(json["fileSchema"], inventory.file_schema.as_str());
}

#[test]
fn inventory_formats_other_than_csv_orc_parquet_are_refused() {
    let json = INVENTORY_JSON.replace("\"CSV\"", "\"JSON\"");
    let inventory = InventoryManifest::parse(json.as_bytes(), SRC).unwrap();
    match inventory.check_supported(SRC) {
        Err(Error::Manifest(reason)) => assert_eq!(
            reason,
            format!("{SRC}: inventory fileFormat JSON is not supported; S3 Inventory writes CSV, ORC or Parquet")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inventory_manifest_json_errors_name_the_object() {
    match InventoryManifest::parse(b"{\"files\": []}", SRC) {
        Err(Error::Manifest(reason)) => assert!(
            reason.starts_with("manifest s3://b/m.csv: not a valid S3 Inventory manifest.json"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

// --- ETag and keys -------------------------------------------------------------------

#[test]
fn etag_compares_without_quotes() {
    check_etag(SRC, "abc123", Some("\"abc123\"")).unwrap();
    check_etag(SRC, "\"abc123\"", Some("abc123")).unwrap();
    match check_etag(SRC, "\"wrong\"", Some("\"abc123\"")) {
        Err(Error::Manifest(reason)) => assert_eq!(
            reason,
            "manifest s3://b/m.csv: ETag mismatch: the job expects \"wrong\" but the object's ETag is \"abc123\""
        ),
        other => panic!("{other:?}"),
    }
    assert!(check_etag(SRC, "x", None).is_err());
}

#[test]
fn decode_key_is_form_decoding() {
    assert_eq!(decode_key("a+b%20c").unwrap(), "a b c");
    assert_eq!(decode_key("%2b%2B").unwrap(), "++");
    assert_eq!(decode_key("%E6%97%A5%E6%9C%AC").unwrap(), "日本");
    assert_eq!(decode_key("raw/été").unwrap(), "raw/été");
    assert_eq!(decode_key("").unwrap(), "");
    assert!(decode_key("%").is_err());
    assert!(decode_key("%g1").is_err());
    assert!(decode_key("%C3").is_err(), "a lone UTF-8 lead byte");
}

#[test]
fn lossy_decoding_keeps_bad_escapes_and_replaces_bytes_that_are_not_utf8() {
    assert_eq!(decode_key_lossy("a+b%2Bc"), "a b+c");
    assert_eq!(decode_key_lossy("100%+sure%"), "100% sure%");
    assert_eq!(decode_key_lossy("a%zz%4"), "a%zz%4");
    assert_eq!(decode_key_lossy("caf%C3%A9%E2%82"), "caf\u{e9}\u{fffd}");
    for key in ["dir/a b+c%d,e.txt", "\u{e9}t\u{e9}/~x", ""] {
        assert_eq!(decode_key_lossy(&encode_key(key)), key);
        assert_eq!(decode_key(&encode_key(key)).as_deref(), Ok(key));
    }
    assert!(decode_key("a%zz").is_err(), "manifests stay strict");
}

#[test]
fn encode_key_escapes_all_but_unreserved_and_slash() {
    assert_eq!(encode_key("dir/a-b_c.d~e"), "dir/a-b_c.d~e");
    assert_eq!(encode_key("a b+c%d,e\"f"), "a%20b%2Bc%25d%2Ce%22f");
    assert_eq!(encode_key("é"), "%C3%A9");
    assert_eq!(encode_key("line\nbreak"), "line%0Abreak");
}

#[test]
fn encode_then_decode_is_identity() {
    for key in [
        "with space",
        "plus+",
        "100%",
        "a,b",
        "q\"uote",
        "back\\slash",
        "日本/🦀",
        "nl\r\n",
    ] {
        assert_eq!(decode_key(&encode_key(key)).unwrap(), key);
    }
}

#[test]
fn encoded_keys_round_trip_through_a_csv_manifest() {
    let keys = [
        "with space",
        "plus+",
        "100%",
        "a,b",
        "q\"uote",
        "日本/🦀",
        "nl\nx",
    ];
    let csv: String = keys
        .iter()
        .map(|k| format!("b,{}\n", encode_key(k)))
        .collect();
    let tasks = csv_tasks(csv.as_bytes(), &["Bucket", "Key"]).unwrap();
    let decoded: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(decoded, keys);
}
