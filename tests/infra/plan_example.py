"""A small example program for the plan, policy and manifest tests: a tagged, clean stack."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

DIGEST = "@sha256:" + "a" * 64
LABELS = {"role": "api", "environment": "test"}


class Service(pulumi.ComponentResource):
    """A component holding a component, so URNs carry a parent type chain."""

    def __init__(self, name: str, image: str, replicas: int, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tacops:example:Service", name, None, opts)
        workload = Workload(f"{name}-workload", image, replicas, pulumi.ResourceOptions(parent=self))
        self.register_outputs({"workload": workload.urn})


class Workload(pulumi.ComponentResource):
    def __init__(self, name: str, image: str, replicas: int, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tacops:example:Workload", name, None, opts)
        k8s.apps.v1.Deployment(
            name,
            metadata={"name": name, "labels": LABELS},
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True},
                        "containers": [{
                            "name": "app",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "DB_PASSWORD",
                                     "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                        }],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.register_outputs({})


def build(replicas: int = 2, image: str = "registry.example/api" + DIGEST, extra_bucket: bool = False,
          db_password: str = "s3cr3t-value") -> None:
    Service("api", image, replicas)
    k8s.core.v1.Secret("db", metadata={"name": "db", "labels": LABELS},
                       string_data={"password": pulumi.Output.secret(db_password)})
    bucket = aws.s3.Bucket("exports", bucket="ct-exports", tags=LABELS)
    aws.s3.BucketServerSideEncryptionConfiguration(
        "exports-encryption", bucket=bucket.bucket,
        rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        opts=pulumi.ResourceOptions(parent=bucket))
    if extra_bucket:
        aws.s3.Bucket("archive", bucket="ct-archive", tags=LABELS)
