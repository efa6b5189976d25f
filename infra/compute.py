"""VPC and AWS Batch: a CPU Fargate queue for the media image, a GPU EC2 queue (g5/g6 Spot first,
On-Demand as fallback) for the ml image, and one job definition per containers/ image.

GPU instances: the AL2023 NVIDIA ECS image (AL2 is past its end of support), launched from a template
whose root volume (gp3, encrypted) holds the ml image and an original of the largest size accepted.
Fall-through: both GPU environments sit in one queue, Spot first; Batch places a job on the next
environment when the first cannot provide capacity, so Spot shortages run On-Demand instead of
waiting. A job that no environment can place is cancelled after a while (`jobStateTimeLimitActions`)
rather than blocking the queue, and its Step Functions task fails like any failed job.

Networking without NAT charges: the VPC has public subnets only and no NAT gateway. Jobs get public
IPs (Fargate `assign_public_ip`, EC2 instances in public subnets) with a security group that allows
no inbound traffic; S3 and DynamoDB traffic goes through free gateway endpoints. The one paid extra
a private design would need (NAT, about $33/month per AZ, or ECR/Logs interface endpoints, about
$7/month each per AZ) is avoided; see docs/deploy.md.
"""

from __future__ import annotations

import math

from aws_cdk import Duration, IgnoreMode, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import names
from mediaindex.pipeline.spec import STEPS
from mediaindex.settings import Settings

# (vCPU, memory) per image; the GPU jobs take one GPU each.
_RESOURCES = {"media": (2, Size.gibibytes(4)), "ml": (4, Size.gibibytes(15))}

# GPU root volume: the OS and the unpacked ml image (CUDA runtime, cuDNN, onnxruntime-gpu, weights:
# about 12 GiB) with room for the next image version pulled beside it, plus one original of the
# largest size the API accepts (a job downloads it), plus scratch (extracted audio, keyframes).
_GPU_SYSTEM_AND_IMAGE_GIB = 30
_GPU_SCRATCH_GIB = 10
# A RUNNABLE job no environment can place is cancelled after this long, and Batch says why.
_RUNNABLE_LIMITS = {
    "cpu": {reason: Duration.minutes(10) for reason in batch.JobStateTimeLimitActionsReason},
    "gpu": {
        # Spot and On-Demand both short of g5/g6: give capacity half an hour to appear.
        batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY: Duration.minutes(30),
        # Misconfiguration does not heal by waiting.
        batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE: Duration.minutes(10),
        batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT: Duration.minutes(10),
    },
}

# Percent of the queues' capacity Batch keeps for share identifiers with no job running yet.
FAIR_SHARE_RESERVE_PCT = 25


def gpu_root_volume_gib(max_asset_bytes: int | None = None) -> int:
    """The GPU instances' root volume for originals up to `max_asset_bytes` (default: the setting's)."""
    largest = max_asset_bytes or int(Settings.model_fields["max_asset_bytes"].default)
    return _GPU_SYSTEM_AND_IMAGE_GIB + math.ceil(largest / 2**30) + _GPU_SCRATCH_GIB


def model_environment(clip: bool) -> dict[str, str]:
    """Where the ml and encoder images keep their weights (their Dockerfiles put them under /models),
    set alike on the GPU jobs and the query-encoder Lambda, so queries and segments are embedded
    with the same models. CLIP is named when the `clip` context says the images carry it."""
    env = {"MEDIAINDEX_TEXT_MODEL_PATH": f"{names.MODELS_DIR}/text"}
    if clip:
        env["MEDIAINDEX_CLIP_MODEL_PATH"] = f"{names.MODELS_DIR}/clip"
    return env


def _runnable_limits(compute: str) -> list[batch.JobStateTimeLimitAction]:
    return [
        batch.JobStateTimeLimitAction(
            max_time=limit,
            reason=reason,
            action=batch.JobStateTimeLimitActionsAction.CANCEL,
            state=batch.JobStateTimeLimitActionsState.RUNNABLE,
        )
        for reason, limit in _RUNNABLE_LIMITS[compute].items()
    ]


