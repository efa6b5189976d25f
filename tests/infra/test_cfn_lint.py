"""cfn-lint over the synthesized templates: the CloudFormation resource specification (types,
required and allowed values, enum values, relationships) checked before a deploy would find out.
Zero errors; each warning kept is listed here with why it is accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import names
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

# Warnings reviewed and accepted, by rule, with the reason. Nothing else may appear.
ACCEPTED_WARNINGS = {
    "W3010": "Subnets name their availability zones: a CDK stack with a known account and region is "
    "pinned to the zones looked up for it (cdk.json pins them for the placeholder account); that "
    "is how CDK builds VPCs for an environment, not a copy of zone names into a portable template.",
    "W3005": "CDK adds an explicit DependsOn from each Lambda function (and the state machine) to its "
    "role and the role's default policy, so the policy exists before the first invocation; the "
    "one on the role repeats what the Role GetAtt already implies, which changes nothing.",
}


def lint(doc: dict[str, Any], tmp_path: Path) -> list[tuple[str, str, str]]:
    """(rule id, message, path) of every match cfn-lint reports for the template, in our region."""
    from cfnlint.api import ManualArgs, lint_file

    path = tmp_path / "template.json"
    path.write_text(json.dumps(doc, indent=1))
    matches = lint_file(path, config=ManualArgs(regions=[names.PLACEHOLDER_REGION]))
    return [(m.rule.id, m.message, "/".join(str(p) for p in m.path)) for m in matches]


def assert_clean(matches: list[tuple[str, str, str]]) -> None:
    errors = [m for m in matches if not m[0].startswith(("W", "I"))]
    assert errors == []
    unreviewed = [m for m in matches if m[0].startswith("W") and m[0] not in ACCEPTED_WARNINGS]
    assert unreviewed == []


def test_the_stack_template_passes_cfn_lint(synth: Synth, tmp_path: Path) -> None:
    matches = lint(synth.doc, tmp_path)
    assert_clean(matches)
    # The accepted warnings are the ones reviewed: on the VPC's subnets and CDK's own DependsOn.
    assert {rule for rule, _, _ in matches if rule.startswith("W")} <= set(ACCEPTED_WARNINGS)


def test_the_serverless_search_template_passes_cfn_lint(tmp_path: Path) -> None:
    # search=serverless swaps the domain for a collection and its policies: lint those too.
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from infra.search import BUILD_AND_WRITE, Search

    stack = cdk.Stack(cdk.App(), "S")
    search = Search(stack, "Search", mode="serverless", retain=False)
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    search.allow([(role, BUILD_AND_WRITE)])
    assert_clean(lint(dict(Template.from_stack(stack).to_json()), tmp_path))
