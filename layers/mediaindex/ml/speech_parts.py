"""Where to cut a file's speech so that Whisper can transcribe the parts side by side.

Whisper decodes one 30 s window after another, on one core when several workers share the
machine. A minute of speech cut into parts of about equal speech, each transcribed by its own
CTranslate2 replica, finishes in about 1/parts of the time. The speech is what Silero VAD kept
(faster-whisper's chunks, in samples at 16 kHz); a cut goes into a pause between two chunks when
one lies near the balanced point, else into the middle of the longest pause near it inside a
chunk (between sentences, where there is one), so that no word is cut in two."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
# Whisper encodes 30 s windows (base: 0.8 CPU-s each, about half of a window's cost): speech that
# fits one window is read in one, and cutting it would add a window's encoding for little gain.
MIN_PART_S = 15.0
# How far from the balanced point a cut may move: to a pause between chunks, or inside a chunk
# to a gap between words. Below MIN_PART_S / 2, so that the cuts stay in order.
SEARCH_S = 5.0
# A gap between words lasts about this long.
QUIET_WINDOW_S = 0.1
QUIET_HOP_S = 0.01
# Speech is this much louder than the gaps between its words (espeak's are silent, a room's ~20 dB).
PAUSE_DB = 15.0

Chunk = dict[str, int]  # {"start": sample, "end": sample}, as faster-whisper's VAD gives them


def speech_samples(chunks: list[Chunk]) -> int:
    return sum(c["end"] - c["start"] for c in chunks)


def part_count(chunks: list[Chunk], most: int) -> int:
    """How many parts the speech is worth: at most `most`, each with MIN_PART_S of speech or more."""
    return max(1, min(most, int(speech_samples(chunks) / (MIN_PART_S * SAMPLE_RATE))))


def split_speech(audio: np.ndarray, chunks: list[Chunk], parts: int) -> list[list[Chunk]]:
    """`chunks` in `parts` groups of about equal speech, in order; a chunk a cut falls in is split
    in two there. Transcribing each group's chunks and joining the segments in order gives the
    whole file's transcript."""
    if parts <= 1 or not chunks:
        return [chunks]
    total = speech_samples(chunks)
    cuts = sorted({_cut(audio, chunks, total * k // parts, total // parts) for k in range(1, parts)})
    groups: list[list[Chunk]] = [[] for _ in range(len(cuts) + 1)]
    for chunk in chunks:
        start = chunk["start"]
        for end in [*(c for c in cuts if chunk["start"] < c < chunk["end"]), chunk["end"]]:
            groups[sum(c <= start for c in cuts)].append({"start": start, "end": end})
            start = end
    return [g for g in groups if g]


def _cut(audio: np.ndarray, chunks: list[Chunk], offset: int, part: int) -> int:
    """The sample where a cut `offset` samples into the speech goes: the end of the chunk before
    the nearest pause when that is within SEARCH_S (or a quarter of a part) of it, else the
    longest pause within SEARCH_S of it inside the chunk it falls in (pause_near)."""
    reach = max(int(SEARCH_S * SAMPLE_RATE), part // 4)
    done = 0
    pauses: list[tuple[int, int]] = []  # (speech before the pause, sample where it starts)
    inside: tuple[Chunk, int] | None = None
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if inside is None and done + length > offset:
            inside = (chunk, chunk["start"] + offset - done)
        done += length
        pauses.append((done, chunk["end"]))
    near = min(pauses[:-1], key=lambda p: abs(p[0] - offset), default=None)
    if near is not None and abs(near[0] - offset) <= reach:
        return near[1]
    assert inside is not None  # offset < total speech
    chunk, at = inside
    lo = max(chunk["start"], at - int(SEARCH_S * SAMPLE_RATE))
    hi = min(chunk["end"], at + int(SEARCH_S * SAMPLE_RATE))
    return pause_near(audio, lo, hi, at)


def pause_near(audio: np.ndarray, lo: int, hi: int, at: int) -> int:
    """The middle of the longest pause in audio[lo:hi], the one nearest `at` among pauses about as
    long. A pause is a run of QUIET_WINDOW_S stretches each at least PAUSE_DB quieter than the
    span's median: a gap between words, longer between sentences, where a cut costs Whisper
    least. Its middle, not its edge, so that both parts start and end in silence: a cut at the
    edge clipped the next word's onset (espeak's "Sand the area" heard as "Send the area").
    Without a pause, the quietest stretch; the middle of the span when it is shorter than a window."""
    window = int(QUIET_WINDOW_S * SAMPLE_RATE)
    if hi - lo <= window:
        return (lo + hi) // 2
    energy = np.concatenate(([0.0], np.cumsum(np.square(audio[lo:hi], dtype=np.float64))))
    hop = int(QUIET_HOP_S * SAMPLE_RATE)
    starts = np.arange(0, hi - lo - window + 1, hop)
    level = energy[starts + window] - energy[starts]
    quiet = np.flatnonzero(level <= np.median(level) * 10 ** (-PAUSE_DB / 10))
    if quiet.size == 0:
        return int(lo + starts[int(np.argmin(level))] + window // 2)
    # Runs of consecutive quiet stretches: each from its first stretch's start to its last's end.
    breaks = np.flatnonzero(np.diff(quiet) > 1)
    first, last = quiet[np.r_[0, breaks + 1]], quiet[np.r_[breaks, quiet.size - 1]]
    begin, end = lo + starts[first], lo + starts[last] + window
    length, middle = end - begin, (begin + end) // 2
    about_longest = np.flatnonzero(length >= length.max() - window)
    return int(middle[about_longest[np.argmin(np.abs(middle[about_longest] - at))]])