def image_asset_options(image: str) -> dict[str, object]:
    """Build context is the repo root (the image needs layers/ and pyproject.toml), narrowed to
    about what the Dockerfile copies so unrelated edits do not rebuild the image."""
    return {
        "directory": str(names.ROOT),
        "file": f"containers/{image}/Dockerfile",
        # Explicit excludes, not "*" plus exceptions: with negations the fingerprint would walk .venv.
        "exclude": [
            ".*",
            "*.egg-info",
            "app.py",
            "cdk.json",
            "cdk.out",
            "node_modules",
            "bench",
            "docs",
            # functions/ stays: the images copy their entrypoints (batch_step, query_encoder) from it.
            "functions/api",
            "functions/upload_event",
            "functions/pipeline_events",
            "functions/gpu_batcher",
            "infra",
            "tests",
            "shared",
            "test-artifacts",
            "layers/*.egg-info",
            *[f"containers/{other}" for other in names.IMAGES if other != image],
            "**/__pycache__",
            "**/*.pyc",
        ],
        "ignore_mode": IgnoreMode.DOCKER,
        "platform": ecr_assets.Platform.LINUX_AMD64,
    }


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cpu_max_vcpus: int,
        gpu_max_vcpus: int,
        environment: dict[str, str],
        clip: bool = False,
    ) -> None:
        super().__init__(scope, id)
        for step in STEPS:
            # A Fargate job definition cannot run on the EC2 queue and back: image and compute go together.
            if names.IMAGES[step.image] != step.compute:
                raise ValueError(f"step {step.name}: image {step.image} runs on {names.IMAGES[step.image]}")

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.flow_logs = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays[names.LOG_RETENTION])
        self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_logs)
        )
        self.security_group = ec2.SecurityGroup(
            self, "Jobs", vpc=self.vpc, description="Batch jobs: egress only", allow_all_outbound=True
        )
        public = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)

        cpu_env = batch.FargateComputeEnvironment(
            self,
            "CpuEnv",
            vpc=self.vpc,
            vpc_subnets=public,
            security_groups=[self.security_group],
            maxv_cpus=cpu_max_vcpus,
        )
        gpu_classes = [ec2.InstanceClass(c.upper()) for c in names.GPU_INSTANCE_CLASSES]
        self.gpu_launch_template = ec2.LaunchTemplate(
            self,
            "GpuLaunchTemplate",
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",  # the AL2023 ECS images' one (root) volume
                    volume=ec2.BlockDeviceVolume.ebs(
                        gpu_root_volume_gib(),
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
            # Jobs get their role from the ECS agent, never from the instance metadata.
            require_imdsv2=True,
        )

        def gpu_env(id_: str, spot: bool) -> batch.ManagedEc2EcsComputeEnvironment:
            return batch.ManagedEc2EcsComputeEnvironment(
                self,
                id_,
                vpc=self.vpc,
                vpc_subnets=public,
                security_groups=[self.security_group],
                spot=spot,
                instance_classes=gpu_classes,
                use_optimal_instance_classes=False,
                minv_cpus=0,
                maxv_cpus=gpu_max_vcpus,
                allocation_strategy=(
                    batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                    if spot
                    else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
                ),
                images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)],
                launch_template=self.gpu_launch_template,
            )

        # Fair share across tenants: every job carries its tenant as share identifier (the state
        # machine sets it), so one tenant's thousand queued jobs cannot starve another's upload;
        # usage decays over 15 minutes, and a slice of capacity is held for tenants not yet running.
        self.fair_share = batch.FairshareSchedulingPolicy(
            self, "FairShare", share_decay=Duration.minutes(15), compute_reservation=FAIR_SHARE_RESERVE_PCT
        )
        self.cpu_queue = batch.JobQueue(
            self,
            "CpuQueue",
            priority=1,
            job_state_time_limit_actions=_runnable_limits("cpu"),
            scheduling_policy=self.fair_share,
        )
        self.cpu_queue.add_compute_environment(cpu_env, 1)
        self.gpu_queue = batch.JobQueue(
            self,
            "GpuQueue",
            priority=1,
            job_state_time_limit_actions=_runnable_limits("gpu"),
            scheduling_policy=self.fair_share,
        )
        # Spot first; when Spot has no g5/g6 capacity, jobs fall through to On-Demand.
        self.gpu_queue.add_compute_environment(gpu_env("GpuSpotEnv", True), 1)
        self.gpu_queue.add_compute_environment(gpu_env("GpuOnDemandEnv", False), 2)
        self.queue_for = {"cpu": self.cpu_queue, "gpu": self.gpu_queue}

        self.job_log_group = logs.LogGroup(self, "JobLogs", retention=logs.RetentionDays[names.LOG_RETENTION])
        self.job_roles: dict[str, iam.Role] = {}
        self.job_definitions: dict[str, batch.EcsJobDefinition] = {}
        longest = {img: max(s.timeout_s for s in STEPS if s.image == img) for img in names.IMAGES}
        for image, compute in names.IMAGES.items():
            role = iam.Role(
                self,
                f"{image.capitalize()}JobRole",
                assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                description=f"mediaindex {image} Batch jobs",
            )
            execution_role = iam.Role(
                self,
                f"{image.capitalize()}ExecutionRole",
                assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                description=f"pulls the {image} image and writes its logs",
            )
            cpu, memory = _RESOURCES[image]
            container_image = ecs.ContainerImage.from_asset(**image_asset_options(image))  # type: ignore[arg-type]
            log_driver = ecs.LogDriver.aws_logs(stream_prefix=image, log_group=self.job_log_group)
            container: batch.IEcsContainerDefinition
            if compute == "cpu":
                container = batch.EcsFargateContainerDefinition(
                    self,
                    f"{image.capitalize()}Container",
                    image=container_image,
                    cpu=cpu,
                    memory=memory,
                    job_role=role,
                    execution_role=execution_role,
                    assign_public_ip=True,
                    environment=environment,
                    logging=log_driver,
                    ephemeral_storage_size=Size.gibibytes(100),
                )
            else:
                container = batch.EcsEc2ContainerDefinition(
                    self,
                    f"{image.capitalize()}Container",
                    image=container_image,
                    cpu=cpu,
                    memory=memory,
                    gpu=1,
                    job_role=role,
                    execution_role=execution_role,
                    environment={**environment, **model_environment(clip)},
                    logging=log_driver,
                )
            self.job_roles[image] = role
            self.job_definitions[image] = batch.EcsJobDefinition(
                self,
                f"{image.capitalize()}JobDefinition",
                container=container,
                # attemptDurationSeconds: the state machine passes each step's own timeout (spec
                # timeout_s); this is the ceiling, the longest step of the image.
                timeout=Duration.seconds(longest[image]),
                propagate_tags=True,
            )
