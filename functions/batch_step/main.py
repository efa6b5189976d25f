"""Batch job entrypoint: `python -m functions.batch_step.main --tenant-id T --task-id X --step Y`.

Builds the runner of `MEDIAINDEX_RUNTIME` (aws in the containers; local runs one step against the
local data dir) and runs one pipeline step through it.

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
    p.add_argument("--tenant-id", required=True)
    p.add_argument("--task-id", required=True)
    p.add_argument("--step", required=True, choices=sorted(STEP_BY_NAME))
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


def run(tenant_id: str, task_id: str, step: str, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    runner, close = build_runner(settings)
    ctx = {"tenant_id": tenant_id, "task_id": task_id, "step": step, "runtime": settings.runtime}
    try:
        ran = runner.run_step(tenant_id, task_id, step)
    except MediaError as e:
        runner.fail_step(tenant_id, task_id, step, error_info(e))
        log.warning("bad media, step failed for good: %s (%s)", e.message, e.code, extra=ctx)
        return EXIT_OK
    except Exception:
        log.exception("step crashed; exiting for a retry", extra=ctx)
        return EXIT_RETRY
    finally:
        close()
    log.info("step %s", "done" if ran else "skipped (nothing to do)", extra=ctx)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return run(args.tenant_id, args.task_id, args.step)


if __name__ == "__main__":
    sys.exit(main())
