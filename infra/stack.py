"""The stack only composes the constructs and wires names between them."""

from __future__ import annotations

from typing import Any, Literal

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import names, policies
from infra.api import DEFAULT_BURST_LIMIT, DEFAULT_RATE_LIMIT, Api
from infra.compute import Compute
from infra.encoder import Encoder
from infra.layer import CoreLayer
from infra.observability import Observability
from infra.pipeline import Pipeline
from infra.reconcile import Reconcile
from infra.search import (
    BUILD_AND_WRITE,
    CHANGE_ALIASES,
    DELETE_ASSET_DOCUMENTS,
    DROP_INDEXES,
    REFRESH_INDEXES,
    SEARCH_AND_DROP,
    Search,
    domain_shape,
)
from infra.secrets import BootstrapKey
from infra.storage import Storage
from infra.webhooks import Webhooks


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "yes")


class MediaIndexStack(Stack):
    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        ctx = self.node.try_get_context
        retain = _flag(ctx(names.CTX_RETAIN), True)
        search_mode: Literal["domain", "serverless"]
        match ctx(names.CTX_SEARCH) or "domain":
            case "domain":
                search_mode = "domain"
            case "serverless":
                search_mode = "serverless"
            case other:
                raise ValueError(f"context search must be domain or serverless, not {other!r}")
        cors_origins = [o for o in str(ctx(names.CTX_CORS_ORIGINS) or "").split(",") if o]

        self.storage = Storage(
            self,
            "Storage",
            retain=retain,
            versioning=_flag(ctx(names.CTX_VERSIONING), False),
            cors_origins=cors_origins,
        )
        shape = domain_shape(
            ctx(names.CTX_SEARCH_INSTANCE_TYPE),
            ctx(names.CTX_SEARCH_DATA_NODES),
            ctx(names.CTX_SEARCH_VOLUME_GB),
        )
        self.search = Search(self, "Search", mode=search_mode, retain=retain, shape=shape)
        environment = {
            names.ENV_RUNTIME: "aws",
            names.ENV_TABLE: self.storage.table.table_name,
            names.ENV_BUCKET: self.storage.bucket.bucket_name,
            names.ENV_OPENSEARCH: self.search.url,
            names.ENV_REGION: self.region,
            names.ENV_WHISPER_MODEL: names.ML_WHISPER_MODEL,
        }
        self.layer = CoreLayer(self, "Core").layer
        clip = _flag(ctx(names.CTX_CLIP), False)
        self.compute = Compute(
            self,
            "Compute",
            cpu_max_vcpus=int(ctx(names.CTX_CPU_MAX_VCPUS) or 64),
            gpu_max_vcpus=int(ctx(names.CTX_GPU_MAX_VCPUS) or 32),
            environment=environment,
            clip=clip,
        )
        # Batch jobs: the task and its asset, derivatives and segments; the original (the media image
        # writes it when fetching an asset_url) and the derivatives (the ml image replaces its
        # keyframes); and, for an asset deleted while a step ran, whatever is left of it.
        for image, role in self.compute.job_roles.items():
            bucket = self.storage.bucket
            policies.table(
                role,
                self.storage.table,
                [
                    *policies.TABLE_READ,
                    *policies.TABLE_PUT,
                    *policies.TABLE_BATCH_WRITE,
                    *policies.TABLE_COUNT,
                ],
                writes_to=policies.PIPELINE_ITEMS,
            )
            read_write = [*policies.OBJECT_READ, *policies.OBJECT_WRITE, *policies.OBJECT_DELETE]
            # Only the media image writes originals (fetch), so only it may find one to remove again.
            originals = read_write if image == "media" else policies.OBJECT_READ
            policies.objects(role, bucket, [names.ORIGINALS], originals)
            policies.objects(role, bucket, [names.DERIVED], read_write)
            policies.listing(role, bucket, [names.ORIGINALS, names.DERIVED])

        self.pipeline = Pipeline(
            self,
            "Pipeline",
            bucket=self.storage.bucket,
            table=self.storage.table,
            compute=self.compute,
            layer=self.layer,
            environment=environment,
        )
        self.encoder = Encoder(
            self,
            "Encoder",
            environment=environment,
            clip=clip,
            provisioned=int(ctx(names.CTX_ENCODER_WARM) or 0),
        )
        self.bootstrap_key = BootstrapKey(self, "BootstrapKey", retain=retain)
        self.api = Api(
            self,
            "Api",
            layer=self.layer,
            environment={
                **environment,
                names.ENV_ENCODER: self.encoder.invoke_name,
                names.ENV_ENCODER_VISUAL: "true" if clip else "false",
                names.ENV_BOOTSTRAP_KEY: self.bootstrap_key.secret.secret_arn,
            },
            table=self.storage.table,
            bucket=self.storage.bucket,
            state_machine_arn=self.pipeline.state_machine.state_machine_arn,
            executions_arn=self.pipeline.executions_arn,
            cors_origins=cors_origins,
            rate_limit=int(ctx(names.CTX_API_RATE_LIMIT) or DEFAULT_RATE_LIMIT),
            burst_limit=int(ctx(names.CTX_API_BURST_LIMIT) or DEFAULT_BURST_LIMIT),
        )
        self.encoder.allow_invoke(self.api.handler.role)
        self.bootstrap_key.allow_read(self.api.handler.role)
        # Search: the API queries and drops indexes, the ml jobs build indexes and write segments,
        # the media jobs remove the documents of an asset deleted while they ran.
        self.search.allow(
            [
                (self.api.handler.role, SEARCH_AND_DROP),
                (self.compute.job_roles["ml"], BUILD_AND_WRITE),
                (self.compute.job_roles["media"], DELETE_ASSET_DOCUMENTS),
                # A re-index's swap, moved on by the task it waited for, makes the new generation
                # searchable and drops the old one.
                (self.pipeline.events_fn.role, DROP_INDEXES),
                (self.pipeline.events_fn.role, DELETE_ASSET_DOCUMENTS),
                (self.pipeline.events_fn.role, CHANGE_ALIASES),
                (self.pipeline.events_fn.role, REFRESH_INDEXES),
            ]
        )

        self.observability = Observability(
            self,
            "Observability",
            http_api=self.api.http_api,
            state_machine=self.pipeline.state_machine,
            job_queues=[self.compute.cpu_queue, self.compute.gpu_queue],
            dlqs=[
                q
                for q in [self.pipeline.upload_fn.dlq, self.pipeline.gpu_dlq, self.pipeline.gpu_batcher.dlq]
                if q is not None
            ],
            functions=[
                self.api.handler.function,
                self.pipeline.upload_fn.function,
                self.pipeline.events_fn.function,
                self.pipeline.gpu_batcher.function,
                self.encoder.function,
            ],
            alarm_email=ctx(names.CTX_ALARM_EMAIL),
        )
        self.webhooks = Webhooks(
            self,
            "Webhooks",
            layer=self.layer,
            environment=environment,
            table=self.storage.table,
            api=self.api.handler,
            pipeline_events=self.pipeline.events_fn,
            alarm_topic=self.observability.topic,
            retain=retain,
        )
        self.reconcile = Reconcile(
            self,
            "Reconcile",
            layer=self.layer,
            environment=environment,
            table=self.storage.table,
            bucket=self.storage.bucket,
            pipeline=self.pipeline,
            compute=self.compute,
            webhooks=self.webhooks,
        )
        # DELETE /v1/indexes hands the purge to the reconcile function at once (an async invoke).
        self.api.hand_purges_to(self.reconcile.fn.function)
        # What `mediaindex` commands against this deployment need (docs/deploy.md).
        for name, value in {
            "TableName": self.storage.table.table_name,
            "BucketName": self.storage.bucket.bucket_name,
            "StateMachineArn": self.pipeline.state_machine.state_machine_arn,
            "SearchUrl": self.search.url,
            "Region": self.region,
            "ApiKeySecretArn": self.bootstrap_key.secret.secret_arn,
        }.items():
            CfnOutput(self, name, value=value)
