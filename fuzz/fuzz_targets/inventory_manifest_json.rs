//! An S3 Inventory manifest.json on any bytes: parsed and checked, or refused with a reason.
#![no_main]

use batchops::manifest::InventoryManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = InventoryManifest::parse(data, "s3://fuzz/manifest.json") {
        let _ = manifest.check_supported("s3://fuzz/manifest.json");
        let _ = manifest.destination_bucket_name();
        for file in &manifest.files {
            let _ = manifest.data_file_source(file);
        }
    }
});
