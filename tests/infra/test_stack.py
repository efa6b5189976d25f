"""Template assertions per construct of the synthesized stack (one synth per session: conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import aws_prices as prices
from infra.api import DEFAULT_BURST_LIMIT, DEFAULT_RATE_LIMIT
from infra.compute import gpu_root_volume_gib, model_environment
from mediaindex.adapters.aws import state_machine
from mediaindex.adapters.aws.dynamo import schema
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching
from mediaindex.pipeline.spec import STEP_BY_NAME, STEPS
from mediaindex.settings import Settings
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

# The only actions allowed on Resource "*": AWS offers no resource-level permission for them.
UNSCOPABLE = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "ecr:GetAuthorizationToken",
    "batch:DescribeJobs",
    "batch:ListJobs",  # the reconciler lists RUNNABLE jobs per queue; IAM has no resource type for it
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def resources(doc: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == type_}


def only(doc: dict[str, Any], type_: str) -> dict[str, Any]:
    found = list(resources(doc, type_).values())
    assert len(found) == 1, f"{type_}: {len(found)}"
    return found[0]


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in resources(doc, "AWS::IAM::Policy").values():
        out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- storage ---


def test_media_bucket_is_private_encrypted_ssl_only_with_upload_cors_and_lifecycle(synth: Synth) -> None:
    buckets = resources(synth.doc, "AWS::S3::Bucket")
    media = next(b for k, b in buckets.items() if k.startswith("StorageMedia"))
    props = media["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    cors = props["CorsConfiguration"]["CorsRules"][0]
    assert "PUT" in cors["AllowedMethods"] and cors["ExposedHeaders"] == ["ETag"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["expire-tmp"]["Prefix"] == "tmp/" and rules["expire-tmp"]["ExpirationInDays"] == 1
    assert media["DeletionPolicy"] == "Retain"
    # no notifications custom resource: nothing but our own functions exist
    assert not [r for r in synth.doc["Resources"].values() if r["Type"].startswith("Custom::")]
    policy = next(
        p
        for p in resources(synth.doc, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": next(k for k in buckets if k.startswith("StorageMedia"))}
    )
    deny = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_table_keys_and_indexes_come_from_the_adapter_schema(synth: Synth) -> None:
    table = only(synth.doc, "AWS::DynamoDB::GlobalTable")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": schema.PK, "KeyType": "HASH"},
        {"AttributeName": schema.SK, "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert {a["AttributeName"] for a in props["AttributeDefinitions"]} == set(schema.KEY_ATTRIBUTES)
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        schema.GSI1: [schema.GSI1_PK, schema.GSI1_SK],
        schema.GSI2: [schema.GSI2_PK, schema.GSI2_SK],
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True}
    replica = props["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert replica["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# --- api ---


def test_http_api_routes_to_the_api_lambda_with_throttling_access_logs_and_an_output(synth: Synth) -> None:
    api = only(synth.doc, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "authorization" in api["Properties"]["CorsConfiguration"]["AllowHeaders"]
    stage = only(synth.doc, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert stage["StageName"] == "$default"
    # The stage's throttle (shared by every tenant) carries the modelled scale: ~3 requests an upload
    # at 10,000 uploads a minute is 500 requests/s (docs/scale.md, quota api_stage_rps)
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == DEFAULT_RATE_LIMIT == prices.API_STAGE_RPS
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == DEFAULT_BURST_LIMIT
    assert "$context.status" in stage["AccessLogSettings"]["Format"]
    assert any(k.startswith("ApiUrl") for k in synth.doc["Outputs"])
    functions = resources(synth.doc, "AWS::Lambda::Function")
    api_fn = next(f for k, f in functions.items() if k.startswith("ApiApiFn"))["Properties"]
    env = api_fn["Environment"]["Variables"]
    assert env["MEDIAINDEX_RUNTIME"] == "aws"
    assert env["MEDIAINDEX_ENCODER_VISUAL"] == "false"  # cdk.json: no clip, so /v1/capabilities says so
    assert set(env) >= {
        "MEDIAINDEX_TABLE_NAME",
        "MEDIAINDEX_BUCKET_NAME",
        "MEDIAINDEX_STATE_MACHINE_ARN",
        "MEDIAINDEX_OPENSEARCH_URL",
        "MEDIAINDEX_AWS_REGION",
    }
    assert api_fn["Handler"] == "handler.handler" and len(api_fn["Layers"]) == 1


# --- pipeline ---


def test_upload_rule_matches_object_created_under_originals_and_targets_the_upload_lambda(
    synth: Synth,
) -> None:
    rules = [
        r
        for r in resources(synth.doc, "AWS::Events::Rule").values()
        # The reconciler's schedule rule has no pattern at all.
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert len(rules) == 1
    pattern = rules[0]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "originals/"}]}
    target = rules[0]["Properties"]["Targets"][0]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("PipelineUploadFn")
    assert "DeadLetterConfig" in target


def _resolve_join(value: Any, markers: dict[str, str]) -> str:
    """The definition string with each intrinsic (Ref, GetAtt) replaced by its marker."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else markers[json.dumps(p, sort_keys=True)] for p in parts)


