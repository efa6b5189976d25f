"""Every name and path the deployment uses, in one place."""

from __future__ import annotations

from pathlib import Path

from mediaindex.adapters.aws.gpu_batches import MANIFEST_PREFIX
from mediaindex.domain.blob_keys import DERIVED_PREFIX, ORIGINALS_PREFIX

ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = ROOT / "layers" / "mediaindex"
PYPROJECT = ROOT / "pyproject.toml"
FUNCTIONS = ROOT / "functions"
CONTAINERS = ROOT / "containers"

STACK_NAME = "MediaIndex"
# Placeholder environment: synth stays offline (AZs are pinned in cdk.json for it).
PLACEHOLDER_ACCOUNT = "111111111111"
PLACEHOLDER_REGION = "us-east-1"

# Lambda entrypoints: folder under functions/ -> handler inside it.
API_FUNCTION = "api"
UPLOAD_EVENT_FUNCTION = "upload_event"
PIPELINE_EVENTS_FUNCTION = "pipeline_events"
GPU_BATCHER_FUNCTION = "gpu_batcher"
HANDLER = "handler.handler"
# Query-text encoder: a container-image Lambda built from containers/ml with another command.
ENCODER_IMAGE = "encoder"  # containers/encoder: MiniLM and CLIP as ONNX (no torch), awslambdaric
ENCODER_CMD = ["functions.query_encoder.handler.handler"]
# Where the ml and encoder images bake their model weights (containers/*/Dockerfile: text/, clip/, ...).
MODELS_DIR = "/models"

# Batch images: folder under containers/ -> the step compute they serve.
IMAGES = {"media": "cpu", "ml": "gpu"}
GPU_INSTANCE_CLASSES = ("g5", "g6")

ORIGINALS = ORIGINALS_PREFIX
DERIVED = DERIVED_PREFIX
TMP_PREFIX = "tmp/"
GPU_MANIFESTS = MANIFEST_PREFIX  # under tmp/: expired with it

# Environment variables every runtime piece reads (mediaindex.settings, prefix MEDIAINDEX_).
ENV_RUNTIME = "MEDIAINDEX_RUNTIME"
ENV_TABLE = "MEDIAINDEX_TABLE_NAME"
ENV_BUCKET = "MEDIAINDEX_BUCKET_NAME"
ENV_STATE_MACHINE = "MEDIAINDEX_STATE_MACHINE_ARN"
ENV_OPENSEARCH = "MEDIAINDEX_OPENSEARCH_URL"
ENV_REGION = "MEDIAINDEX_AWS_REGION"
ENV_ENCODER = "MEDIAINDEX_QUERY_ENCODER_FUNCTION"
ENV_ENCODER_VISUAL = "MEDIAINDEX_ENCODER_VISUAL"  # "true" when the encoder image carries CLIP
ENV_BOOTSTRAP_KEY = "MEDIAINDEX_BOOTSTRAP_KEY_SECRET_ARN"
ENV_WHISPER_MODEL = "MEDIAINDEX_WHISPER_MODEL"
# The GPU batcher's (functions/gpu_batcher): where it submits, and the most items a batch holds.
ENV_GPU_QUEUE = "MEDIAINDEX_GPU_QUEUE_ARN"
ENV_GPU_JOB_DEFINITION = "MEDIAINDEX_GPU_JOB_DEFINITION_ARN"
ENV_GPU_BATCH_MAX_ITEMS = "MEDIAINDEX_GPU_BATCH_MAX_ITEMS"
ENV_GPU_ITEM_TIMEOUT = "MEDIAINDEX_GPU_BATCH_ITEM_TIMEOUT_S"
# The Whisper model baked into the ml image (containers/ml/Dockerfile): every function is told it,
# so the API offers it for re-indexing and names it as an index's model.
ML_WHISPER_MODEL = "large-v3-turbo"

# Context keys (cdk.json or `cdk deploy -c key=value`).
CTX_SEARCH = "search"  # domain | serverless
CTX_SEARCH_INSTANCE_TYPE = "search_instance_type"  # the domain's data nodes (r7g.large.search)
CTX_SEARCH_DATA_NODES = "search_data_nodes"  # 2; 1 drops zone awareness, 3+ adds dedicated masters
CTX_SEARCH_VOLUME_GB = "search_volume_gb"  # gp3 GB per data node (100)
CTX_RETAIN = "retain"  # true (default) keeps bucket and table on stack delete
CTX_VERSIONING = "versioning"  # true turns on bucket versioning
CTX_CORS_ORIGINS = "cors_origins"  # comma-separated browser origins allowed to PUT uploads
CTX_CLIP = "clip"  # true when the ml image was built with CLIP weights in weights/clip
CTX_ALARM_EMAIL = "alarm_email"
CTX_GPU_MAX_VCPUS = "gpu_max_vcpus"
# The API stage's throttle, shared by every tenant (per-tenant limits are the API's own quotas,
# answered 429 before any work): requests per second, and the burst a moment may take.
CTX_API_RATE_LIMIT = "api_rate_limit"
CTX_API_BURST_LIMIT = "api_burst_limit"
CTX_CPU_MAX_VCPUS = "cpu_max_vcpus"
# Query-encoder instances kept initialised (0, the default: none; each costs its memory around the
# clock): a search then never waits for the encoder's image and models to load.
CTX_ENCODER_WARM = "encoder_provisioned_concurrency"
# GPU steps run in batches (docs/deploy.md, "GPU batching"): at most this many items a batch (16),
# gathered for up to this many seconds (20; 0 to 300) before the batcher cuts them into batches.
CTX_GPU_BATCH_MAX_ITEMS = "gpu_batch_max_items"
CTX_GPU_BATCH_WINDOW_S = "gpu_batch_window_s"

LOG_RETENTION = "ONE_MONTH"  # every log group's CloudWatch retention (a RetentionDays name)
