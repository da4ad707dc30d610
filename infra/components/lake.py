"""Lake: the KMS key and every bucket (zones + artifacts + Athena results + access logs).

``SecureBucket`` is the one way a bucket is made: encrypted, versioned, TLS-only, public access
blocked, owner-enforced, access-logged, with lifecycle rules given by its caller. Bucket names come
from ``StackSettings.bucket_name`` (unique per account and region, in S3's account regional
namespace); the lake takes them whole in ``LakeArgs.bucket_names``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from dataforge.lake import SupportBucket, Zone
from infra.errors import InfraError
from infra.refs import LakeRefs, Named
from infra.settings import BUCKET_NAMESPACE, LakeSettings


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    id: str
    prefix: str = ""
    expire_days: int | None = None
    infrequent_access_days: int | None = None
    noncurrent_days: int = 30


@dataclass(frozen=True, slots=True)
class SecureBucketArgs:
    bucket: str
    kms_key_arn: pulumi.Input[str] | None = None  # None: SSE-S3 (access-log targets must use it)
    lifecycle: tuple[LifecycleRule, ...] = ()
    log_bucket: pulumi.Input[str] | None = None
    force_destroy: bool = False
    extra_policy_statements: tuple[dict[str, object], ...] = field(default=())
    namespace: str = BUCKET_NAMESPACE  # ``account-regional``: the name ends with -<account>-<region>-an


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:lake:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket, bucket_namespace=args.namespace,
                               force_destroy=args.force_destroy, opts=child)
        aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        pab = aws.s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
                                             block_public_policy=True, ignore_public_acls=True,
                                             restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        sse: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn} if args.kms_key_arn is not None
            else {"sse_algorithm": "AES256"})
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": True}], opts=child)
        statements: list[dict[str, object]] = [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }, *args.extra_policy_statements]
        aws.s3.BucketPolicy(f"{name}-policy", bucket=bucket.id,
                            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
                            opts=pulumi.ResourceOptions(parent=self, depends_on=[pab]))
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = []
        for rule in args.lifecycle or (LifecycleRule("noncurrent"),):
            spec: aws.s3.BucketLifecycleConfigurationRuleArgsDict = {
                "id": rule.id, "status": "Enabled", "filter": {"prefix": rule.prefix},
                "noncurrent_version_expiration": {"noncurrent_days": rule.noncurrent_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
            if rule.expire_days is not None:
                spec["expiration"] = {"days": rule.expire_days}
            if rule.infrequent_access_days is not None:
                spec["transitions"] = [{"days": rule.infrequent_access_days, "storage_class": "STANDARD_IA"}]
            rules.append(spec)
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=bucket.id, rules=rules, opts=child)
        if args.log_bucket is not None:
            aws.s3.BucketLogging(f"{name}-logging", bucket=bucket.id, target_bucket=args.log_bucket,
                                 target_prefix=f"{args.bucket}/", opts=child)
        self.bucket = bucket
        self.name = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


@dataclass(frozen=True, slots=True)
class LakeArgs:
    name_prefix: str
    env: str
    region: str
    account_id: pulumi.Input[str]
    settings: LakeSettings
    bucket_names: Mapping[Zone | SupportBucket, str]  # every zone and support bucket: ``StackSettings.bucket_name``
    protect: bool = False


def key_policy(region: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The lake key's policy: the account administers it; the services that write encrypted data
    on the platform's behalf (CloudWatch Logs, alarms and EventBridge into the SNS topic) may use it.

    In a key policy ``"Resource": "*"`` is the key itself (KMS Developer Guide, "Key policies").
    CloudWatch Logs may use the key only for this account's log groups: every request it makes
    carries the log group's ARN as the ``aws:logs:arn`` encryption context ("Encrypt log data in
    CloudWatch Logs using AWS KMS"); the encryption-context key is a string key in the Service
    Authorization Reference (hence ``StringLike``), and only the cryptographic operations carry
    an encryption context, so no ``Describe*`` is granted under that condition. The alarms and
    EventBridge statement follows the SNS Developer Guide ("compatibility between event sources
    from AWS services and encrypted topics"), which sets no source conditions: EventBridge's
    requests to KMS carry none."""
    root = pulumi.Output.concat("arn:aws:iam::", account_id, ":root")
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Decrypt*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
         "Resource": "*", "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
             "arn:aws:logs:", region, ":", account_id, ":*")}}},
        {"Sid": "AlarmsAndEventsToSns", "Effect": "Allow",
         "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
    ]})


