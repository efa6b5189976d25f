"""Webhook deliveries (docs/webhooks.md): a KMS key that seals the signing secrets, an SQS queue of
delivery attempts with a DLQ, and the delivery Lambda that consumes it. Why SQS and not a
scheduled sweep of the table: docs/deploy.md ("Webhook deliveries").

Who may do what: the API seals new secrets (kms:Encrypt) and queues redeliveries; the
pipeline-events Lambda queues the deliveries of a settled task; only the delivery Lambda opens a
secret (kms:Decrypt), reads and writes delivery items, and puts a message back with its delay."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra import policies
from infra.function import ServiceFunction, dead_letter_queue
from infra.nag import XRAY

FUNCTION_FOLDER = "webhook_delivery"  # functions/webhook_delivery
# Read by mediaindex.services.webhooks.WebhookSettings (prefix MEDIAINDEX_WEBHOOK_).
ENV_QUEUE = "MEDIAINDEX_WEBHOOK_QUEUE_URL"
ENV_KEY = "MEDIAINDEX_WEBHOOK_KMS_KEY_ID"
FUNCTION_TIMEOUT = Duration.seconds(30)  # a batch of 10 attempts, each at most ~10 s, in practice ~1 s
MAX_RECEIVES = 5  # a message whose handling keeps raising (not a failed attempt) then goes to the DLQ
# Queue message actions the Lambda service performs with the consumer's role.
CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))


class Webhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        table: ddb.ITableV2,
        api: ServiceFunction,
        pipeline_events: ServiceFunction,
        alarm_topic: sns.ITopic,
        retain: bool,
    ) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "SecretsKey",
            description="mediaindex webhook signing secrets",
            enable_key_rotation=True,
            # Without it the sealed secrets of existing webhooks can never be opened again.
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.dlq = dead_letter_queue(self)
        self.queue = sqs.Queue(
            self,
            "Queue",
            # AWS's advice for a Lambda consumer: six times the function timeout.
            visibility_timeout=Duration.seconds(6 * FUNCTION_TIMEOUT.to_seconds()),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVES, queue=self.dlq),
        )
        wiring = {ENV_QUEUE: self.queue.queue_url, ENV_KEY: self.key.key_arn}
        self.delivery_fn = ServiceFunction(
            self,
            "DeliveryFn",
            folder=FUNCTION_FOLDER,
            layer=layer,
            environment={**environment, **wiring},
            timeout=FUNCTION_TIMEOUT,
        )
        role = self.delivery_fn.role
        # Reads the delivery and its webhook, writes their new state (PutItem, conditional).
        policies.table(
            role, table, ["dynamodb:GetItem", *policies.TABLE_PUT], writes_to=["TENANT#", "WEBHOOK#"]
        )
        self._decrypt(role)
        self._send(role)
        role.add_to_principal_policy(iam.PolicyStatement(actions=CONSUME, resources=[self.queue.queue_arn]))
        lambda_.EventSourceMapping(
            self,
            "Consumer",
            target=self.delivery_fn.function,
            event_source_arn=self.queue.queue_arn,
            batch_size=10,
            report_batch_item_failures=True,
        )

        for fn in (api, pipeline_events):
            for name, value in wiring.items():
                fn.function.add_environment(name, value)
            self._send(fn.role)
        api.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Encrypt"], resources=[self.key.key_arn])
        )

        self.dlq_alarm = cw.Alarm(
            self,
            "DlqDepth",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            alarm_description="Webhook delivery messages the delivery function could not handle",
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.dlq_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
        _ack(role, "IAM5[Resource::*]", XRAY)
        _ack(
            self.delivery_fn.function,
            "L1",
            "The core package targets Python 3.11 (pyproject requires-python, tested on it).",
        )
        _ack(self.dlq, "SQS3", "This queue is the dead end itself: failed delivery messages wait here.")

    def _decrypt(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.key.key_arn])
        )

    def _send(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
