#!/usr/bin/env python3
"""The CDK app: `cdk deploy` (see docs/deploy.md). cdk-nag's AWS Solutions checks run on every synth."""

from __future__ import annotations

import os
from collections import Counter

import aws_cdk as cdk
from aws_cdk import cx_api as cxapi
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


def summary(assembly: cxapi.CloudAssembly) -> str:
    """What `make synth` prints: where the template is, what it holds, and its outputs."""
    artifact = assembly.get_stack_by_name(names.STACK_NAME)
    template = artifact.template
    kinds = Counter(r["Type"] for r in template.get("Resources", {}).values())
    lines = [
        f"stack {artifact.stack_name} ({artifact.environment.region}): {sum(kinds.values())} resources",
        f"template {os.path.relpath(os.path.join(assembly.directory, artifact.template_file))}",
    ]
    lines += [f"  {n:3d}  {kind}" for kind, n in sorted(kinds.items())]
    lines.append("outputs:")
    for name, out in sorted(template.get("Outputs", {}).items()):
        lines.append(f"  {name}: {out.get('Description', '')}".rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    # The cdk CLI names the output folder (CDK_OUTDIR); run directly, it is ./cdk.out, kept.
    under_cli = "CDK_OUTDIR" in os.environ
    application = cdk.App(outdir=None if under_cli else "cdk.out")
    build(application)
    cloud_assembly = application.synth()
    if not under_cli:
        print(summary(cloud_assembly))
