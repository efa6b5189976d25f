"""Every error code the HTTP contract names has a plain sentence in the playground, so that no
code reaches a user as a bare identifier (the browser flow is in test_playground.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "layers/mediaindex/api/static/js/messages.js"
GENERATED = "<!-- BEGIN GENERATED"
# Named in the prose in backticks but not errors: values and states.
NOT_ERRORS = {"awaiting_upload", "storyboard_vtt", "asset_url", "asset_file"}


def _documented_codes() -> set[str]:
    doc = (ROOT / "docs/api.md").read_text(encoding="utf-8")
    prose, generated = doc.split(GENERATED, 1)
    named = set(re.findall(r"`([a-z]+(?:_[a-z0-9]+)+)`", prose))
    # Property names (the schema tables) and enum values are not error codes.
    fields = set(re.findall(r"^\| `([a-z_0-9]+)` \|", generated, re.M))
    enum_lines = re.findall(r"^Enum \(string\): (.*)$", generated, re.M)
    enums = {v for line in enum_lines for v in re.findall(r"`([a-z_]+)`", line)}
    return named - fields - enums - NOT_ERRORS


def _sentences() -> dict[str, str]:
    text = MESSAGES.read_text(encoding="utf-8")
    text = text.split("const SENTENCES = {", 1)[1].split("\n};", 1)[0]
    return dict(re.findall(r'^  ([a-z_]+): "([^"]+)",$', text, re.M))


def test_every_documented_error_code_has_a_plain_sentence() -> None:
    codes = _documented_codes()
    sentences = _sentences()
    # The extraction found the codes the contract is known to name.
    assert {"unsupported_media", "media_too_large", "rate_limited", "query_required"} <= codes
    missing = sorted(codes - set(sentences))
    assert missing == [], f"docs/api.md names these codes, js/messages.js has no sentence for them: {missing}"


def test_the_sentences_are_plain_words_not_codes() -> None:
    for code, sentence in _sentences().items():
        assert code not in sentence, (code, sentence)
        assert sentence[0].isupper() and sentence.rstrip()[-1] in ".!:", (code, sentence)
        assert not re.search(r"ffmpeg|stderr|Traceback|HTTP \d", sentence), (code, sentence)
