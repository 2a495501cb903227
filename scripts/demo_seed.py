"""Seeds the demo: a bucket of objects, a CSV manifest listing them and a CreateJob file.

Runs against the endpoint in AWS_ENDPOINT_URL (the local moto server started by `make demo`).
"""
import argparse
import json
import urllib.parse

import boto3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--bucket", default="demo-photos")
    p.add_argument("--manifest-bucket", default="demo-manifests")
    p.add_argument("--report-bucket", default="demo-reports")
    p.add_argument("--job-file", required=True)
    a = p.parse_args()
    s3 = boto3.client("s3")
    for b in (a.bucket, a.manifest_bucket, a.report_bucket):
        s3.create_bucket(Bucket=b)
    lines = []
    for i in range(a.count):
        # A few keys with characters that manifests must URL-encode.
        key = f"photos/{i:04d}.jpg" if i % 50 else f"photos/summer {i:04d}, +100% ☀.jpg"
        s3.put_object(Bucket=a.bucket, Key=key, Body=f"photo {i}".encode())
        lines.append(f"{a.bucket},{urllib.parse.quote(key, safe='/')}")
    # Two objects that do not exist, to show failed tasks in the report.
    lines += [f"{a.bucket},photos/missing-1.jpg", f"{a.bucket},photos/missing-2.jpg"]
    etag = s3.put_object(
        Bucket=a.manifest_bucket, Key="manifests/photos.csv", Body="\n".join(lines).encode()
    )["ETag"].strip('"')
    job = {
        "AccountId": "123456789012",
        "ConfirmationRequired": False,
        "Operation": {
            "S3PutObjectTagging": {"TagSet": [{"Key": "reviewed", "Value": "2026-11"}]}
        },
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {
                "ObjectArn": f"arn:aws:s3:::{a.manifest_bucket}/manifests/photos.csv",
                "ETag": etag,
            },
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{a.report_bucket}",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "Prefix": "batch-reports",
            "ReportScope": "AllTasks",
        },
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batchops-demo",
        "Description": "demo: tag every photo",
        "ClientRequestToken": "demo-token",
    }
    with open(a.job_file, "w") as f:
        json.dump(job, f, indent=2)
    print(f"seeded {a.count} objects and a manifest of {len(lines)} rows")


if __name__ == "__main__":
    main()
