"""One dashboard and the alarms that mean someone should look: API 5xx, failed executions,
Batch job failures, messages in the upload DLQ. Alarms go to an SNS topic (email by context).

The topic is encrypted with a customer-managed KMS key whose policy lets CloudWatch use it: alarms
cannot publish to a topic under the AWS-managed SNS key (`alias/aws/sns`), whose policy AWS owns
and which names no CloudWatch principal, so every alarm action would fail silently."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        http_api: apigw.HttpApi,
        state_machine: sfn.StateMachine,
        job_queues: list[batch.IJobQueue],
        dlqs: list[sqs.IQueue],
        functions: list[lambda_.IFunction],
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "AlarmsKey",
            description="mediaindex: encrypts the alarm topic; CloudWatch alarms may use it to publish",
            enable_key_rotation=True,
            # Nothing stays encrypted under it (SNS keeps no messages), so it goes with the stack.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # What SNS asks of a publisher to an encrypted topic (AWS docs: SNS SSE, "Enable compatibility
        # between event sources from AWS services and encrypted topics").
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(self, "Alarms", enforce_ssl=True, master_key=self.key)
        if alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(alarm_email))
        notify = cw_actions.SnsAction(self.topic)

        # Batch publishes no job metrics; a rule on failed-job events does, through TriggeredRules.
        # Its target queue keeps the failed jobs' events for two weeks (a log-group target would
        # add a custom resource for the log resource policy).
        self.failed_jobs = sqs.Queue(
            self,
            "FailedJobs",
            retention_period=Duration.days(14),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        self.failed_jobs_rule = events.Rule(
            self,
            "BatchJobFailed",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [q.job_queue_arn for q in job_queues]},
            ),
            targets=[targets.SqsQueue(self.failed_jobs)],
        )
        failed_jobs = cw.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions_map={"RuleName": self.failed_jobs_rule.rule_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )

        api_5xx = http_api.metric_server_error(period=Duration.minutes(5), statistic="Sum")
        failed_executions = state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")
        self.alarms = [
            cw.Alarm(
                self,
                "Api5xx",
                metric=api_5xx,
                threshold=5,
                evaluation_periods=1,
                alarm_description="API answered 5xx",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "ExecutionsFailed",
                metric=failed_executions,
                threshold=1,
                evaluation_periods=1,
                alarm_description="A pipeline execution failed (an asset got no features)",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "BatchJobsFailed",
                metric=failed_jobs,
                threshold=1,
                evaluation_periods=1,
                alarm_description="A Batch job failed (retries may still succeed)",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for i, dlq in enumerate(dlqs):
            self.alarms.append(
                cw.Alarm(
                    self,
                    f"DlqDepth{i}",
                    metric=dlq.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(5), statistic="Maximum"
                    ),
                    threshold=1,
                    evaluation_periods=1,
                    alarm_description="Upload events the pipeline could not start",
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=None)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[http_api.metric_count(), api_5xx, http_api.metric_client_error()],
            ),
            cw.GraphWidget(title="API latency", left=[http_api.metric_latency(statistic="p90")]),
            cw.GraphWidget(
                title="Pipeline executions",
                left=[state_machine.metric_started(), state_machine.metric_succeeded(), failed_executions],
            ),
            cw.GraphWidget(title="Failed Batch jobs", left=[failed_jobs]),
        )
        self.dashboard.add_widgets(
            *[
                cw.GraphWidget(
                    title=f"Lambda errors: {f.node.path}", left=[f.metric_errors(), f.metric_throttles()]
                )
                for f in functions
            ],
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms)),
        )
