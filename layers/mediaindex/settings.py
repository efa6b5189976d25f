"""One typed settings object, read from `MEDIAINDEX_*` variables and validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
# A Lambda behind API Gateway takes at most 6 MB of request, and the HTTP API passes binary bodies
# base64-encoded (4/3 larger): a form upload there must stay under about 4.4 MiB of file.
AWS_MAX_FORM_UPLOAD_BYTES = 4 * MiB


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAINDEX_", extra="ignore")

    runtime: Literal["local", "aws"] = "local"
    data_dir: Path = Path(".mediaindex")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Base URL the local blob store signs into upload/download URLs; defaults to http://host:port.
    public_url: str | None = None
    # HMAC key for the local signed URLs. Generated into data_dir on first start when unset.
    signing_secret: SecretStr | None = None

    # Uploads
    multipart_threshold_bytes: int = Field(64 * MiB, ge=5 * MiB)
    part_size_bytes: int = Field(16 * MiB, ge=5 * MiB)
    max_asset_bytes: int = Field(50 * 1024 * MiB, ge=1)
    # multipart/form-data uploads through the API itself; 4 MiB on the aws runtime unless set.
    max_form_upload_bytes: int = Field(32 * MiB, ge=1)
    upload_url_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    download_url_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # Local runtime: multipart uploads idle this long (no part, never at less than the upload URL
    # TTL) are aborted and their assets end `failed` (`upload_expired`), like the bucket's
    # AbortIncompleteMultipartUpload rule (1 day); the sweep runs every upload_sweep_interval_s (0: never).
    stale_upload_after_s: int = Field(24 * 3600, ge=60)
    upload_sweep_interval_s: float = Field(300.0, ge=0)
    max_user_metadata_bytes: int = Field(8 * 1024, ge=256)

    # asset_url fetches
    allow_private_urls: bool = False
    fetch_timeout_s: float = Field(60.0, gt=0)
    fetch_max_redirects: int = Field(5, ge=0)
    # fetch_timeout_s bounds each connect and read; these bound a whole download (all its hops):
    # it ends at fetch_deadline_s (below the fetch step's 900 s timeout), or sooner once, after
    # fetch_rate_grace_s, it averages under fetch_min_rate_bytes_s (a trickling source).
    fetch_deadline_s: float = Field(840.0, gt=0)
    fetch_min_rate_bytes_s: int = Field(16 * 1024, ge=0)
    fetch_rate_grace_s: float = Field(30.0, ge=0)
    # query_image_url: fetched by a small pool of its own (never the API's request threads beyond
    # these slots); a search that finds every slot busy is 503 `service_busy`.
    query_image_fetch_slots: int = Field(4, ge=1, le=64)
    query_image_deadline_s: float = Field(15.0, gt=0)

    # Local executor
    workers: int = Field(2, ge=1, le=64)
    job_timeout_s: float = Field(1800.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    job_retry_backoff_s: float = Field(2.0, ge=0)
    start_workers: bool = True
    # On Linux, how far below the API's CPU priority the workers (their ffmpeg, Whisper's threads)
    # and the model preload run: a server that is indexing still answers searches at once. 0: the same.
    background_nice: int = Field(10, ge=0, le=19)
    # A serving process loads the models in the background at start, so the first asset does not wait.
    preload_models: bool = True
    # Index purges run as durable jobs in batches of this many assets (one job claim per batch).
    purge_batch_assets: int = Field(100, ge=1, le=1000)
    # On a runtime without a worker pool (a Lambda), DELETE /v1/indexes purges inline for at most
    # this long; what is left is resumed by `IndexService.resume_purges` (the sweep).
    purge_inline_budget_s: float = Field(20.0, ge=0)
    # The Lambda that runs index purges as a job (the reconcile function). When set, the deployed
    # API purges nothing inline: DELETE /v1/indexes notes the purge and invokes it asynchronously.
    purge_function: str | None = None
    # How long one run of that job purges (under the function's 5-minute timeout, with margin).
    purge_job_budget_s: float = Field(200.0, gt=0)
    # Assets per batch of the job's bulk purge (rows in batched writes, no transaction per asset).
    purge_job_batch_assets: int = Field(500, ge=1, le=5000)
    # `mediaindex serve`: seconds a SIGTERM waits for in-flight requests before cancelling them.
    shutdown_grace_s: int = Field(5, ge=0)

    # Media limits (bombs are refused, not processed)
    max_pixels: int = Field(100_000_000, ge=1)
    max_duration_s: float = Field(4 * 3600.0, gt=0)

    # Models
    # A model of ml/whisper_models.WHISPER_MODELS (its package installed), or any name when
    # whisper_model_path points at a CTranslate2 Whisper directory. base: 40% fewer word errors than
    # tiny.en at about 3x its CPU time, still a fraction of real time on 2 cores (docs/models.md).
    whisper_model: str = "base"
    whisper_model_path: Path | None = None
    # Other Whisper models an index may be re-indexed onto, beyond the packaged ones installed here:
    # on AWS, those the ML image carries (the API that accepts the request does not hold them).
    whisper_models_offered: list[str] = Field(default_factory=list)
    # Where models shipped in parts are joined once (default: the user's cache, ~/.cache/mediaindex/whisper).
    whisper_cache_dir: Path | None = None
    # The spoken language (ISO 639-1: "en", "de"), or "auto": a multilingual model detects it per
    # file. Unset: the packaged model's own choice (WHISPER_MODELS), detection for a model_path one.
    whisper_language: str | None = None
    whisper_compute_type: str = "int8"
    whisper_device: str = "cpu"
    text_model_path: Path | None = None
    clip_model_path: Path | None = None

    # API behaviour
    rate_limit_per_minute: int = Field(600, ge=0)  # per API key; 0 turns limits off
    idempotency_ttl_s: int = Field(48 * 3600, ge=24 * 3600)
    # A keyed request reserves its key for this long while it runs; a concurrent twin waits up to
    # idempotency_wait_s for the first one's answer, then gets 409 idempotency_request_in_progress.
    idempotency_lease_s: float = Field(60.0, gt=0)
    idempotency_wait_s: float = Field(5.0, ge=0)
    cors_origins: list[str] = []
    # Request bodies (api/middleware.py): read only after the key is checked, refused past these
    # sizes (413 payload_too_large) and past these deadlines for the whole body (408).
    max_json_body_bytes: int = Field(1 * MiB, ge=1024)
    max_search_body_bytes: int = Field(64 * 1024, ge=1024)
    body_read_timeout_s: float = Field(30.0, gt=0)
    form_read_timeout_s: float = Field(600.0, gt=0)

    # AWS runtime
    aws_region: str | None = None
    table_name: str = "mediaindex"
    bucket_name: str = "mediaindex-media"
    state_machine_arn: str | None = None
    opensearch_url: str | None = None
    # The OpenSearch index layout (docs/scale.md, "OpenSearch layout"). Engine and precision apply
    # to indexes and vector fields created from then on; an existing index keeps what it was mapped
    # with. fp16 is the faiss scalar quantizer (fp16 with lucene is refused at start); byte needs
    # lucene, or faiss on OpenSearch 2.17+.
    opensearch_engine: Literal["faiss", "lucene"] = "faiss"
    opensearch_vector_precision: Literal["fp32", "fp16", "byte"] = "fp32"
    # `refresh` on writes and deletes: false (searchable within the index's refresh interval),
    # wait_for (a write returns once searchable), true (forces a refresh per request: tests only).
    opensearch_refresh: Literal["false", "wait_for", "true"] = "false"
    # Primary shards of each new index: one per 10-50 GB it is expected to hold.
    opensearch_shards: int = Field(1, ge=1, le=1024)
    # Shared pool indexes per vector layout that new index keys go into (routed by key behind
    # filtered aliases); 0 gives each key an index of its own, as releases before pools did.
    opensearch_pools: int = Field(1, ge=0, le=256)
    # The encoder Lambda that embeds search queries on AWS (the API Lambda carries no models).
    query_encoder_function: str | None = None
    # Re-index tasks kept in flight per index (services/reindex.py): enough to keep the workers busy
    # without starving new uploads, and bounded on AWS (never one execution per asset at once).
    reindex_concurrency: int = Field(4, ge=1, le=256)
    # Whether that function carries a CLIP model (the stack's `clip` context): /v1/capabilities says so.
    encoder_visual: bool = False
    # The first API key, generated into Secrets Manager by the stack; ensured into the table at start.
    bootstrap_key_secret_arn: str | None = None
    bootstrap_tenant: str = "default"
    # Without a state machine (moto, LocalStack, a dev account without the stack) uploads are learnt
    # from S3 notifications on this SQS queue (made by `mediaindex aws init`); the URL wins over the name.
    upload_queue_name: str = "mediaindex-uploads"
    upload_queue_url: str | None = None
    # GPU steps in batches (adapters/aws/gpu_batches.py): the batcher submits each batch to this
    # queue with this job definition, and gives its job this long per item.
    gpu_queue_arn: str | None = None
    gpu_job_definition_arn: str | None = None
    gpu_batch_item_timeout_s: int = Field(3600, ge=60)
    gpu_batch_max_items: int = Field(16, ge=1, le=1000)

    @model_validator(mode="after")
    def _aws_form_limit(self) -> Settings:
        if self.runtime == "aws" and "max_form_upload_bytes" not in self.model_fields_set:
            self.max_form_upload_bytes = AWS_MAX_FORM_UPLOAD_BYTES
        return self

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
