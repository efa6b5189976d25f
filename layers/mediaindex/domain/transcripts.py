"""A transcript as the pipeline stores it (the `transcript` derivative's JSON: segments with word
times) and as the API serves it: JSON, WebVTT, SubRip or plain text. Plain pydantic: nothing heavy."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None


class TranscriptSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    language: str | None = None
    duration: float | None = None
    model_id: str | None = None
    segments: list[TranscriptSegment] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()
