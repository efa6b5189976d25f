"""Batch job entrypoint: `python -m functions.batch_step.main --tenant-id T --task-id X --step Y`,
or, for a batch of GPU steps, `python -m functions.batch_step.main --batch-manifest KEY`.

Builds the runner of `MEDIAINDEX_RUNTIME` (aws in the containers; local runs one step against the
local data dir) and runs one pipeline step through it. A batch (AWS only) runs each item of the
manifest through one runner, so each model loads once, and settles each item's task token
(mediaindex.adapters.aws.gpu_batches): a crashed item is failed alone and the job exits 0.

Exit status, and why:
- 0: the step ran, had nothing to do (task cancelled, feature not requested), or the media is bad.
  Bad media (MediaError) is recorded here with the runner's `fail_step` - the exact error code
  (`media_corrupt`, `unsupported_media`, ...) lands on the asset - and retrying cannot help, so
  the job succeeds and the state machine's Catch (meant for crashes) stays out of it. A bad-media
  `probe` leaves every feature failed; the feature steps after it then find nothing active and
  exit at once (their containers still start: skipping them needs a Choice in the state machine).
- 1: anything else (a crash, S3 or DynamoDB unavailable, out of memory in Python). Batch fails the
  job, Step Functions retries it, and after the last attempt its Catch reports `feature_failed`.
- 2: bad arguments (argparse).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from mediaindex.domain.errors import MediaError
from mediaindex.domain.failures import error_info
from mediaindex.pipeline.spec import STEP_BY_NAME
from mediaindex.ports.step_runner import StepRunner
from mediaindex.settings import Settings

log = logging.getLogger("mediaindex.batch_step")

EXIT_OK = 0
EXIT_RETRY = 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="functions.batch_step.main", description="run one pipeline step")
    p.add_argument("--tenant-id")
    p.add_argument("--task-id")
    p.add_argument("--step", choices=sorted(STEP_BY_NAME))
    p.add_argument("--batch-manifest", help="S3 key of a GPU batch's manifest (instead of the three above)")
    return p


def build_runner(settings: Settings) -> tuple[StepRunner, Callable[[], None]]:
    """(runner, close) of the configured runtime. On AWS only the runner is built (a job runs inside
    an execution and has no state machine ARN); locally the whole runtime, workers stopped."""
    if settings.runtime == "aws":
        from mediaindex.bootstrap.aws import build_aws_runner

        return build_aws_runner(settings), lambda: None
    from mediaindex.bootstrap.local import build_local

    runtime = build_local(settings, start_workers=False)
    assert runtime.runner is not None
    return runtime.runner, runtime.close


def run_one(runner: StepRunner, tenant_id: str, task_id: str, step: str) -> bool:
    """Runs one step: True when it ran, False when it had nothing to do. Bad media is recorded
    (the exact error code lands on the asset) and counts as done; anything else raises."""
    ctx = {"tenant_id": tenant_id, "task_id": task_id, "step": step}
    try:
        ran = runner.run_step(tenant_id, task_id, step)
    except MediaError as e:
        runner.fail_step(tenant_id, task_id, step, error_info(e))
        log.warning("bad media, step failed for good: %s (%s)", e.message, e.code, extra=ctx)
        return True
    log.info("step %s", "done" if ran else "skipped (nothing to do)", extra=ctx)
    return ran


def run(tenant_id: str, task_id: str, step: str, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    runner, close = build_runner(settings)
    try:
        run_one(runner, tenant_id, task_id, step)
    except Exception:
        ctx = {"tenant_id": tenant_id, "task_id": task_id, "step": step, "runtime": settings.runtime}
        log.exception("step crashed; exiting for a retry", extra=ctx)
        return EXIT_RETRY
    finally:
        close()
    return EXIT_OK


def run_batch(manifest_key: str, settings: Settings | None = None, clients: Any = None) -> int:
    """Runs a GPU batch's items (AWS only: the tokens are Step Functions'). Exit 1 when the manifest
    cannot be read: the job fails, and its FAILED event fails the tokens it can still name."""
    from mediaindex.adapters.aws import gpu_batches
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.bootstrap.aws import build_aws_runner

    settings = settings or Settings()
    if settings.runtime != "aws":
        log.error("a GPU batch runs on the aws runtime only")
        return EXIT_RETRY
    clients = clients or AwsClients(region=settings.aws_region)
    try:
        items = gpu_batches.load_manifest(clients.s3, settings.bucket_name, manifest_key, STEP_BY_NAME)
    except Exception:
        log.exception("GPU batch manifest unreadable", extra={"manifest": manifest_key})
        return EXIT_RETRY
    runner = build_aws_runner(settings, clients=clients)
    counts = gpu_batches.run_batch(
        items,
        lambda w: run_one(runner, w.tenant_id, w.task_id, w.step),
        gpu_batches.TokenReporter(clients.stepfunctions),
    )
    log.info("GPU batch done", extra={"manifest": manifest_key, **counts})
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    one = (args.tenant_id, args.task_id, args.step)
    batch = args.batch_manifest is not None
    if (batch and any(v is not None for v in one)) or (not batch and None in one):
        parser.error("give --tenant-id, --task-id and --step, or --batch-manifest alone")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if batch:
        return run_batch(args.batch_manifest)
    return run(args.tenant_id, args.task_id, args.step)


if __name__ == "__main__":
    sys.exit(main())
