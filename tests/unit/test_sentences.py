"""Speech segmentation rules on hand-made word timings: sentence ends, fragments, run-ons."""

from __future__ import annotations

from mediaindex.domain.transcripts import Transcript, TranscriptSegment, Word
from mediaindex.pipeline.sentences import MAX_SENTENCE_S, MIN_SENTENCE_S, sentences


def spoken(*phrases: tuple[float, str], word_s: float = 0.35) -> Transcript:
    """Each phrase starts at its time; its words follow each other every `word_s` seconds."""
    words: list[Word] = []
    for start, text in phrases:
        t = start
        for w in text.split():
            words.append(Word(start=round(t, 3), end=round(t + word_s * 0.9, 3), word=w))
            t += word_s
    text = " ".join(w.word for w in words)
    seg = TranscriptSegment(id=0, start=words[0].start, end=words[-1].end, text=text, words=words)
    return Transcript(segments=[seg])


def test_sentences_end_at_punctuation_even_without_a_pause() -> None:
    t = spoken((0.0, "The tide comes in twice a day. Boats wait for it in the harbour."))
    assert [s.text for s in sentences(t)] == [
        "The tide comes in twice a day.",
        "Boats wait for it in the harbour.",
    ]


def test_a_long_pause_ends_a_sentence_without_punctuation() -> None:
    t = spoken((0.0, "first we mix the flour and water"), (5.0, "then we let the dough rest overnight"))
    out = sentences(t)
    assert [s.text for s in out] == [
        "first we mix the flour and water",
        "then we let the dough rest overnight",
    ]
    assert out[1].start == 5.0


def test_fragments_join_the_nearest_neighbour_so_none_is_left_alone() -> None:
    # "Yes." alone and a lone "needles" after a pause would be meaningless hits.
    t = spoken(
        (0.0, "Do bees sting more than once?"),
        (2.3, "Yes."),
        (6.0, "A honeybee leaves its sting behind and dies."),
        (9.3, "needles"),
    )
    out = sentences(t)
    assert all(s.end - s.start >= MIN_SENTENCE_S for s in out), out
    assert [s.text for s in out] == [
        "Do bees sting more than once? Yes.",
        "A honeybee leaves its sting behind and dies. needles",
    ]


def test_a_run_on_is_split_at_its_longest_pause_not_at_a_fixed_length() -> None:
    words = " ".join(f"w{i}" for i in range(40))
    t = spoken((0.0, words), word_s=0.6)  # 24 s without punctuation or pauses
    # ... except for one slightly longer breath after w25
    t.segments[0].words = [
        w if i <= 25 else Word(start=w.start + 0.5, end=w.end + 0.5, word=w.word)
        for i, w in enumerate(t.segments[0].words)
    ]
    out = sentences(t)
    assert len(out) == 2 and all(s.end - s.start <= MAX_SENTENCE_S for s in out)
    assert out[0].text.endswith("w25") and out[1].text.startswith("w26")


def test_segments_without_word_times_and_empty_transcripts() -> None:
    t = Transcript(segments=[TranscriptSegment(id=0, start=1.0, end=4.0, text="a whole line of speech here")])
    assert [(s.start, s.end, s.text) for s in sentences(t)] == [(1.0, 4.0, "a whole line of speech here")]
    assert sentences(Transcript(segments=[])) == []


def test_a_long_run_on_with_commas_splits_at_a_clause_not_mid_phrase() -> None:
    # Whisper wrote commas where the speaker ended sentences: 11 s in one piece.
    t = spoken(
        (0.0, "A mortgage is a loan used to buy a house, paid back over many years,"),
        (5.6, "with a fixed rate, your monthly payment stays the same for the whole deal."),
    )
    out = sentences(t)
    assert [s.text for s in out] == [
        "A mortgage is a loan used to buy a house, paid back over many years,",
        "with a fixed rate, your monthly payment stays the same for the whole deal.",
    ]
