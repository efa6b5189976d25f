"""The query-text encoder: a container-image Lambda built from containers/<names.ENCODER_IMAGE>
(CPU, the Batch embedding jobs' weights exported to ONNX: no torch) with the Lambda runtime client as
entrypoint and the encoder handler as command. The API invokes it synchronously to embed search
text. Its model environment is the GPU jobs' (`model_environment`): the same text model, and CLIP
when the `clip` context says so, so visual text search works on AWS.

With `provisioned` > 0 (context `encoder_provisioned_concurrency`) the API calls a `live` alias with
that many instances kept initialised: a cold start of this image (the models load: about 0.4 s to
the first MiniLM query here, bench/encoder_cold_start.py) is then never on a search's path, at the
price of those instances' memory around the clock."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import names
from infra.compute import image_asset_options, model_environment


class Encoder(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: dict[str, str],
        clip: bool = False,
        provisioned: int = 0,
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description="query encoder"
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays[names.LOG_RETENTION],
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        options = image_asset_options(names.ENCODER_IMAGE)
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=lambda_.DockerImageCode.from_image_asset(
                str(options["directory"]),
                file=str(options["file"]),
                exclude=list(options["exclude"]),  # type: ignore[call-overload]
                ignore_mode=options["ignore_mode"],  # type: ignore[arg-type]
                platform=ecr_assets.Platform.LINUX_AMD64,
                entrypoint=["python", "-m", "awslambdaric"],
                cmd=names.ENCODER_CMD,
            ),
            architecture=lambda_.Architecture.X86_64,
            role=self.role,
            log_group=self.log_group,
            environment={**environment, **model_environment(clip)},
            # ONNX MiniLM peaks at ~210 MB and CLIP ViT-B/32's two graphs add ~600 MB of weights;
            # 2 GB leaves room and buys ~1.2 vCPU (Lambda's CPU grows with memory).
            memory_size=2048,
            timeout=Duration.seconds(20),
            tracing=lambda_.Tracing.ACTIVE,
        )
        if provisioned < 0:
            raise ValueError(f"{names.CTX_ENCODER_WARM} must be 0 or more, not {provisioned}")
        # What the API invokes: the function (by name), or its warm alias (by ARN: boto3 invokes a
        # qualified ARN as it does a name).
        self.target: lambda_.IFunction = self.function
        self.invoke_name = self.function.function_name
        if provisioned:
            self.target = lambda_.Alias(
                self,
                "Live",
                alias_name="live",
                version=self.function.current_version,
                provisioned_concurrent_executions=provisioned,
            )
            self.invoke_name = self.target.function_arn

    def allow_invoke(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.target.function_arn])
        )
