"""`mediaindex aws init` and `mediaindex aws smoke`: the AWS runtime's resources made against an
endpoint, and a deployment checked end to end."""

from __future__ import annotations

import argparse
import json
import os

from mediaindex.cli.errors import EXIT_AUTH, CliError
from mediaindex.cli.target import KEY_ENV, connect, load_settings


def cmd_aws_init(args: argparse.Namespace) -> int:
    """Creates the table, the bucket (with CORS) and the upload queue the bucket notifies, against
    AWS_ENDPOINT_URL when set (moto server, LocalStack); a deployment gets its resources from
    `cdk deploy` instead (and learns of uploads through EventBridge, not the queue)."""
    from mediaindex.adapters.aws.clients import AwsClients, configured_endpoint
    from mediaindex.adapters.aws.provision import provision

    settings = load_settings(args)
    result = provision(
        AwsClients(region=settings.aws_region),
        table=args.table or settings.table_name,
        bucket=args.bucket or settings.bucket_name,
        queue_name=args.queue or settings.upload_queue_name,
        cors_origins=settings.cors_origins,
    )
    print(json.dumps({"endpoint": configured_endpoint("dynamodb") or "aws", **result}))
    return 0


def cmd_aws_smoke(args: argparse.Namespace) -> int:
    """Checks a deployment end to end through its public API (docs/deploy.md, "Smoke test")."""
    from mediaindex.smoke import run_smoke

    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        raise CliError(
            EXIT_AUTH, f"an API key is needed: --key or {KEY_ENV} (the stack's first key: docs/deploy.md)"
        )
    client = connect(args.api, key)
    try:
        return run_smoke(client, out=print, timeout_s=args.timeout, keep=args.keep)
    finally:
        client.close()
