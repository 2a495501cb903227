#!/usr/bin/env python3
"""Writes the S3 Inventory golden files under tests/fixtures/inventory/ with pyarrow, a real
Parquet and ORC writer, in the schema S3 Inventory uses for a versioned inventory.

Not part of bootstrap: run it in a throwaway virtual environment, e.g.
    python3 -m venv /tmp/pyarrow-venv && /tmp/pyarrow-venv/bin/pip install pyarrow
    /tmp/pyarrow-venv/bin/python scripts/make_inventory_fixtures.py
The Rust tests (shared/src/manifest/columnar.rs) compare the exact task list of these files, so
keep the rows below and the expected tasks there in step.
"""
import datetime
import pathlib

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "inventory"

# Columns and types as S3 Inventory writes them (manifest.json fileSchema, lower snake case).
# Parquet: message s3.inventory { required binary bucket (UTF8); required binary key (UTF8);
#   optional binary version_id (UTF8); optional boolean is_latest; optional boolean
#   is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS);
#   optional binary e_tag (UTF8); optional binary storage_class (UTF8); }
SCHEMA = pa.schema(
    [
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("version_id", pa.string()),
        pa.field("is_latest", pa.bool_()),
        pa.field("is_delete_marker", pa.bool_()),
        pa.field("size", pa.int64()),
        pa.field("last_modified_date", pa.timestamp("ms")),
        pa.field("e_tag", pa.string()),
        pa.field("storage_class", pa.string()),
    ]
)

T = datetime.datetime(2026, 11, 1, 12, 30, 0)
# (key, version_id, is_latest, is_delete_marker, size). Keys are raw: ORC and Parquet inventories
# do not URL-encode them (only CSV does), so '+' and '%' must come back unchanged.
ROWS = [
    ("photos/2026/IMG_0001.JPG", "3HL4kqtJvjVBH40Nrjfkd", True, False, 1024),
    ("docs/with space/Quarterly report (final).pdf", "null", True, False, 2048),
    ("unicode/日本語/été 🦀.txt", "a1b2c3", True, False, 7),
    ("math/1+1=2 & 100%.txt", "Q8d9", False, False, 3),
    ("math/1+1=2 & 100%.txt", "Q8dA", True, True, None),  # a delete marker: never a task
    ("pre-versioning/object.bin", None, True, False, 99),  # null version id
    ("empty-version/object.bin", "", True, False, 5),  # empty version id
    ("marker-null/object.bin", "v9", True, None, 1),  # is_delete_marker null: a task
]


def table():
    cols = {name: [] for name in SCHEMA.names}
    for i, (key, vid, latest, marker, size) in enumerate(ROWS):
        cols["bucket"].append("example-source-bucket")
        cols["key"].append(key)
        cols["version_id"].append(vid)
        cols["is_latest"].append(latest)
        cols["is_delete_marker"].append(marker)
        cols["size"].append(size)
        cols["last_modified_date"].append(T + datetime.timedelta(minutes=i))
        cols["e_tag"].append(None if marker else f"{i:032x}")
        cols["storage_class"].append(None if marker else "STANDARD")
    return pa.table(cols, schema=SCHEMA)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t = table()
    # Two row groups / stripes, so the readers cross a boundary.
    pq.write_table(t, OUT / "versioned.parquet", compression="snappy", row_group_size=5)
    pq.write_table(t, OUT / "versioned-gzip.parquet", compression="gzip")
    pq.write_table(t, OUT / "versioned-zstd.parquet", compression="zstd")
    orc.write_table(t, OUT / "versioned.orc", compression="zlib", stripe_size=64 * 1024)
    orc.write_table(t, OUT / "versioned-snappy.orc", compression="snappy")
    # Truncated copies: the footer is gone, as after a partial upload.
    for name in ("versioned.parquet", "versioned.orc"):
        data = (OUT / name).read_bytes()
        (OUT / f"truncated-{name}").write_bytes(data[: len(data) // 2])
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
