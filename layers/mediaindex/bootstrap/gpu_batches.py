"""The GPU batcher of the AWS runtime (functions/gpu_batcher): what it submits batches with, what
it settles task tokens with, and how it reads a batch's manifest back (adapters/aws/gpu_batches.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediaindex.adapters.aws.gpu_batches import BatchTarget, GpuBatcher, GpuWork, TokenReporter, load_manifest
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.adapters.aws.clients import AwsClients


@dataclass(frozen=True)
class BatcherParts:
    """The batcher's parts; `s3` is the client `manifest` reads the media bucket with."""

    batcher: GpuBatcher
    reporter: TokenReporter
    bucket: str
    s3: Any

    def manifest(self, key: str, steps: Iterable[str]) -> list[GpuWork]:
        """The manifest's items (gpu_batches.load_manifest: NoSuchKey once it expired)."""
        return load_manifest(self.s3, self.bucket, key, steps)


def build_gpu_batching(settings: Settings, *, clients: AwsClients | None = None) -> BatcherParts:
    """From settings: the GPU queue and ml job definition to submit to, and the media bucket."""
    from mediaindex.adapters.aws.clients import AwsClients

    if not (settings.gpu_queue_arn and settings.gpu_job_definition_arn):
        raise ValueError("the GPU batcher needs the GPU queue and job definition ARNs")
    clients = clients or AwsClients(region=settings.aws_region)
    target = BatchTarget(
        queue_arn=settings.gpu_queue_arn,
        job_definition_arn=settings.gpu_job_definition_arn,
        item_timeout_s=settings.gpu_batch_item_timeout_s,
    )
    # Each event kind needs only some of them: none is made before its first call.
    s3, sfn = clients.lazy("s3"), clients.lazy("stepfunctions")
    batcher = GpuBatcher(s3, clients.lazy("batch"), settings.bucket_name, target, sfn=sfn)
    return BatcherParts(batcher, TokenReporter(sfn), settings.bucket_name, s3)