def test_both_queues_schedule_tenants_by_fair_share_and_every_job_names_its_tenant(synth: Synth) -> None:
    [(policy_id, policy)] = resources(synth.doc, "AWS::Batch::SchedulingPolicy").items()
    fair = policy["Properties"]["FairsharePolicy"]
    assert fair["ShareDecaySeconds"] == 900 and 0 < fair["ComputeReservation"] < 100
    for queue in resources(synth.doc, "AWS::Batch::JobQueue").values():
        assert queue["Properties"]["SchedulingPolicyArn"] in (
            {"Ref": policy_id},
            {"Fn::GetAtt": [policy_id, "Arn"]},
        )
    # A fair-share queue refuses a job without a share identifier: every Batch state sets one.
    definition = only(synth.doc, "AWS::StepFunctions::StateMachine")["Properties"]["DefinitionString"]
    machine = json.loads(_resolve_join(definition, _AnyMarker()))
    batch_states = [
        s for s in _all_states(machine) if s.get("Resource", "").startswith("arn:aws:states:::batch:")
    ]
    assert batch_states and all(s["Parameters"]["ShareIdentifier.$"] == "$.tenant_id" for s in batch_states)


class _AnyMarker(dict[str, str]):
    """Markers for _resolve_join where only the definition's shape matters."""

    def __missing__(self, key: str) -> str:
        return "@@"


def _all_states(machine: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for state in machine["States"].values():
        out.append(state)
        for branch in state.get("Branches", []):
            out += _all_states(branch)
        if "ItemProcessor" in state:
            out += _all_states(state["ItemProcessor"])
    return out


def test_state_machine_in_the_template_is_the_generated_definition(synth: Synth) -> None:
    stack = synth.stack
    machine = only(synth.doc, "AWS::StepFunctions::StateMachine")["Properties"]
    tokens = {
        "cpu": stack.compute.cpu_queue.job_queue_arn,
        "gpu": stack.compute.gpu_queue.job_queue_arn,
        "events": stack.pipeline.events_fn.function.function_arn,
        "gpu-work": stack.pipeline.gpu_work.queue_url,
        **{image: d.job_definition_arn for image, d in stack.compute.job_definitions.items()},
    }
    markers = {
        json.dumps(stack.resolve(token), sort_keys=True): f"@@{name}@@" for name, token in tokens.items()
    }

    expected = state_machine.definition(
        STEPS,
        cpu_queue_arn="@@cpu@@",
        gpu_queue_arn="@@gpu@@",
        job_definitions={image: f"@@{image}@@" for image in stack.compute.job_definitions},
        events_function_arn="@@events@@",
        gpu_batching=GpuBatching(
            "@@gpu-work@@", stack.pipeline.gpu_batch_max_items, stack.pipeline.gpu_batch_window_s
        ),
    )
    assert json.loads(_resolve_join(machine["DefinitionString"], markers)) == expected
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}


# --- compute ---


