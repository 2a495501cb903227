"""Prints a job's completion report: its manifest.json and the first lines of each result file."""
import argparse
import json

import boto3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--job-id", required=True)
    p.add_argument("--lines", type=int, default=5)
    a = p.parse_args()
    s3 = boto3.client("s3")
    key = f"{a.prefix}/job-{a.job_id}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=a.bucket, Key=key)["Body"].read())
    print(f"--- s3://{a.bucket}/{key}")
    print(json.dumps(manifest, indent=2))
    for result in manifest["Results"]:
        body = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        rows = body.decode().splitlines()
        print(f"--- {result['TaskExecutionStatus']}: s3://{result['Bucket']}/{result['Key']} "
              f"({len(rows)} rows), first {min(a.lines, len(rows))}:")
        for row in rows[: a.lines]:
            print(row)


if __name__ == "__main__":
    main()
