"""IAM for the job-role tests (tests/roles.rs), on a moto server of their own.

Creates, while the server does not check requests yet:
  - an admin user (the tests' own setup and checks),
  - an orchestrator user with what batchops' functions need and nothing on users' buckets:
    DynamoDB, SQS, the system bucket, sts:AssumeRole on roles named batchops-job-*,
  - job roles trusting the orchestrator user with ExternalId batchops-test-S:
    batchops-job-tag-a-S (tags objects of bucket roles-a-S only, reads the manifest and writes
    the report in roles-m-S) and outside-S (a name the orchestrator may not assume), and
    batchops-job-untrusted-S (trusts the orchestrator with another ExternalId only),
then switches IAM enforcement on (moto's reset-auth) and prints the two users' keys as JSON.

Usage: python moto_iam.py ENDPOINT SUFFIX
"""

import json
import sys
import urllib.request

import boto3

ACCOUNT = "123456789012"


def client(endpoint, service, key="testing", secret="testing"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def user(iam, name, statements):
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return [key["AccessKeyId"], key["SecretAccessKey"]]


def role(iam, name, statements, principal, external_id):
    # moto matches the principal exactly (not an account's root) and checks the condition.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def main():
    endpoint, suffix = sys.argv[1], sys.argv[2]
    iam = client(endpoint, "iam")
    admin = user(iam, f"admin-{suffix}", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    orchestrator = user(
        iam,
        f"orchestrator-{suffix}",
        [
            {"Effect": "Allow", "Action": ["dynamodb:*", "sqs:*"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::batchops-system-*", "arn:aws:s3:::batchops-system-*/*"],
            },
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/batchops-job-*",
            },
            {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        ],
    )
    principal = f"arn:aws:iam::{ACCOUNT}:user/orchestrator-{suffix}"
    external_id = f"batchops-test-{suffix}"
    a, m = f"arn:aws:s3:::roles-a-{suffix}", f"arn:aws:s3:::roles-m-{suffix}"
    role(
        iam,
        f"batchops-job-tag-a-{suffix}",
        [
            {"Effect": "Allow", "Action": ["s3:PutObjectTagging", "s3:GetObject"], "Resource": f"{a}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": a},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{m}/*.csv"},
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{m}/reports/*",
            },
        ],
        principal,
        external_id,
    )
    everything = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    # Trusts the orchestrator only with another ExternalId.
    role(iam, f"batchops-job-untrusted-{suffix}", everything, principal, "someone-else")
    # Outside the names the orchestrator may assume.
    role(iam, f"outside-{suffix}", everything, principal, external_id)
    # Every request from now on is checked against these policies.
    urllib.request.urlopen(
        urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # Not a form: moto reads the count from the raw body.
            headers={"Content-Type": "text/plain"},
        )
    ).read()
    print(json.dumps({"admin": admin, "orchestrator": orchestrator}))


if __name__ == "__main__":
    main()
