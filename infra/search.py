"""The search index: an OpenSearch domain (context search=domain, the default) or an OpenSearch
Serverless vector collection (search=serverless). Both are reached over HTTPS with SigV4; access is
granted by `allow()` to the roles that need it, nobody else."""

from __future__ import annotations

import json
import re
from typing import Literal, NamedTuple

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from infra import names


class Access(NamedTuple):
    """HTTP methods (es:ESHttp<Method>) on the paths `path` under the domain."""

    actions: list[str]
    path: str = "*"


# Per use (tests/infra/test_iam_from_calls.py records them): reading is GET (aliases, mappings)
# and POST (searches); writing adds POST (_bulk, _delete_by_query, _aliases: a key joining its
# pool) and PUT (new pools and vector fields). Dropping a key is GET (where its alias points), then
# POST for a pooled key (_delete_by_query of its documents in the pool, _aliases to remove its
# alias) or DELETE for a key of a release before pools (it owns its index). A media job only
# removes the documents of an asset deleted while it ran.
SEARCH_AND_DROP = Access(["es:ESHttpGet", "es:ESHttpPost", "es:ESHttpDelete"])
BUILD_AND_WRITE = Access(["es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut"])
DELETE_ASSET_DOCUMENTS = Access(["es:ESHttpPost"], "*/_delete_by_query")
# A drop without search rights (the pipeline-events role, at a re-index's swap): where the key's
# alias points and a legacy key's own index; a pooled key's documents and its alias.
DROP_INDEXES = Access(["es:ESHttpGet", "es:ESHttpDelete"])
CHANGE_ALIASES = Access(["es:ESHttpPost"], "_aliases")
REFRESH_INDEXES = Access(["es:ESHttpPost"], "*/_refresh")  # a re-index's last writes, before its swap
_COLLECTION = "mediaindex"

# Dedicated masters: AWS recommends three for production domains of three or more data nodes (a
# quorum that survives one loss, and cluster management off the data nodes). Below three they would
# cost more than the data nodes they protect. AWS sizes masters by data node count: a large
# general-purpose node (its table names m6g.large; m7g is the current generation) covers up to 10.
_MASTERS = 3
_MASTER_INSTANCE_TYPE = "m7g.large.search"
_MAX_DATA_NODES = 10
_MIN_VOLUME_GB = 10  # the smallest EBS volume OpenSearch Service accepts
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+\.search")


class DomainShape(NamedTuple):
    """The domain's data nodes: instance type, count and gp3 volume per node (GB)."""

    instance_type: str = "r7g.large.search"
    data_nodes: int = 2
    volume_gb: int = 100

    @property
    def zones(self) -> int:
        """Availability zones the data nodes spread over (zone awareness puts as many in each): with
        `auto_expand_replicas: 0-1` every shard's replica lands in another zone than its primary."""
        if self.data_nodes == 1:
            return 1
        return 3 if self.data_nodes % 3 == 0 else 2

    @property
    def masters(self) -> int:
        return _MASTERS if self.data_nodes >= _MASTERS else 0


def _count(key: str, value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"context {key} must be a whole number, not {value!r}")


def domain_shape(
    instance_type: object = None, data_nodes: object = None, volume_gb: object = None
) -> DomainShape:
    """The shape the context values ask for (None keeps the default), refused at synth when
    OpenSearch Service or this stack could not deploy it."""
    default = DomainShape()
    shape = DomainShape(
        str(instance_type) if instance_type is not None else default.instance_type,
        _count(names.CTX_SEARCH_DATA_NODES, data_nodes, default.data_nodes),
        _count(names.CTX_SEARCH_VOLUME_GB, volume_gb, default.volume_gb),
    )
    if not _INSTANCE_TYPE.fullmatch(shape.instance_type):
        raise ValueError(
            f"context {names.CTX_SEARCH_INSTANCE_TYPE} must be an OpenSearch Service instance type "
            f"such as r7g.large.search (family.size.search), not {shape.instance_type!r}"
        )
    n = shape.data_nodes
    if not 1 <= n <= _MAX_DATA_NODES:
        raise ValueError(
            f"context {names.CTX_SEARCH_DATA_NODES} must be 1 to {_MAX_DATA_NODES} (the dedicated "
            f"masters' size covers no more), not {n}"
        )
    if n > 1 and n % 2 and n % 3:
        raise ValueError(
            f"context {names.CTX_SEARCH_DATA_NODES} must be 1 (no zone awareness), even (2 zones) or a "
            f"multiple of 3 (3 zones): zone awareness puts as many data nodes in each zone, not {n}"
        )
    if shape.volume_gb < _MIN_VOLUME_GB:
        raise ValueError(
            f"context {names.CTX_SEARCH_VOLUME_GB} must be at least {_MIN_VOLUME_GB} (GB per data node), "
            f"not {shape.volume_gb}"
        )
    return shape


