"""What the commands print: an upload's progress line, sizes, times, and hits as a table cut to
the terminal's width."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def progress(label: str) -> Callable[[int, int], None]:
    """An upload's progress: a live bar on a terminal, one line when done elsewhere."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            frac = done / total if total else 1.0
            filled = int(frac * 30)
            sys.stderr.write(f"\r{label[:30]:30} [{'#' * filled}{'.' * (30 - filled)}] {frac * 100:5.1f}%")
            if done >= total:
                sys.stderr.write("\n")
        elif done >= total:
            sys.stderr.write(f"uploaded {label} ({size(total)})\n")
        sys.stderr.flush()

    return show


def page_limit(text: str) -> int:
    """How many rows a listing asks for: 1 to 100, as the API allows (an argparse type)."""
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("between 1 and 100")
    return value


def size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def clip(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 3)] + "..." if width > 3 else text[:width]


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def hits_table(hits: list[dict[str, Any]], *, width: int) -> list[str]:
    """Search hits as aligned lines: asset name, time range, score, text cut to `width`."""
    names = [h.get("asset_name") or h["asset_id"] for h in hits]
    times = [f"{clock(h['start'])}-{clock(h['end'])}" for h in hits]
    name_w = min(max([5, *map(len, names)]), 32)
    time_w = max([4, *map(len, times)])
    lines = [f"{'asset':{name_w}}  {'time':{time_w}}  {'score':>5}  text"]
    for name, span, h in zip(names, times, hits, strict=True):
        head = f"{clip(name, name_w):{name_w}}  {span:{time_w}}  {h['score']:5.3f}  "
        text = " ".join((h.get("text") or "").split())
        lines.append(head + clip(text, width - len(head)))
    return lines


def table(headers: list[str], rows: list[list[str]], *, width: int, max_cell: int = 40) -> list[str]:
    """Rows as aligned columns (each at most `max_cell` wide); the last column is cut to what is
    left of `width`, but keeps 20 characters however narrow the terminal."""
    widths = [min(max([len(h), *(len(r[i]) for r in rows)]), max_cell) for i, h in enumerate(headers[:-1])]
    lines = []
    for cells in [headers, *rows]:
        head = "".join(f"{clip(c, w):{w}}  " for c, w in zip(cells, widths, strict=False))
        lines.append((head + clip(cells[-1], max(width - len(head), 20))).rstrip())
    return lines


def when(stamp: str | None) -> str:
    """An API time (RFC 3339) in UTC to the second; '-' for none."""
    if not stamp:
        return "-"
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