def test_batch_has_a_fargate_cpu_queue_and_a_spot_first_gpu_queue_scaling_to_zero(synth: Synth) -> None:
    envs = resources(synth.doc, "AWS::Batch::ComputeEnvironment")
    kinds = sorted(e["Properties"]["ComputeResources"]["Type"] for e in envs.values())
    assert kinds == ["EC2", "FARGATE", "SPOT"]
    for env in envs.values():
        compute = env["Properties"]["ComputeResources"]
        if compute["Type"] in ("EC2", "SPOT"):
            assert compute["MinvCpus"] == 0
            assert sorted(compute["InstanceTypes"]) == ["g5", "g6"]
    queues = resources(synth.doc, "AWS::Batch::JobQueue")
    assert len(queues) == 2
    gpu = next(q for k, q in queues.items() if k.startswith("ComputeGpuQueue"))["Properties"]
    order = {o["Order"]: o["ComputeEnvironment"]["Fn::GetAtt"][0] for o in gpu["ComputeEnvironmentOrder"]}
    assert order[1].startswith("ComputeGpuSpotEnv") and order[2].startswith("ComputeGpuOnDemandEnv")
    vpc_nat = resources(synth.doc, "AWS::EC2::NatGateway")
    assert vpc_nat == {}
    endpoints = resources(synth.doc, "AWS::EC2::VPCEndpoint")
    assert len(endpoints) == 2


