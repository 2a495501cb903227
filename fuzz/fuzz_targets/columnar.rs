//! The Parquet and ORC inventory readers on any bytes (the first byte picks the format and
//! whether sizes are read): tasks or a clear error, never a panic.
#![no_main]

use batchops::manifest::columnar::{parse_columnar_sized, ColumnarFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The readers turn a panic of the ORC or Parquet crate into an error (caught), so the hook
    // libfuzzer-sys installs, which aborts on any panic, caught or not, is replaced by a quiet
    // one; a panic that escapes still aborts (libfuzzer-sys catches it and aborts).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let format = if mode & 1 == 0 {
        ColumnarFormat::Parquet
    } else {
        ColumnarFormat::Orc
    };
    let input = bytes::Bytes::copy_from_slice(data);
    let mut tasks = 0u64;
    let _ = parse_columnar_sized(format, input, "fuzz", mode & 2 != 0, |_| {
        tasks += 1;
        tasks < 100_000
    });
});
