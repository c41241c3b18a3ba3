"""Buckets on the S3-compatible object storage of either platform, through ``pulumi_aws``.

OUTSCALE OOS and Flexible Engine OBS both speak the S3 API, so one ``aws`` provider
pointed at their endpoint creates the buckets. Path-style requests and the skipped STS,
region and instance-metadata checks are what a non-AWS endpoint needs.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def s3_compatible_provider(name: str, region: str, endpoint: str) -> aws.Provider:
    """Create an ``aws`` provider that sends every S3 call to ``endpoint``."""
    return aws.Provider(
        name,
        region=region,
        endpoints=[aws.ProviderEndpointArgs(s3=endpoint)],
        s3_use_path_style=True,
        skip_credentials_validation=True,
        skip_region_validation=True,
        skip_metadata_api_check=True,
        skip_requesting_account_id=True,
    )


def encrypt_at_rest(name: str, created: aws.s3.Bucket,
                    opts: pulumi.ResourceOptions) -> aws.s3.BucketServerSideEncryptionConfiguration:
    """Turn on default server-side encryption (AES-256 with keys the object store manages).

    NOTE: that OOS and OBS accept PutBucketEncryption with AES256 through their S3 APIs is
    not verified here; if one does not, set the policy pack's bucketEncryptionRequired to
    false for that stack and record why.
    """
    rule = aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=(
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256")))
    return aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=created.id, rules=[rule],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=created)))


def private_bucket(name: str, bucket: str, tags: dict[str, str], opts: pulumi.ResourceOptions) -> aws.s3.Bucket:
    """Create a bucket readable only with credentials (image exports, cluster files before publication)."""
    created = aws.s3.Bucket(name, bucket=bucket, acl="private", tags=tags, opts=opts)
    encrypt_at_rest(name, created, opts)
    return created


def static_zone_bucket(
    name: str, bucket: str, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """Create a static-zone bucket whose objects anyone may read, as the Apache docroot was.

    Reading is opened by a bucket policy on GetObject only: listing and writing still
    need credentials.
    """
    created = aws.s3.Bucket(name, bucket=bucket, tags=tags, opts=opts)
    encrypt_at_rest(name, created, opts)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadObjects",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )
    read_policy = aws.s3.BucketPolicy(
        f"{name}-public-read",
        bucket=created.id,
        policy=policy,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=created)),
    )
    return created, read_policy
