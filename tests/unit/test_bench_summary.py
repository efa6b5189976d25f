"""`make bench` ends with one table: every bench's verdict against its own goals and its headline."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import NEEDS, _records, headline, main, table, verdict


def test_verdicts_follow_each_bench_s_own_goals() -> None:
    assert verdict({"goals": {"recall": True, "p50": True}}) == "pass"
    assert verdict({"goals": {"recall": True, "p50": False, "memory": False}}) == "FAIL (2)"
    assert verdict({"passed": 7, "failed": 0}) == "pass"
    assert verdict({"passed": 7, "failed": 3}) == "FAIL (3)"
    assert verdict({"pass": False}) == "FAIL"
    assert verdict({"p50_ms": 3.2}) == "-"


def test_records_and_headline_and_table() -> None:
    out = 'noise\n{"bench": "search", "p50_ms": 3.25, "recall": 0.99, "ok": true, "n": 5, "x": 1}\n[1]\n'
    [record] = _records(out)
    assert headline(record) == "p50_ms=3.25, recall=0.99, n=5"
    text = table([("search", verdict(record), "0.5, 0.4, 0.3", headline(record))])
    lines = text.splitlines()
    assert lines[0].split() == ["bench", "goals", "load", "headline"]
    assert lines[1].startswith("search") and "p50_ms=3.25" in lines[1]


def test_a_bench_needing_what_the_machine_lacks_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(NEEDS, "gpu_bench", (lambda: False, "needs a CUDA GPU (nvidia-smi)"))
    assert main(["gpu_bench"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"bench": "gpu_bench", "skipped": "needs a CUDA GPU (nvidia-smi)"}
    assert out.err.splitlines()[-1].split(None, 2) == [
        "gpu_bench",
        "skipped",
        "needs a CUDA GPU (nvidia-smi)",
    ]
