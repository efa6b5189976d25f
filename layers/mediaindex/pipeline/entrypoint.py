"""Batch job entrypoint: `python -m mediaindex.pipeline.entrypoint --task-id X --step Y`.

Builds the services of `MEDIAINDEX_RUNTIME` (aws in the containers; local runs one step against the
local data dir) and runs one pipeline step through the PipelineRunner.

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
from typing import TYPE_CHECKING

from mediaindex.errors import MediaError
from mediaindex.pipeline.spec import STEP_BY_NAME
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.container import Services
    from mediaindex.services.pipeline import PipelineRunner

log = logging.getLogger("mediaindex.pipeline.entrypoint")

EXIT_OK = 0
EXIT_RETRY = 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mediaindex.pipeline.entrypoint", description="run one pipeline step")
    p.add_argument("--task-id", required=True)
    p.add_argument("--step", required=True, choices=sorted(STEP_BY_NAME))
    return p


def build_runner(settings: Settings) -> tuple[PipelineRunner, Callable[[], None]]:
    """(runner, close) of the configured runtime. On AWS only the runner is built (a job runs inside
    an execution and has no state machine ARN); locally the whole runtime, workers stopped."""
    if settings.runtime == "aws":
        from mediaindex.runtime_aws import build_aws_runner

        return build_aws_runner(settings), lambda: None
    from mediaindex.runtime import build_local

    services: Services = build_local(settings, start_workers=False)
    runner: PipelineRunner = services.extras["runner"]
    return runner, services.close


def run(task_id: str, step: str, settings: Settings | None = None) -> int:
    from mediaindex.services.pipeline import error_info

    settings = settings or Settings()
    runner, close = build_runner(settings)
    ctx = {"task_id": task_id, "step": step, "runtime": settings.runtime}
    try:
        ran = runner.run_step(task_id, step)
    except MediaError as e:
        runner.fail_step(task_id, step, error_info(e))
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
    return run(args.task_id, args.step)


if __name__ == "__main__":
    sys.exit(main())
