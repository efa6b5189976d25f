"""VPC and AWS Batch: a CPU Fargate queue for the media image, a GPU EC2 queue (g5/g6 Spot first,
On-Demand as fallback) for the ml image, and one job definition per containers/ image.

Networking without NAT charges: the VPC has public subnets only and no NAT gateway. Jobs get public
IPs (Fargate `assign_public_ip`, EC2 instances in public subnets) with a security group that allows
no inbound traffic; S3 and DynamoDB traffic goes through free gateway endpoints. The one paid extra
a private design would need (NAT, about $33/month per AZ, or ECR/Logs interface endpoints, about
$7/month each per AZ) is avoided; see docs/deploy.md.
"""

from __future__ import annotations

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

# (vCPU, memory) per image; the GPU jobs take one GPU each.
_RESOURCES = {"media": (2, Size.gibibytes(4)), "ml": (4, Size.gibibytes(15))}


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
                images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2_NVIDIA)],
            )

        self.cpu_queue = batch.JobQueue(self, "CpuQueue", priority=1)
        self.cpu_queue.add_compute_environment(cpu_env, 1)
        self.gpu_queue = batch.JobQueue(self, "GpuQueue", priority=1)
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
                    # CLIP weights are optional at image build time (containers/README.md).
                    environment={
                        **environment,
                        **({"MEDIAINDEX_CLIP_MODEL_PATH": "/models/clip"} if clip else {}),
                    },
                    logging=log_driver,
                )
            self.job_roles[image] = role
            self.job_definitions[image] = batch.EcsJobDefinition(
                self,
                f"{image.capitalize()}JobDefinition",
                container=container,
                # The state machine passes each step's own timeout; this is the ceiling.
                timeout=Duration.seconds(longest[image]),
                propagate_tags=True,
            )
