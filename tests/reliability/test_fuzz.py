"""Property-based fuzzing of every operation in the served OpenAPI document (schemathesis, in-process
ASGI, authenticated): no 5xx, and every response conforms to its documented schema. Bounded:
a few examples per operation. Counts go to test-artifacts/fuzz.json."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mediaindex.bootstrap import Runtime  # noqa: E402
from mediaindex.bootstrap.app import build_app  # noqa: E402
from mediaindex.bootstrap.local import build_local  # noqa: E402
from tests.functional.conftest import make_settings  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def fuzz_target(data_dir: Path) -> Iterator[tuple[Runtime, Any, str, dict[str, str]]]:
    runtime = build_local(make_settings(data_dir))
    app = build_app(runtime)
    _, _, key = runtime.services.keys.create_key("fuzz")
    # Real ids in the store, so some generated requests reach the code behind the 404s.
    idx = runtime.services.indexes.create(
        runtime.services.keys.authenticate(key).tenant_id,
        name="seed",
        description=None,
        default_features=None,
        is_sample=False,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield runtime, schema, idx.id, {"Authorization": f"Bearer {key}"}
    runtime.close()


@pytest.mark.slow
def test_fuzz_every_operation(fuzz_target: tuple[Runtime, Any, str, dict[str, str]]) -> None:
    _, schema, index_id, auth = fuzz_target
    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    per_op: dict[str, int] = {}
    t0 = time.monotonic()
    operations = [op.ok() for op in schema.get_all_operations()]

    def fuzz(op: Any) -> int:
        """Runs one operation's cases; returns how many ran."""
        n = 0

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: a failure is reproducible, not flaky
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(), use_seed=st.booleans())
        def run(case: Any, use_seed: bool) -> None:
            nonlocal n
            n += 1
            if use_seed and "index_id" in (case.path_parameters or {}):
                case.path_parameters["index_id"] = index_id
            try:
                resp = case.call_and_validate(headers=auth, checks=CHECKS)
                statuses[resp.status_code] += 1
            except (Exception, BaseExceptionGroup) as e:  # collect every failure, do not stop at one
                failures.append(f"{op.label}: {type(e).__name__}: {str(e)[:600]}")

        run()
        return n

    for op in operations:
        per_op[op.label] = fuzz(op)
        counts["cases"] += per_op[op.label]
    took = time.monotonic() - t0
    summary = {
        "operations": len(operations),
        "cases": counts["cases"],
        "max_examples_per_operation": MAX_EXAMPLES,
        "seconds": round(took, 1),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "failures": len(failures),
        "failure_samples": sorted(set(failures))[:20],
        "cases_per_operation": per_op,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fuzz.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "cases_per_operation"}, indent=1))
    assert len(operations) >= 25, "the OpenAPI document lost operations"
    assert summary["server_errors"] == 0
    assert failures == [], "\n".join(sorted(set(failures))[:10])
