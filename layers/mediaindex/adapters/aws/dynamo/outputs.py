"""OutputRepository on DynamoDB: derivatives and segments live in their asset's partition. Their
items carry no tenant (the stored format predates tenant-scoped calls), so each call checks the
asset item at the head of the partition, with as few reads as the call already needed:

- derivatives: one Query over sk "ASSET".."DERIV$" returns the asset item first, then every
  derivative ("ASSET" < "DERIV#..." < "SEG#..." < "TASK#..."); replacing them uses the same Query
  to find the stale ones;
- segments: a consistent GetItem of the asset, then the Query over "SEG#" (replacing needed that
  GetItem before as well).

Replacing is not one transaction (a set may exceed its 100 items): puts overwrite same-key items
first, then the stale items go, so a re-run converges on one set. Then the asset's derivative
bytes in the usage counters are set to what the partition holds (usage.recount_derivatives), so a
re-run after a crash between the two converges on the right count too."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    AFTER_DERIVS,
    ASSET_SK,
    DERIV_PREFIX,
    SEG_PREFIX,
    asset_not_found,
    asset_pk,
    find_asset,
    is_asset_of,
)
from mediaindex.adapters.aws.dynamo.table import Item, Listing, Table, doc, key, s
from mediaindex.adapters.aws.dynamo.usage import recount_derivatives
from mediaindex.domain.models import Derivative, Page, Segment
from mediaindex.ports.outputs import OutputRepository

Output = TypeVar("Output", Derivative, Segment)


def _derivative_sk(d: Derivative) -> str:
    return f"{DERIV_PREFIX}{d.kind}#{d.index:06d}"


def _segment_sk(seg: Segment) -> str:
    return f"{SEG_PREFIX}{round(seg.start * 1000):012d}#{seg.id}"


def _items(
    asset_id: str, item_type: str, outputs: list[Output], sk_of: Callable[[Output], str]
) -> dict[str, Item]:
    """The items of `outputs` by sort key, each stamped with the asset it belongs to."""
    return {
        sk_of(o): {
            **key(asset_pk(asset_id), sk_of(o)),
            "type": s(item_type),
            "doc": s(o.model_copy(update={"asset_id": asset_id}).model_dump_json()),
        }
        for o in outputs
    }


def _segment_from(item: Item) -> Segment:
    return Segment.model_validate_json(doc(item))


class DynamoOutputRepository(OutputRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def _derivative_items(self, tenant_id: str, asset_id: str) -> list[Item] | None:
        """The asset's derivative items, or None when the asset is not the tenant's (one Query)."""
        items = self._t.partition(asset_pk(asset_id), between=(ASSET_SK, AFTER_DERIVS))
        if not items or not is_asset_of(items[0], tenant_id):
            return None
        return items[1:]

    def _replace(self, fresh: dict[str, Item], stale: list[Item]) -> None:
        """Writes `fresh`, then deletes the `stale` items it did not overwrite."""
        self._t.batch_put(list(fresh.values()))
        self._t.batch_delete([it for it in stale if it[ks.SK]["S"] not in fresh])

    def replace_derivatives(
        self, tenant_id: str, asset_id: str, kinds: list[str], derivatives: list[Derivative]
    ) -> None:
        current = self._derivative_items(tenant_id, asset_id)
        if current is None:
            raise asset_not_found(asset_id)
        wanted = set(kinds)
        of_kinds = [it for it in current if Derivative.model_validate_json(doc(it)).kind in wanted]
        self._replace(_items(asset_id, "derivative", derivatives, _derivative_sk), of_kinds)
        recount_derivatives(self._t, tenant_id, asset_id)

    def list_derivatives(self, tenant_id: str, asset_id: str) -> list[Derivative]:
        items = self._derivative_items(tenant_id, asset_id) or []
        return [Derivative.model_validate_json(doc(it)) for it in items]

    def replace_segments(self, tenant_id: str, asset_id: str, segments: list[Segment]) -> None:
        if find_asset(self._t, tenant_id, asset_id) is None:
            raise asset_not_found(asset_id)
        current = self._t.partition(asset_pk(asset_id), prefix=SEG_PREFIX, keys_only=True)
        self._replace(_items(asset_id, "segment", segments, _segment_sk), current)

    def list_segments(
        self, tenant_id: str, asset_id: str, *, limit: int, cursor: str | None
    ) -> Page[Segment]:
        """In time order (start, then id), the order a player wants, not newest first."""
        if find_asset(self._t, tenant_id, asset_id) is None:
            return Page[Segment](data=[], next_cursor=None)
        return self._t.query_page(
            _segment_from,
            Listing(None, (ks.PK, asset_pk(asset_id))),
            sk_prefix=SEG_PREFIX,
            limit=limit,
            cursor=cursor,
            newest_first=False,
        )
