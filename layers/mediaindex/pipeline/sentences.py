"""Speech segments: a transcript's words grouped into sentences, the unit a transcript hit answers with.

A sentence ends at closing punctuation or at a pause of PAUSE_S; there is no fixed length cut, so a
hit never starts or ends mid-phrase. Pieces too short to mean anything on their own ("Yes.", a lone
"needles" after a long pause) join the neighbour they are closest to in time, and a run-on longer
than MAX_SENTENCE_S is split at its longest pause (a comma's, when there is one)."""

from __future__ import annotations

from dataclasses import dataclass

from mediaindex.domain.transcripts import Transcript, Word

PAUSE_S = 0.7  # silence that ends a sentence even without punctuation
MIN_SENTENCE_S = 1.5
MIN_SENTENCE_WORDS = 4
MAX_SENTENCE_S = 20.0
# Whisper often writes a comma where the speaker ended a sentence ("... or more, with a fixed rate"):
# a piece longer than this is also split at a clause break (a comma's), when it has one.
CLAUSE_SPLIT_S = 8.0
_CLOSERS = "\"')]}\u00bb\u201d\u2019"  # quotes and brackets after the full stop
_ENDINGS = (".", "?", "!", "\u2026", "\u3002", "\uff1f", "\uff01")  # ellipsis, CJK stops


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str


def transcript_words(t: Transcript) -> list[Word]:
    """Every word in time order; a transcript segment without word times counts as one word."""
    out: list[Word] = []
    for seg in t.segments:
        words = [w for w in seg.words if w.word.strip()]
        if words:
            out += words
        elif seg.text.strip():
            out.append(Word(start=seg.start, end=seg.end, word=seg.text.strip()))
    return sorted(out, key=lambda w: (w.start, w.end))


def _ends_sentence(word: str) -> bool:
    return word.rstrip(_CLOSERS).endswith(_ENDINGS)


def _duration(group: list[Word]) -> float:
    return group[-1].end - group[0].start


def _too_short(group: list[Word]) -> bool:
    return _duration(group) < MIN_SENTENCE_S or len(group) < MIN_SENTENCE_WORDS


def _split_at_pauses(words: list[Word]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    cur: list[Word] = []
    for i, w in enumerate(words):
        cur.append(w)
        last = i + 1 == len(words)
        if last or _ends_sentence(w.word) or words[i + 1].start - w.end >= PAUSE_S:
            groups.append(cur)
            cur = []
    return groups


def _merge_fragments(groups: list[list[Word]]) -> list[list[Word]]:
    groups = [g for g in groups if g]
    while len(groups) > 1:
        short = [i for i, g in enumerate(groups) if _too_short(g)]
        shortest = min(short, key=lambda i: _duration(groups[i]), default=None)
        if shortest is None:
            break
        i = shortest
        gap_before = groups[i][0].start - groups[i - 1][-1].end if i > 0 else float("inf")
        gap_after = groups[i + 1][0].start - groups[i][-1].end if i + 1 < len(groups) else float("inf")
        j = i - 1 if gap_before <= gap_after else i + 1
        lo, hi = min(i, j), max(i, j)
        groups[lo : hi + 1] = [groups[lo] + groups[hi]]
    return groups


def _split_long(group: list[Word]) -> list[list[Word]]:
    """Halves a run-on at its best interior break (longest pause, a comma's preferred) until every
    piece fits; a break that would leave a fragment is not taken."""
    if _duration(group) <= CLAUSE_SPLIT_S or len(group) < 2 * MIN_SENTENCE_WORDS:
        return [group]
    clauses_only = _duration(group) <= MAX_SENTENCE_S
    best: tuple[float, int] | None = None
    for i in range(MIN_SENTENCE_WORDS, len(group) - MIN_SENTENCE_WORDS + 1):
        left, right = group[:i], group[i:]
        clause = left[-1].word.rstrip(_CLOSERS).endswith((",", ";", ":"))
        if _too_short(left) or _too_short(right) or (clauses_only and not clause):
            continue
        pause = right[0].start - left[-1].end
        # A comma is worth a quarter second of pause; balance breaks ties towards the middle.
        weight = pause + (0.25 if clause else 0.0)
        weight -= 0.01 * abs(len(left) - len(right)) / len(group)
        if best is None or weight > best[0]:
            best = (weight, i)
    if best is None:
        return [group]
    return _split_long(group[: best[1]]) + _split_long(group[best[1] :])


def sentences(t: Transcript) -> list[Sentence]:
    words = transcript_words(t)
    if not words:
        return []
    groups = _merge_fragments(_split_at_pauses(words))
    out: list[Sentence] = []
    for g in groups:
        for piece in _split_long(g):
            text = " ".join(w.word.strip() for w in piece).strip()
            if text:
                out.append(Sentence(round(piece[0].start, 3), round(piece[-1].end, 3), text))
    return out