class Lake(pulumi.ComponentResource):
    refs: LakeRefs

    def __init__(self, name: str, args: LakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:lake:Lake", name, None, opts)
        protected = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key = aws.kms.Key(f"{name}-key", description=f"DataForge {args.env} lake and services",
                          enable_key_rotation=True, deletion_window_in_days=30,
                          policy=key_policy(args.region, args.account_id), opts=protected)
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.name_prefix}-{args.env}", target_key_id=key.key_id,
                      opts=pulumi.ResourceOptions(parent=self))
        days = args.settings

        missing = sorted(w.value for w in (*Zone, *SupportBucket) if w not in args.bucket_names)
        if missing:
            raise InfraError(f"LakeArgs.bucket_names has no name for {', '.join(missing)}")

        def make(which: Zone | SupportBucket, lifecycle: tuple[LifecycleRule, ...], *, kms: bool = True,
                 log_bucket: pulumi.Input[str] | None = None,
                 extra: tuple[dict[str, object], ...] = ()) -> SecureBucket:
            physical = args.bucket_names[which]
            return SecureBucket(f"{name}-{which.value}", SecureBucketArgs(
                bucket=physical, kms_key_arn=key.arn if kms else None, lifecycle=lifecycle, log_bucket=log_bucket,
                force_destroy=days.force_destroy, extra_policy_statements=extra), opts=protected)

        nc = days.noncurrent_days
        logs_physical = args.bucket_names[SupportBucket.ACCESS_LOGS]
        logs = make(SupportBucket.ACCESS_LOGS, (LifecycleRule("expire", expire_days=days.access_logs_days,
                                                              noncurrent_days=nc),), kms=False, extra=({
            "Sid": "AllowServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{logs_physical}/*",
        },))
        log_target = logs.name
        rules: dict[Zone | SupportBucket, tuple[LifecycleRule, ...]] = {
            Zone.LANDING: (LifecycleRule("expire", expire_days=days.landing_days, noncurrent_days=nc),),
            Zone.BRONZE: (LifecycleRule("expire", expire_days=days.bronze_days, noncurrent_days=nc),),
            Zone.QUARANTINE: (LifecycleRule("expire", expire_days=days.quarantine_days, noncurrent_days=nc),),
            Zone.SILVER: (LifecycleRule("tier", infrequent_access_days=days.silver_ia_days, noncurrent_days=nc),),
            Zone.GOLD: (LifecycleRule("tier", infrequent_access_days=days.gold_ia_days, noncurrent_days=nc),),
            SupportBucket.ARTIFACTS: (LifecycleRule("noncurrent", noncurrent_days=nc),
                                      LifecycleRule("glue-tmp", prefix="glue/tmp/", expire_days=7)),
            SupportBucket.ATHENA_RESULTS: (LifecycleRule("expire", expire_days=days.athena_results_days,
                                                         noncurrent_days=1),),
        }
        buckets = {which: make(which, lifecycle, log_bucket=log_target) for which, lifecycle in rules.items()}
        buckets[SupportBucket.ACCESS_LOGS] = logs
        self.refs = LakeRefs(kms_key_arn=key.arn,
                             buckets={which: Named(b.name, b.arn) for which, b in buckets.items()})
        self.register_outputs({"kms_key_arn": key.arn,
                               **{f"{which.value}_bucket": b.name for which, b in buckets.items()}})
