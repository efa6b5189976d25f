"""Synthesizes the CDK app once per session (a synth takes about 10 to 20 s) for tests/infra."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synth:
    stack: Any  # infra.stack.MediaIndexStack
    template: Any  # aws_cdk.assertions.Template
    doc: dict[str, Any]  # the template as JSON
    nag_report: Any  # aws_cdk.PolicyValidationPluginReport
    outdir: Path  # the cloud assembly: staged assets under asset.<hash>/


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    import app as cdk_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    # No bundling in tests: the layer's pip install needs the network; assets are hashed only.
    outdir = tmp_path_factory.mktemp("cdk.out")
    # Asset metadata names each function's staged code folder (tests import the handlers from it).
    application = cdk.App(
        context={**context, "aws:cdk:bundling-stacks": [], "aws:cdk:enable-asset-metadata": True},
        outdir=str(outdir),
    )
    stack = cdk_app.build(application)
    template = Template.from_stack(stack)
    report = AwsSolutionsChecks(application).validate_scope(application)
    yield Synth(
        stack=stack, template=template, doc=dict(template.to_json()), nag_report=report, outdir=outdir
    )
