#!/usr/bin/env python3
"""The CDK app: `cdk deploy` (see docs/deploy.md). cdk-nag's AWS Solutions checks run on every synth."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import names
from infra.nag import suppress
from infra.stack import MediaIndexStack


def build(app: cdk.App) -> MediaIndexStack:
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT", names.PLACEHOLDER_ACCOUNT),
        region=os.environ.get("CDK_DEFAULT_REGION", names.PLACEHOLDER_REGION),
    )
    stack = MediaIndexStack(
        app, names.STACK_NAME, env=env, description="mediaindex: media indexing in your account"
    )
    suppress(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


if __name__ == "__main__":
    application = cdk.App()
    build(application)
    application.synth()
