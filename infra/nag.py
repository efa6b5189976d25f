"""cdk-nag (AwsSolutions) findings this design accepts, each acknowledged where it arises with the
reason. Everything else must be fixed, not acknowledged: tests/infra fails on any other finding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

from infra.names import GPU_MANIFESTS
from infra.pipeline import DIRECT_STEPS

if TYPE_CHECKING:
    from infra.stack import MediaIndexStack

XRAY = "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (Resource *)."
ECR_AUTH = "ecr:GetAuthorizationToken supports no resource-level permissions (Resource *)."
TABLE_INDEXES = "Queries on the table's own GSIs (gsi1, gsi2): scoped to <table>/index/*."
OBJECTS = "Object access scoped to one key prefix of the media bucket (originals/ or derived/)."
GPU_BATCH_MANIFESTS = (
    "Objects under the GPU batch manifests' prefix only (tmp/gpu-batches/): manifest keys are made per batch."
)
SEARCH = "HTTP access to this deployment's search index only: <domain>/* covers its indexes."


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


def ref(stack: Stack, construct: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag names a resource's attribute in a finding, e.g. <StorageTableB43FDCE7.Arn>."""
    element = construct.node.default_child if not isinstance(construct, CfnElement) else construct
    assert isinstance(element, CfnElement)
    return f"<{stack.get_logical_id(element)}.{attribute}>"


