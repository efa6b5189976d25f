"""Every Whisper model a package ships (ml/whisper_models.WHISPER_MODELS), on the same generated speech:
word error rate, real-time factor, load time, size. Each model goes through the product's path
(ModelRegistry from Settings, then Transcriber.transcribe: beam 5, VAD, word times) on CPU.
RTF is wall time over audio time; CPU RTF is the process's CPU time over audio time, which other
work on a shared machine inflates less (on 2 idle cores RTF is about CPU RTF / 2).

The speech: SENTENCES spoken by espeak-ng in each of VOICES, one clip per voice. WER is summed word
edits over summed reference words, after `normalise` (lowercase, no punctuation, small numbers as
words). A multilingual model runs twice: as registered (told "en"), then detecting the language per
file (MEDIAINDEX_WHISPER_LANGUAGE=auto). "first start" is a cold start with an empty cache (parts joined and
hashed, then loaded); "load" is a later start (model.bin hashed against its pin, then loaded). The
default model also runs reading each file in one pass ("one pass"): its WER against the default
path's, which cuts speech into parts transcribed side by side, is the goal (within 1 point).

    .venv/bin/python bench/whisper_models.py [--models tiny.en base] [--voices en-us en-gb]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "layers")]

from mediaindex.ml.registry import ModelRegistry  # noqa: E402
from mediaindex.ml.whisper_models import WHISPER_MODELS  # noqa: E402
from mediaindex.settings import Settings  # noqa: E402

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the old stone bridge.",
    "Our quarterly revenue grew by twelve percent after the new product launch.",
    "The keynote speaker explained how neural networks find faces in photographs.",
    "Please send the final budget to the marketing team before Friday afternoon.",
    "The orchestra rehearsed the second movement of the symphony twice on Tuesday.",
    "Scientists measured the temperature of the ocean at forty two different stations.",
)
# American (and a female variant), British, Scottish, Lancastrian, Caribbean.
VOICES = ("en-us", "en-us+f3", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-029")

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """0..999999 in words ("forty two", "seven hundred"); larger numbers stay digits."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    return str(n)


def normalise(text: str) -> list[str]:
    text = text.lower().replace("%", " percent").replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text)
    return re.sub(r"[^a-z' ]", " ", text).replace("'", "").split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Word-level edit distance (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def speak(dest: Path, voice: str, text: str) -> float:
    """espeak-ng's own WAV (22.05 kHz; faster-whisper resamples it); returns its duration in s."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(dest), text], check=True, timeout=120)
    with wave.open(str(dest)) as w:
        return w.getnframes() / w.getframerate()


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


@dataclass
class Row:
    model: str
    wer: float
    rtf: float
    cpu_rtf: float
    first_start_s: float
    load_s: float
    size_mb: float
    languages: dict[str, str]
    errors_by_voice: dict[str, int]
    errors: int
    words: int


def measure(
    name: str, language: str | None, clips: list[tuple[str, Path, float]], tmp: Path, parts: int | None = None
) -> Row:
    cache = tmp / f"cache-{name}-{language}"

    def start() -> tuple[ModelRegistry, float]:
        settings = Settings(
            data_dir=tmp / "data", whisper_model=name, whisper_language=language, whisper_cache_dir=cache
        )
        t0 = time.perf_counter()
        registry = ModelRegistry(settings)
        registry.transcriber()
        return registry, time.perf_counter() - t0

    _, first = start()
    registry, load = start()
    transcriber = registry.transcriber()
    reference = normalise(" ".join(SENTENCES))
    errors = words = 0
    busy = cpu = audio = 0.0
    languages, errors_by_voice = {}, {}
    for voice, wav, seconds in clips:
        t0, c0 = time.perf_counter(), time.process_time()
        transcript = transcriber.transcribe(wav, parts=parts)
        busy += time.perf_counter() - t0
        cpu += time.process_time() - c0
        audio += seconds
        errors_by_voice[voice] = word_errors(reference, normalise(transcript.text))
        errors += errors_by_voice[voice]
        words += len(reference)
        languages[voice] = transcript.language or "?"
    return Row(
        model=name + (f" ({language})" if language else "") + (" (one pass)" if parts == 1 else ""),
        wer=round(errors / words, 4),
        rtf=round(busy / audio, 4),
        cpu_rtf=round(cpu / audio, 4),
        first_start_s=round(first, 2),
        load_s=round(load, 2),
        size_mb=round(dir_size(transcriber.model_path) / 1e6, 1),
        languages=languages,
        errors_by_voice=errors_by_voice,
        errors=errors,
        words=words,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=list(WHISPER_MODELS))
    ap.add_argument("--voices", nargs="+", default=list(VOICES))
    args = ap.parse_args()
    load_before = os.getloadavg()
    default = Settings().whisper_model
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        # A short pause between sentences, as between a speaker's sentences.
        text = " ... ".join(SENTENCES)
        clips = [(v, tmp / f"{v}.wav", speak(tmp / f"{v}.wav", v, text)) for v in args.voices]
        for name in args.models:
            rows.append(measure(name, None, clips, tmp))
            if name == default:
                # What cutting speech into parts (ml/speech_parts.py) costs in accuracy: the same
                # model reading each file in one pass, as faster-whisper alone does.
                rows.append(measure(name, None, clips, tmp, parts=1))
            if WHISPER_MODELS[name].multilingual:
                rows.append(measure(name, "auto", clips, tmp))
    load_after = os.getloadavg()
    audio_s = round(sum(s for *_, s in clips), 1)
    print(f"{len(args.voices)} voices x {len(SENTENCES)} sentences, {audio_s} s of speech, CPU int8")
    head = ("model", "WER", "RTF", "CPU RTF", "first start s", "load s", "size MB")
    widths = [max(len(h) + 2, 8) for h in head[1:]]
    first = max(len(r.model) for r in rows) + 2
    print(
        f"{head[0]:<{first}}"
        + "".join(f"{h:>{w}}" for h, w in zip(head[1:], widths, strict=True))
        + "  languages"
    )
    for r in rows:
        cells = (r.wer, r.rtf, r.cpu_rtf, r.first_start_s, r.load_s, r.size_mb)
        row = "".join(f"{c:>{w}.3f}" for w, c in zip(widths, cells, strict=True))
        print(f"{r.model:<{first}}{row}  {','.join(sorted(set(r.languages.values())))}")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}; cores: {os.cpu_count()}")
    by_name = {r.model: r for r in rows}
    one_pass = by_name.get(f"{default} (one pass)")
    # Parts may change a word here and there (each 30 s window starts elsewhere), not the error rate.
    goals = (
        {"parts_within_1_point_of_one_pass": by_name[default].wer <= one_pass.wer + 0.01} if one_pass else {}
    )
    print(
        json.dumps(
            {
                "bench": "whisper_models",
                "voices": args.voices,
                "audio_s": audio_s,
                "rows": [r.__dict__ for r in rows],
                "goals": goals,
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
