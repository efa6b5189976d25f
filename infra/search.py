"""The search index: an OpenSearch domain (context search=domain, the default) or an OpenSearch
Serverless vector collection (search=serverless). Both are reached over HTTPS with SigV4; access is
granted by `allow()` to the roles that need it, nobody else."""

from __future__ import annotations

import json
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


# Per use (tests/infra/test_iam_from_calls.py records them): reading is HEAD/GET (aliases,
# mappings) and POST (searches); writing adds POST (_bulk, _delete_by_query) and PUT (new indexes
# and vector fields); dropping a mediaindex index is DELETE. A media job only removes the documents
# of an asset deleted while it ran.
SEARCH_AND_DROP = Access(["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpDelete"])
BUILD_AND_WRITE = Access(["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"])
DELETE_ASSET_DOCUMENTS = Access(["es:ESHttpPost"], "*/_delete_by_query")
DROP_INDEXES = Access(["es:ESHttpGet", "es:ESHttpDelete"])  # find an alias's indexes, drop them
_COLLECTION = "mediaindex"


class Search(Construct):
    def __init__(
        self, scope: Construct, id: str, *, mode: Literal["domain", "serverless"], retain: bool
    ) -> None:
        super().__init__(scope, id)
        self.mode = mode
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
                capacity=opensearch.CapacityConfig(
                    data_nodes=1,
                    data_node_instance_type="t3.small.search",
                    multi_az_with_standby_enabled=False,
                ),
                ebs=opensearch.EbsOptions(volume_size=20, volume_type=ec2.EbsDeviceVolumeType.GP3),
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
        roles = [role for role, _ in grants]
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
