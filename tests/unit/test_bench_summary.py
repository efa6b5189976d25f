"""`make bench` ends with one table: every bench's verdict against its own goals and its headline."""

from __future__ import annotations

from bench.__main__ import _records, headline, table, verdict


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
