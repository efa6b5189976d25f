"""A stored transcript (the `transcript` derivative's JSON) rendered as json, WebVTT, SubRip or text."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError as PydanticValidationError

from mediaindex.domain.errors import MediaindexError, ValidationError
from mediaindex.domain.transcripts import Transcript

Format = Literal["json", "vtt", "srt", "txt"]
FORMATS: tuple[str, ...] = ("json", "vtt", "srt", "txt")
CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}


def _split_ms(seconds: float) -> tuple[int, int, int, int]:
    total_ms = max(0, round(seconds * 1000))
    h, rest = divmod(total_ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return h, m, s, ms


def vtt_timestamp(seconds: float) -> str:
    h, m, s, ms = _split_ms(seconds)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def srt_timestamp(seconds: float) -> str:
    h, m, s, ms = _split_ms(seconds)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _cue_text(text: str) -> str:
    # A blank line ends a cue and "-->" marks timings: neither may appear inside cue text.
    lines = [ln.strip() for ln in text.replace("-->", "->").splitlines() if ln.strip()]
    return "\n".join(lines)


def to_vtt(t: Transcript) -> str:
    out = ["WEBVTT", ""]
    for seg in t.segments:
        text = _cue_text(seg.text).replace("&", "&amp;").replace("<", "&lt;")
        if not text:
            continue
        out += [f"{vtt_timestamp(seg.start)} --> {vtt_timestamp(max(seg.end, seg.start))}", text, ""]
    return "\n".join(out)


def to_srt(t: Transcript) -> str:
    out: list[str] = []
    n = 0
    for seg in t.segments:
        text = _cue_text(seg.text)
        if not text:
            continue
        n += 1
        out += [str(n), f"{srt_timestamp(seg.start)} --> {srt_timestamp(max(seg.end, seg.start))}", text, ""]
    return "\n".join(out)


def to_txt(t: Transcript) -> str:
    return "".join(f"{seg.text.strip()}\n" for seg in t.segments if seg.text.strip())


def parse(raw: bytes | str) -> Transcript:
    try:
        return Transcript.model_validate_json(raw)
    except PydanticValidationError as e:
        raise MediaindexError(f"stored transcript is not readable: {e.error_count()} errors") from e


def render(raw: bytes | str, fmt: str) -> tuple[str, str]:
    """(body, content type) of the stored transcript JSON `raw` in `fmt`."""
    fmt = (fmt or "json").lower()
    if fmt not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}", field="format")
    t = parse(raw)
    if fmt == "json":
        body = t.model_dump_json()
    elif fmt == "vtt":
        body = to_vtt(t)
    elif fmt == "srt":
        body = to_srt(t)
    else:
        body = to_txt(t)
    return body, CONTENT_TYPES[fmt]