def test_gpu_environments_run_al2023_nvidia_from_a_launch_template_with_room_for_the_largest_original(
    synth: Synth,
) -> None:
    envs = [
        e["Properties"]["ComputeResources"]
        for e in resources(synth.doc, "AWS::Batch::ComputeEnvironment").values()
        if e["Properties"]["ComputeResources"]["Type"] in ("EC2", "SPOT")
    ]
    template = only(synth.doc, "AWS::EC2::LaunchTemplate")
    template_id = next(k for k, v in synth.doc["Resources"].items() if v is template)
    for compute in envs:
        assert compute["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]  # AL2 is past support
        assert compute["LaunchTemplate"] == {"LaunchTemplateId": {"Ref": template_id}}
    data = template["Properties"]["LaunchTemplateData"]
    (root,) = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["VolumeType"] == "gp3" and root["Ebs"]["Encrypted"] is True
    largest_gib = Settings().max_asset_bytes / 2**30
    assert root["Ebs"]["VolumeSize"] == gpu_root_volume_gib() >= largest_gib + 30  # + the ml image
    assert data["MetadataOptions"]["HttpTokens"] == "required"


def test_queues_cancel_jobs_stuck_runnable_and_the_gpu_queue_falls_through_to_on_demand(synth: Synth) -> None:
    queues = {k: q["Properties"] for k, q in resources(synth.doc, "AWS::Batch::JobQueue").items()}
    gpu = next(q for k, q in queues.items() if k.startswith("ComputeGpuQueue"))
    cpu = next(q for k, q in queues.items() if k.startswith("ComputeCpuQueue"))

    def limits(queue: dict[str, Any]) -> dict[str, int]:
        actions = queue["JobStateTimeLimitActions"]
        assert {(a["Action"], a["State"]) for a in actions} == {("CANCEL", "RUNNABLE")}
        return {a["Reason"]: a["MaxTimeSeconds"] for a in actions}

    assert limits(gpu)["CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"] == 30 * 60
    assert limits(cpu)["CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"] == 10 * 60
    assert (
        set(limits(gpu))
        == set(limits(cpu))
        == {
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        }
    )
    # Fall-through: Batch tries the next environment of the queue when the first cannot place a
    # job, so the On-Demand environment must sit in the same queue, after Spot, alike in all else.
    envs = resources(synth.doc, "AWS::Batch::ComputeEnvironment")
    ordered = sorted(gpu["ComputeEnvironmentOrder"], key=lambda o: o["Order"])
    spot, on_demand = (
        envs[o["ComputeEnvironment"]["Fn::GetAtt"][0]]["Properties"]["ComputeResources"] for o in ordered
    )
    assert (spot["Type"], on_demand["Type"]) == ("SPOT", "EC2")
    same = ("InstanceTypes", "MaxvCpus", "LaunchTemplate", "Ec2Configuration", "Subnets")
    assert {k: spot[k] for k in same} == {k: on_demand[k] for k in same}


def test_job_definitions_time_out_after_their_longest_step_and_proxy_covers_the_longest_media(
    synth: Synth,
) -> None:
    definitions = resources(synth.doc, "AWS::Batch::JobDefinition")
    for image in ("media", "ml"):
        definition = next(d for k, d in definitions.items() if k.startswith(f"Compute{image.capitalize()}"))
        longest = max(s.timeout_s for s in STEPS if s.image == image)
        assert definition["Properties"]["Timeout"] == {"AttemptDurationSeconds": longest}
    # The proxy encodes at real-time speed or better: its timeout covers the longest media accepted.
    assert STEP_BY_NAME["proxy"].timeout_s >= Settings().max_duration_s


def test_the_encoder_and_the_gpu_jobs_share_the_model_environment(synth: Synth) -> None:
    functions = resources(synth.doc, "AWS::Lambda::Function")
    encoder = next(f for k, f in functions.items() if k.startswith("EncoderFunction"))["Properties"]
    ml = next(
        d for k, d in resources(synth.doc, "AWS::Batch::JobDefinition").items() if k.startswith("ComputeMl")
    )
    ml_env = {e["Name"]: e["Value"] for e in ml["Properties"]["ContainerProperties"]["Environment"]}
    models = model_environment(clip=False)  # cdk.json: no clip
    assert models == {"MEDIAINDEX_TEXT_MODEL_PATH": "/models/text"}
    assert encoder["Environment"]["Variables"].items() >= models.items()
    assert ml_env.items() >= models.items()
    assert model_environment(clip=True)["MEDIAINDEX_CLIP_MODEL_PATH"] == "/models/clip"


def test_every_function_names_the_whisper_model_the_ml_image_carries(synth: Synth) -> None:
    """The API offers it for re-indexing and names it as an index's model; the events Lambda
    compares against it: all must agree with what the GPU jobs load."""
    from pathlib import Path

    from infra import names

    dockerfile = (Path(__file__).resolve().parents[2] / "containers" / "ml" / "Dockerfile").read_text()
    assert f"MEDIAINDEX_WHISPER_MODEL={names.ML_WHISPER_MODEL}" in dockerfile
    for key, fn in resources(synth.doc, "AWS::Lambda::Function").items():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "MEDIAINDEX_TABLE_NAME" in env:  # the service functions (not CDK's own helpers)
            assert env.get("MEDIAINDEX_WHISPER_MODEL") == names.ML_WHISPER_MODEL, key


def test_one_job_definition_per_container_image_gpu_for_ml(synth: Synth) -> None:
    definitions = resources(synth.doc, "AWS::Batch::JobDefinition")
    assert len(definitions) == 2
    by_name = {k: d["Properties"] for k, d in definitions.items()}
    media = next(v for k, v in by_name.items() if k.startswith("ComputeMedia"))
    ml = next(v for k, v in by_name.items() if k.startswith("ComputeMl"))
    assert media["PlatformCapabilities"] == ["FARGATE"]
    assert {"Type": "GPU", "Value": "1"} in ml["ContainerProperties"]["ResourceRequirements"]
    for definition in (media, ml):
        assert definition["ContainerProperties"]["JobRoleArn"]
        assert "Fn::Sub" in json.dumps(definition["ContainerProperties"]["Image"])  # an asset image in ECR


# --- search and encoder ---


def test_search_domain_is_encrypted_https_only_and_reachable_only_by_the_api_and_job_roles(
    synth: Synth,
) -> None:
    resource = only(synth.doc, "AWS::OpenSearchService::Domain")
    domain = resource["Properties"]
    assert domain["EBSOptions"]["VolumeType"] == "gp3"
    # Created only once it may write its logs (no race with the log resource policy).
    (policy_id,) = resources(synth.doc, "AWS::Logs::ResourcePolicy")
    assert policy_id in resource["DependsOn"]
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"]["Enabled"] is True
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert "AccessPolicies" not in domain
    es_roles = {
        json.dumps(policy["Properties"]["Roles"])
        for policy in resources(synth.doc, "AWS::IAM::Policy").values()
        if any(
            a.startswith("es:")
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            for a in as_list(s["Action"])
        )
    }
    # The API and the ml jobs; the media jobs only delete an asset's documents, the pipeline-events
    # function only drops a re-index's old generation (tests/infra/test_iam_from_calls.py proves
    # each role's methods from the calls its code makes).
    assert len(es_roles) == 4
    assert {
        next(
            k
            for k in ("ApiApiFnRole", "ComputeMlJobRole", "ComputeMediaJobRole", "PipelineEventsFnRole")
            if k in r
        )
        for r in es_roles
    } == {
        "ApiApiFnRole",
        "ComputeMlJobRole",
        "ComputeMediaJobRole",
        "PipelineEventsFnRole",
    }


def domain_properties(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(only(doc, "AWS::OpenSearchService::Domain")["Properties"])


def test_search_domain_defaults_to_two_r7g_large_nodes_in_two_zones_with_100_gb_gp3(synth: Synth) -> None:
    domain = domain_properties(synth.doc)
    cluster = domain["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["InstanceCount"]) == ("r7g.large.search", 2)
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 2}
    # Two data nodes get no dedicated masters (AWS recommends three once there are three data nodes).
    assert cluster["DedicatedMasterEnabled"] is False and "DedicatedMasterCount" not in cluster
    assert domain["EBSOptions"] == {"EBSEnabled": True, "VolumeSize": 100, "VolumeType": "gp3"}
    # A public endpoint: AWS places the nodes in its zones, no subnets have to span them.
    assert "VPCOptions" not in domain


def test_dev_context_flags_deploy_todays_single_t3_small_node_without_zone_awareness() -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    import app as cdk_app
    from infra import names
    from tests.infra.conftest import ROOT

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    # As `cdk deploy -c ...` passes them: strings.
    flags = {
        names.CTX_SEARCH_INSTANCE_TYPE: "t3.small.search",
        names.CTX_SEARCH_DATA_NODES: "1",
        names.CTX_SEARCH_VOLUME_GB: "20",
    }
    application = cdk.App(context={**context, "aws:cdk:bundling-stacks": [], **flags})
    domain = domain_properties(dict(Template.from_stack(cdk_app.build(application)).to_json()))
    cluster = domain["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["InstanceCount"]) == ("t3.small.search", 1)
    assert cluster["ZoneAwarenessEnabled"] is False and "ZoneAwarenessConfig" not in cluster
    assert cluster["DedicatedMasterEnabled"] is False
    assert domain["EBSOptions"]["VolumeSize"] == 20
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"]["Enabled"] is True
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True


def search_domain(*context: object) -> dict[str, Any]:
    """The domain a Search construct makes for these context values (instance type, nodes, GB)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.search import Search, domain_shape

    stack = cdk.Stack(cdk.App(), "S")
    Search(stack, "Search", mode="domain", retain=False, shape=domain_shape(*context))
    return domain_properties(dict(Template.from_stack(stack).to_json()))


@pytest.mark.parametrize(("nodes", "zones"), [(3, 3), (4, 2), (6, 3), (10, 2)])
def test_three_or_more_data_nodes_add_three_dedicated_masters_and_spread_over_zones(
    nodes: int, zones: int
) -> None:
    cluster = search_domain(None, str(nodes))["ClusterConfig"]
    assert cluster["InstanceCount"] == nodes
    assert cluster["DedicatedMasterEnabled"] is True
    assert cluster["DedicatedMasterCount"] == 3
    assert cluster["DedicatedMasterType"].endswith(".search")
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": zones}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (("r7g.large",), "search_instance_type must be an OpenSearch Service instance type"),
        ((None, "5"), "search_data_nodes must be 1 .*even .*multiple of 3"),
        ((None, "0"), "search_data_nodes must be 1 to 10"),
        ((None, "12"), "search_data_nodes must be 1 to 10"),
        ((None, "two"), "search_data_nodes must be a whole number"),
        ((None, None, "5"), "search_volume_gb must be at least 10"),
        ((None, None, "100GB"), "search_volume_gb must be a whole number"),
        # CDK's own check: this stack encrypts at rest, which T2 types cannot.
        (("t2.small.search", "1"), "T2 instance types do not support encryption of data at rest"),
    ],
)
def test_a_domain_shape_aws_could_not_deploy_is_refused_at_synth(
    context: tuple[object, ...], message: str
) -> None:
    with pytest.raises((ValueError, RuntimeError), match=message):
        search_domain(*context)


def test_serverless_search_makes_a_vector_collection_with_a_data_policy_for_named_roles() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from infra.search import BUILD_AND_WRITE, Search

    stack = cdk.Stack(cdk.App(), "S")
    search = Search(stack, "Search", mode="serverless", retain=False)
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    search.allow([(role, BUILD_AND_WRITE)])
    doc = dict(Template.from_stack(stack).to_json())
    assert only(doc, "AWS::OpenSearchServerless::Collection")["Properties"]["Type"] == "VECTORSEARCH"
    policy = only(doc, "AWS::OpenSearchServerless::AccessPolicy")["Properties"]
    assert policy["Type"] == "data" and "Fn::GetAtt" in json.dumps(policy["Policy"])
    assert "aoss:DeleteIndex" in json.dumps(policy["Policy"])  # deleting a mediaindex index
    assert len(resources(doc, "AWS::OpenSearchServerless::SecurityPolicy")) == 2


def logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.get_logical_id(construct.node.default_child))


def test_query_encoder_is_a_container_image_lambda_of_the_ml_image(synth: Synth) -> None:
    functions = resources(synth.doc, "AWS::Lambda::Function")
    stack = synth.stack
    ours = (
        stack.api.handler.function,
        stack.pipeline.upload_fn.function,
        stack.pipeline.events_fn.function,
        stack.pipeline.gpu_batcher.function,
        stack.encoder.function,
        stack.webhooks.delivery_fn.function,
        stack.reconcile.fn.function,
    )
    assert set(functions) == {logical_id(synth, f) for f in ours}  # and no CDK helper function
    encoder = next(f for k, f in functions.items() if k.startswith("EncoderFunction"))["Properties"]
    assert encoder["PackageType"] == "Image"
    assert encoder["ImageConfig"]["EntryPoint"] == ["python", "-m", "awslambdaric"]


def _encoder_stack(provisioned: int) -> tuple[Any, Any, dict[str, Any]]:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from infra.encoder import Encoder

    stack = cdk.Stack(cdk.App(), "E")
    encoder = Encoder(stack, "Encoder", environment={}, provisioned=provisioned)
    role = iam.Role(stack, "ApiRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    encoder.allow_invoke(role)
    return stack, encoder, dict(Template.from_stack(stack).to_json())


def _api_stage(rate: int, burst: int) -> dict[str, Any]:
    import aws_cdk as cdk
    from aws_cdk import aws_dynamodb as ddb
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template

    from infra.api import Api

    stack = cdk.Stack(cdk.App(), "A", env=cdk.Environment(account="123456789012", region="us-east-1"))
    Api(
        stack, "Api",
        layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:core:1"
        ),
        environment={}, table=ddb.TableV2.from_table_name(stack, "T", "media-table"),
        bucket=s3.Bucket.from_bucket_name(stack, "B", "media-bucket"),
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:p",
        executions_arn="arn:aws:states:us-east-1:123456789012:execution:p:*",
        cors_origins=[], rate_limit=rate, burst_limit=burst,
    )  # fmt: skip
    return only(dict(Template.from_stack(stack).to_json()), "AWS::ApiGatewayV2::Stage")["Properties"]


def test_the_api_throttle_is_set_by_context_within_the_accounts_limits() -> None:
    settings = _api_stage(3000, 4500)["DefaultRouteSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (3000, 4500)
    for rate, burst in ((0, 10), (100, 50), (20_000, 5_000), (1_000, 6_000)):
        with pytest.raises(ValueError, match="api_rate_limit and api_burst_limit"):
            _api_stage(rate, burst)


def _invoke_resources(doc: dict[str, Any]) -> list[Any]:
    return [
        st["Resource"]
        for policy in resources(doc, "AWS::IAM::Policy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st["Action"] == "lambda:InvokeFunction"
    ]


def test_a_warm_query_encoder_is_a_live_alias_with_provisioned_concurrency(tmp_path: Any) -> None:
    from tests.infra.test_cfn_lint import assert_clean, lint

    stack, encoder, doc = _encoder_stack(2)
    ((alias_id, alias),) = resources(doc, "AWS::Lambda::Alias").items()
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    # The API is told the alias (its ARN) and may invoke only that
    assert stack.resolve(encoder.invoke_name) == {"Ref": alias_id}
    assert _invoke_resources(doc) == [{"Ref": alias_id}]
    assert_clean(lint(doc, tmp_path))


def test_by_default_the_query_encoder_is_invoked_unqualified_and_nothing_is_kept_warm() -> None:
    stack, encoder, doc = _encoder_stack(0)
    assert resources(doc, "AWS::Lambda::Alias") == {}
    (function_id,) = resources(doc, "AWS::Lambda::Function")
    assert stack.resolve(encoder.invoke_name) == {"Ref": function_id}
    assert _invoke_resources(doc) == [{"Fn::GetAtt": [function_id, "Arn"]}]


def test_a_negative_warm_encoder_count_is_refused_at_synth() -> None:
    with pytest.raises(ValueError, match="encoder_provisioned_concurrency must be 0 or more"):
        _encoder_stack(-1)


# --- observability ---


def test_alarms_on_api_5xx_failed_executions_batch_failures_and_dlq_depth(synth: Synth) -> None:
    alarms = resources(synth.doc, "AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    depth = "ApproximateNumberOfMessagesVisible"
    assert metrics == ["5xx", depth, depth, depth, depth, "ExecutionsFailed", "TriggeredRules"]
    # One depth alarm per dead-letter queue a function feeds: the upload rule's, the GPU work queue's,
    # the GPU batcher's failed-job events', the webhook deliveries'.
    watched = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a["Properties"]["MetricName"] == depth
    }
    pipeline = synth.stack.pipeline
    assert pipeline.upload_fn.dlq is not None and pipeline.gpu_batcher.dlq is not None
    assert watched == {
        logical_id(synth, pipeline.upload_fn.dlq),
        logical_id(synth, pipeline.gpu_dlq),
        logical_id(synth, pipeline.gpu_batcher.dlq),
        logical_id(synth, synth.stack.webhooks.dlq),
    }
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    # The topic's key is one CloudWatch may use (the AWS-managed SNS key would drop every alarm).
    topic = only(synth.doc, "AWS::SNS::Topic")["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synth.doc["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Sid": "CloudWatchAlarmsPublish",
    } in key["KeyPolicy"]["Statement"]
    assert len(resources(synth.doc, "AWS::CloudWatch::Dashboard")) == 1
    for group in resources(synth.doc, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30


# --- IAM and cdk-nag ---


def test_every_function_and_job_has_its_own_role(synth: Synth) -> None:
    roles = [f["Properties"]["Role"] for f in resources(synth.doc, "AWS::Lambda::Function").values()]
    roles += [
        d["Properties"]["ContainerProperties"]["JobRoleArn"]
        for d in resources(synth.doc, "AWS::Batch::JobDefinition").values()
    ]
    # Seven functions (API, upload, pipeline events, GPU batcher, encoder, webhook delivery,
    # reconcile), two images.
    assert len({json.dumps(r, sort_keys=True) for r in roles}) == len(roles) == 9


def test_no_wildcard_actions_and_resource_star_only_where_aws_allows_nothing_else(synth: Synth) -> None:
    for statement in statements(synth.doc):
        actions = as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], statement
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= UNSCOPABLE, statement


def test_cdk_nag_reports_no_unacknowledged_findings(synth: Synth) -> None:
    findings = [
        f"{v.rule_name} {r.construct_path}"
        for v in synth.nag_report.violations
        for r in v.violating_resources
    ]
    assert findings == []
    assert synth.nag_report.success is True


def test_first_api_key_is_a_generated_secret_only_the_api_can_read(synth: Synth) -> None:
    secrets = synth.template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    (logical_id, secret), *_ = secrets.items()
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    readers = [
        stmt
        for policy in synth.template.find_resources("AWS::IAM::Policy").values()
        for stmt in policy["Properties"]["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue"
        in (stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]])
    ]
    assert len(readers) == 1 and readers[0]["Resource"] == {"Ref": logical_id}
    env = next(
        fn["Properties"]["Environment"]["Variables"]
        for fn in synth.template.find_resources("AWS::Lambda::Function").values()
        if "MEDIAINDEX_BOOTSTRAP_KEY_SECRET_ARN"
        in fn["Properties"].get("Environment", {}).get("Variables", {})
    )
    assert env["MEDIAINDEX_BOOTSTRAP_KEY_SECRET_ARN"] == {"Ref": logical_id}
    assert "ApiKeySecretArn" in synth.doc["Outputs"]