class Search(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        mode: Literal["domain", "serverless"],
        retain: bool,
        shape: DomainShape = DomainShape(),
    ) -> None:
        super().__init__(scope, id)
        self.mode = mode
        self.shape = shape
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        if mode == "domain":
            log_groups = {
                n: logs.LogGroup(
                    self, n, retention=logs.RetentionDays[names.LOG_RETENTION], removal_policy=removal
                )
                for n in ("SearchSlowLogs", "IndexSlowLogs", "AppLogs")
            }
            # The domain's default log policy is a custom resource; a plain resource policy does the same.
            log_policy = logs.ResourcePolicy(
                self,
                "LogPolicy",
                policy_statements=[
                    iam.PolicyStatement(
                        principals=[iam.ServicePrincipal("es.amazonaws.com")],
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[g.log_group_arn for g in log_groups.values()],
                    )
                ],
            )
            self.domain = opensearch.Domain(
                self,
                "Domain",
                version=opensearch.EngineVersion.OPENSEARCH_2_17,
                # Public endpoint, not in a VPC: AWS picks the zones, so no subnets need to span them.
                capacity=opensearch.CapacityConfig(
                    data_nodes=shape.data_nodes,
                    data_node_instance_type=shape.instance_type,
                    master_nodes=shape.masters or None,
                    master_node_instance_type=_MASTER_INSTANCE_TYPE if shape.masters else None,
                    multi_az_with_standby_enabled=False,
                ),
                zone_awareness=opensearch.ZoneAwarenessConfig(
                    enabled=shape.zones > 1,
                    availability_zone_count=shape.zones if shape.zones > 1 else None,
                ),
                ebs=opensearch.EbsOptions(
                    volume_size=shape.volume_gb, volume_type=ec2.EbsDeviceVolumeType.GP3
                ),
                encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
                node_to_node_encryption=True,
                enforce_https=True,
                tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
                logging=opensearch.LoggingOptions(
                    slow_search_log_enabled=True,
                    slow_search_log_group=log_groups["SearchSlowLogs"],
                    slow_index_log_enabled=True,
                    slow_index_log_group=log_groups["IndexSlowLogs"],
                    app_log_enabled=True,
                    app_log_group=log_groups["AppLogs"],
                ),
                suppress_logs_resource_policy=True,
                removal_policy=removal,
            )
            # OpenSearch checks at creation that it may write to the log groups: the policy comes first.
            self.domain.node.add_dependency(log_policy)
            self.url = f"https://{self.domain.domain_endpoint}"
            self.arn = self.domain.domain_arn
        else:
            encryption = aoss.CfnSecurityPolicy(
                self,
                "Encryption",
                name=f"{_COLLECTION}-enc",
                type="encryption",
                policy=json.dumps(
                    {
                        "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{_COLLECTION}"]}],
                        "AWSOwnedKey": True,
                    }
                ),
            )
            network = aoss.CfnSecurityPolicy(
                self,
                "Network",
                name=f"{_COLLECTION}-net",
                type="network",
                # Public endpoint, but every request must be SigV4-signed by a role the data policy names.
                policy=json.dumps(
                    [
                        {
                            "Rules": [
                                {"ResourceType": "collection", "Resource": [f"collection/{_COLLECTION}"]}
                            ],
                            "AllowFromPublic": True,
                        }
                    ]
                ),
            )
            self.collection = aoss.CfnCollection(self, "Collection", name=_COLLECTION, type="VECTORSEARCH")
            self.collection.add_dependency(encryption)
            self.collection.add_dependency(network)
            self.collection.apply_removal_policy(removal)
            self.url = self.collection.attr_collection_endpoint
            self.arn = self.collection.attr_arn

    def allow(self, grants: list[tuple[iam.IRole, Access]]) -> None:
        """Grants each role its access to the domain's indexes (every request names a path under
        <domain>/), or on Serverless to the collection and its indexes; nobody else gets any."""
        roles = list(dict.fromkeys(role for role, _ in grants))  # a role may get several accesses
        for role, access in grants:
            if self.mode == "domain":
                role.add_to_principal_policy(
                    iam.PolicyStatement(actions=access.actions, resources=[f"{self.arn}/{access.path}"])
                )
            else:
                role.add_to_principal_policy(
                    iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.arn])
                )
        if self.mode == "serverless":
            aoss.CfnAccessPolicy(
                self,
                "DataAccess",
                name=f"{_COLLECTION}-data",
                type="data",
                policy=Stack.of(self).to_json_string(
                    [
                        {
                            "Rules": [
                                {
                                    "ResourceType": "index",
                                    "Resource": [f"index/{_COLLECTION}/*"],
                                    "Permission": [
                                        "aoss:CreateIndex",
                                        "aoss:DescribeIndex",
                                        "aoss:UpdateIndex",
                                        "aoss:DeleteIndex",  # deleting a mediaindex index drops its indexes
                                        "aoss:ReadDocument",
                                        "aoss:WriteDocument",
                                    ],
                                }
                            ],
                            "Principal": [r.role_arn for r in roles],
                        }
                    ]
                ),
            )
