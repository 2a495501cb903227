//! The CSV manifest reader on any bytes: an error or tasks, never a panic, a hang or an
//! allocation beyond the row bound. The first byte picks the columns, and whether the input is
//! read from a resume point (as a continuation reads it) or a byte at a time.
#![no_main]

use batchops::manifest::{parse_csv_manifest, parse_csv_manifest_from, ResumePoint, MAX_ROW_BYTES};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Hands out one byte per read, the worst a network stream can do.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
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

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let names: &[&str] = match mode % 4 {
        0 => &["Bucket", "Key"],
        1 => &["Bucket", "Key", "VersionId"],
        2 => &["Ignore", "Bucket", "Key"],
        _ => &["Bucket", "Key", "VersionId", "Ignore"],
    };
    let fields: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let check = |task: &batchops::manifest::Task| {
        assert!(!task.key.is_empty());
        assert!(task.key.len() <= 3 * MAX_ROW_BYTES);
    };
    let mut count = 0u64;
    let result = if mode & 4 == 0 {
        parse_csv_manifest(data, &fields, "fuzz", |t| {
            check(&t);
            count += 1;
            true
        })
    } else if mode & 8 == 0 {
        parse_csv_manifest(Trickle(data), &fields, "fuzz", |t| {
            check(&t);
            count += 1;
            true
        })
    } else {
        let start = ResumePoint {
            task: 7,
            byte: 1,
            line: 1,
        };
        parse_csv_manifest_from(data, &fields, "fuzz", start, |t, point| {
            check(&t);
            assert!(point.task > start.task);
            count += 1;
            true
        })
    };
    if let Ok(n) = result {
        assert_eq!(n, count);
    }
});
