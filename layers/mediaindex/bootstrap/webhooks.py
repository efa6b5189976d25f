"""Webhook wiring for each runtime. Local: the delivery rows in the metadata SQLite file are the
queue, a loop thread sends what is due, the secrets sealed with AES-GCM under a key file in the
data dir. AWS: DynamoDB rows, an SQS queue (consumed by functions/webhook_delivery) and KMS; with
no queue or key configured there are no webhooks (the API answers 503 `webhooks_unavailable`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaindex.services.webhooks import WebhookConfig, Webhooks, WebhookSettings, build_webhooks
from mediaindex.settings import Settings

if TYPE_CHECKING:  # adapters are imported on use: a Lambda loads only its own runtime's
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.local.sqlite.database import Database
    from mediaindex.adapters.local.webhook_loop import DeliveryLoop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalWebhooks:
    webhooks: Webhooks
    loop: DeliveryLoop  # started by the caller when the runtime serves (workers on)


def build_local_webhooks(
    settings: Settings, db: Database, hooks: WebhookSettings | None = None
) -> LocalWebhooks:
    from mediaindex.adapters.local.secret_box import AesGcmSecretBox, load_or_create_key, parse_key
    from mediaindex.adapters.local.sqlite.webhooks import SqliteWebhookRepository
    from mediaindex.adapters.local.webhook_loop import DeliveryLoop, WakeupQueue

    hooks = hooks or WebhookSettings()
    key = (
        parse_key(hooks.secret_key.get_secret_value())
        if hooks.secret_key is not None
        else load_or_create_key(settings.data_dir)
    )
    repo = SqliteWebhookRepository(db)
    queue = WakeupQueue()
    config = WebhookConfig(settings=hooks, allow_private=settings.allow_private_urls)
    webhooks = build_webhooks(repo, AesGcmSecretBox(key), queue, config, due=repo)
    loop = DeliveryLoop(webhooks.deliverer.run_due, queue, poll_interval_s=hooks.poll_interval_s)
    return LocalWebhooks(webhooks, loop)


def build_aws_webhooks(
    settings: Settings, clients: AwsClients | None = None, hooks: WebhookSettings | None = None
) -> Webhooks | None:
    """None when the deployment has no delivery queue or no KMS key configured. `clients`: an
    AwsClients (made from settings when None)."""
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.aws.dynamo.table import Table
    from mediaindex.adapters.aws.dynamo.webhooks import DynamoWebhookRepository
    from mediaindex.adapters.aws.kms_secret_box import KmsSecretBox
    from mediaindex.adapters.aws.webhook_queue import SqsDeliveryQueue

    hooks = hooks or WebhookSettings()
    if not hooks.queue_url or not hooks.kms_key_id:
        log.info("no webhook queue or KMS key configured: webhooks are off")
        return None
    clients = clients or AwsClients(region=settings.aws_region)
    repo = DynamoWebhookRepository(Table(settings.table_name, clients.dynamodb))
    queue = SqsDeliveryQueue(hooks.queue_url, clients.lazy("sqs"))
    box = KmsSecretBox(hooks.kms_key_id, clients.lazy("kms"))
    config = WebhookConfig(settings=hooks, allow_private=settings.allow_private_urls)
    return build_webhooks(repo, box, queue, config)
