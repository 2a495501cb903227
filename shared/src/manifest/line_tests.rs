use super::*;
use std::io::{self, Read};

use crate::error::Error;

fn error_line(data: &[u8], width: usize) -> String {
    let names: Vec<String> = ["Bucket", "Key", "VersionId"][..width]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match parse_csv_manifest(data, &names, "m", |_| true) {
        Err(Error::Manifest(reason)) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn line_numbers_are_exact() {
    let cases: &[(&[u8], &str)] = &[
        (b"b,k\nb,k,x\n", "m line 2:"),
        (b"b,k\r\nb,k\r\nb,k,x\r\n", "m line 3:"),
        (b"b,k\n\n\nb,k,x\n", "m line 4:"),
        (b"b,k\r\n\r\n\r\nb,k,x\r\n", "m line 4:"),
        (b"b,\"two\nlines\"\nb,k,x\n", "m line 3:"),
        (b"b,\"two\r\nlines\"\r\n\r\nb,k,x\r\n", "m line 4:"),
        (b"b,\"x\ny\nz\",extra\n", "m line 1:"),
        (b"\n\nb,k,x", "m line 3:"),
        (b"\xEF\xBB\xBF\nb,k,x", "m line 2:"),
    ];
    for (data, expected) in cases {
        let reason = error_line(data, 2);
        assert!(
            reason.starts_with(expected),
            "{:?}: {reason}",
            String::from_utf8_lossy(data)
        );
    }
}

/// Hands out the data in reads of `size` bytes.
struct Chunked<'a> {
    data: &'a [u8],
    size: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Line numbers are worked out from the last read only, so they must stay exact when the bad
/// row is far into the input and rows straddle reads of any size.
#[test]
fn line_numbers_are_exact_far_into_the_input_whatever_the_read_sizes() {
    let mut data = Vec::new();
    let mut line = 1u64;
    for i in 0..12000 {
        match i % 4 {
            0 => data.extend_from_slice(b"bucket,\"quoted\nkey\"\r\n"),
            1 => data.extend_from_slice(b"\n"),
            _ => data.extend_from_slice(format!("bucket,key-{i:08}-padding\n").as_bytes()),
        }
        line += if i % 4 == 0 { 2 } else { 1 };
    }
    data.extend_from_slice(b"bucket,key,extra\n");
    assert!(data.len() > 3 * READ_BUFFER_BYTES);
    let expected = format!("m line {line}:");
    let names = vec!["Bucket".to_string(), "Key".to_string()];
    for size in [1, 7, 4096, READ_BUFFER_BYTES - 1, READ_BUFFER_BYTES + 13] {
        let reader = Chunked { data: &data, size };
        match parse_csv_manifest(reader, &names, "m", |_| true) {
            Err(Error::Manifest(reason)) => {
                assert!(reason.starts_with(&expected), "reads of {size}: {reason}")
            }
            other => panic!("reads of {size}: {other:?}"),
        }
    }
}
