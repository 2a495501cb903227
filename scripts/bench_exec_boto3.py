"""The tagging peer of the executor benchmark: PutObjectTagging on every key of a file, from a
pool of threads sharing one boto3 client (as a Python user would write it). Prints the number of
objects tagged.

Usage: bench_exec_boto3.py --endpoint-url URL --bucket B --threads N --tag-value V KEYS_FILE
"""

import argparse
import concurrent.futures

import boto3
import botocore.config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--tag-value", default="boto3")
    parser.add_argument("keys")
    args = parser.parse_args()
    with open(args.keys, encoding="utf-8") as f:
        keys = [line.rstrip("\n") for line in f if line.strip()]
    config = botocore.config.Config(
        max_pool_connections=args.threads,
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path"},
    )
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, config=config)
    tagging = {"TagSet": [{"Key": "bench", "Value": args.tag_value}]}

    def tag(key):
        s3.put_object_tagging(Bucket=args.bucket, Key=key, Tagging=tagging)
        return 1

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
        print(sum(pool.map(tag, keys)))


if __name__ == "__main__":
    main()