def suppress(stack: MediaIndexStack) -> None:
    table = ref(stack, stack.storage.table)
    bucket = ref(stack, stack.storage.bucket)
    originals = {f"IAM5[Resource::{bucket}/originals/*]": OBJECTS}
    prefix_findings = {**originals, f"IAM5[Resource::{bucket}/derived/*]": OBJECTS}
    index_finding = {f"IAM5[Resource::{table}/index/*]": TABLE_INDEXES}
    search_finding = (
        {f"IAM5[Resource::{ref(stack, stack.search.domain)}/*]": SEARCH}
        if stack.search.mode == "domain"
        else {}
    )

    def acks(scope: IConstruct, findings: dict[str, str]) -> None:
        for rule, reason in findings.items():
            _ack(scope, rule, reason)

    # Lambda roles: X-Ray, the table's indexes (API, upload), their prefixes.
    for fn in (
        stack.api.handler,
        stack.pipeline.upload_fn,
        stack.pipeline.events_fn,
        stack.pipeline.gpu_batcher,
    ):
        acks(fn.role, {"IAM5[Resource::*]": XRAY})
        _ack(
            fn.function,
            "L1",
            "The core package targets Python 3.11 (pyproject requires-python, tested on it).",
        )
    acks(stack.encoder.role, {"IAM5[Resource::*]": XRAY})
    _ack(
        stack.bootstrap_key.secret,
        "SMG4",
        "The first API key is rotated by creating a new key through the API and deleting this secret; "
        "keys are revoked in the table, so a Secrets Manager rotation Lambda would not revoke the old one.",
    )
    acks(stack.api.handler.role, {**index_finding, **prefix_findings, **search_finding})
    acks(stack.pipeline.upload_fn.role, {**index_finding, **originals})
    acks(stack.pipeline.events_fn.role, {**originals, **index_finding, **search_finding})
    # GPU batches: the batcher writes and reads their manifests, the ml jobs read them.
    manifests = {f"IAM5[Resource::{bucket}/{GPU_MANIFESTS}*]": GPU_BATCH_MANIFESTS}
    acks(stack.pipeline.gpu_batcher.role, manifests)
    acks(stack.pipeline.gpu_jobs_policy, manifests)
    _ack(
        stack.api.handler.role,
        f"IAM5[Resource::arn:<AWS::Partition>:states:{stack.region}:{stack.account}:execution:"
        f"{ref(stack, stack.pipeline.state_machine, 'Name')}:*]",
        "Stop executions of this deployment's one state machine (execution names are task ids).",
    )

    # Batch jobs.
    for image, role in stack.compute.job_roles.items():
        acks(role, {**prefix_findings, **(search_finding if image == "ml" else {})})
    if stack.search.mode == "domain":
        _ack(
            stack.compute.job_roles["media"],
            f"IAM5[Resource::{ref(stack, stack.search.domain)}/*/_delete_by_query]",
            "POST _delete_by_query on this deployment's indexes: a media job removes the search documents "
            "of an asset deleted while it ran.",
        )
        _ack(
            stack.pipeline.events_fn.role,
            f"IAM5[Resource::{ref(stack, stack.search.domain)}/*/_delete_by_query]",
            "POST _delete_by_query on this deployment's indexes: a re-index's swap drops the old "
            "generation's documents from its shared pool index (pooled keys share physical indexes).",
        )
        _ack(
            stack.pipeline.events_fn.role,
            f"IAM5[Resource::{ref(stack, stack.search.domain)}/*/_refresh]",
            "POST _refresh on this deployment's indexes: a re-index makes its last writes searchable "
            "before it swaps queries onto them.",
        )
    for image in stack.compute.job_roles:
        acks(
            stack.compute.node.find_child(f"{image.capitalize()}ExecutionRole"),
            {"IAM5[Resource::*]": ECR_AUTH},
        )
    for env in ("GpuSpotEnv", "GpuOnDemandEnv"):
        _ack(
            stack.compute.node.find_child(env),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
            "The ECS agent on Batch GPU instances needs this AWS-managed instance policy (AWS Batch docs).",
        )

    # State machine role.
    sm_role = stack.pipeline.role
    _ack(
        sm_role,
        "IAM5[Resource::*]",
        "batch:DescribeJobs and the CloudWatch Logs delivery and X-Ray actions support no resource-level "
        "permissions.",
    )
    _ack(
        sm_role,
        f"IAM5[Resource::arn:<AWS::Partition>:batch:{stack.region}:{stack.account}:job/*]",
        "batch:TerminateJob on jobs this state machine submitted (job ids are not known in advance).",
    )
    submitted = {s.image for s in DIRECT_STEPS}  # GPU steps are submitted by the batcher
    for definition in (d for i, d in stack.compute.job_definitions.items() if i in submitted):
        _ack(
            sm_role,
            f"IAM5[Resource::arn:<AWS::Partition>:batch:{stack.region}:{stack.account}:job-definition/"
            f'{{"Fn::Select":[1,{{"Fn::Split":["/",{{"Fn::Select":[5,{{"Fn::Split":[":",{{"Ref":'
            f'"{ref(stack, definition)[1:-5]}"}}]}}]}}]}}]}}:*]',
            "Any revision of this deployment's own job definition.",
        )

    _ack(
        stack.api.http_api,
        "APIG4",
        "Authorization is the app's own API keys (Authorization: Bearer), checked in the API Lambda; "
        "see docs/api.md.",
    )

    _ack(
        stack.observability.failed_jobs,
        "SQS3",
        "This queue is the dead end itself: it keeps failed-job events for inspection; nothing reads it.",
    )

    if stack.search.mode == "domain":
        domain = stack.search.domain
        _ack(
            domain,
            "OS1",
            "Public endpoint with IAM (SigV4) only: the Lambdas run outside the VPC to avoid NAT.",
        )
        _ack(domain, "OS3", "Access is by IAM identity (SigV4-signed requests of named roles), not by IP.")
        if stack.search.shape.masters == 0:
            _ack(
                domain,
                "OS4",
                "Fewer than three data nodes: AWS recommends three dedicated masters for domains of three "
                "or more data nodes, and search.py adds them from three on; below, they would cost more "
                "than the nodes they protect.",
            )
        _ack(
            domain,
            "OS5",
            "No resource policy: only identity policies of the API and ml job roles grant access.",
        )
        if stack.search.shape.zones == 1:
            _ack(
                domain,
                "OS7",
                "The one-node dev shape (search_data_nodes=1), one AZ by cost choice; the index can be "
                "rebuilt from DynamoDB and S3. The default spreads its nodes over two zones.",
            )
