"""The composition root: the only package that picks an adapter for each port. `build_runtime`
returns one typed Runtime for `local` (the embedded default) or `aws`; the server, the CLI, the
Lambdas and the Batch entrypoint all start here. Builders are imported on use, so a Lambda loads
only its own runtime's adapters."""

from __future__ import annotations

from mediaindex.bootstrap.runtime import LocalExecutor, Runtime
from mediaindex.settings import Settings

__all__ = ["LocalExecutor", "Runtime", "build_runtime"]


def build_runtime(settings: Settings, *, start_workers: bool | None = None) -> Runtime:
    if settings.runtime == "aws":
        from mediaindex.bootstrap.aws import build_aws

        return build_aws(settings)
    from mediaindex.bootstrap.local import build_local

    return build_local(settings, start_workers=start_workers)
