"""InferenceModel: load once under a lock, whoever calls first; an injected session is used as is."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaindex.ml.base import InferenceModel, ModelLoadError, l2_normalise, verify_sha256


class CountingModel(InferenceModel[object]):
    def __init__(self, *, session: object | None = None, fail_first: bool = False) -> None:
        super().__init__(Path("/models/counting"), model_id="counting", session=session)
        self.loads = 0
        self.prepares = 0
        self._fail_first = fail_first

    def _load(self) -> object:
        self.loads += 1
        time.sleep(0.05)  # long enough for every other thread to arrive while this one loads
        if self._fail_first and self.loads == 1:
            raise ModelLoadError("first load fails")
        return object()

    def _prepare(self, session: object) -> None:
        self.prepares += 1


def test_many_threads_calling_load_run_the_loader_once() -> None:
    # Given a model nobody has loaded yet and 16 threads released at the same moment
    model = CountingModel()
    n = 16
    barrier = threading.Barrier(n)
    sessions: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            sessions.append(model.load())
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # Then the loader and the prepare hook ran once, and every caller got the same session
    assert errors == []
    assert len(sessions) == n
    assert model.loads == 1 and model.prepares == 1
    assert all(s is sessions[0] for s in sessions)
    assert model.loaded
    # And later calls load nothing more
    assert model.load() is sessions[0] and model.loads == 1


def test_an_injected_session_is_used_without_loading() -> None:
    session = object()
    model = CountingModel(session=session)
    assert model.load() is session
    assert model.loads == 0 and model.prepares == 1


def test_a_failed_load_is_tried_again_on_the_next_call() -> None:
    model = CountingModel(fail_first=True)
    with pytest.raises(ModelLoadError):
        model.load()
    assert not model.loaded
    session = model.load()
    assert model.loads == 2 and model.load() is session


def test_require_file_names_the_missing_model(tmp_path: Path) -> None:
    model = CountingModel()
    model.model_path = tmp_path
    with pytest.raises(ModelLoadError, match=f"no thing at {tmp_path}"):
        model.require_file("config.json", "thing")
    (tmp_path / "config.json").write_text("{}")
    assert model.require_file("config.json", "thing") == tmp_path / "config.json"


def test_verify_sha256_refuses_another_file(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    actual = hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(ModelLoadError, match=f"has sha256 {actual}, expected {'0' * 64}"):
        verify_sha256(f, "0" * 64)
    verify_sha256(f, actual)
    with pytest.raises(ModelLoadError, match="does not exist"):
        verify_sha256(tmp_path / "missing.bin", actual)


def test_l2_normalise_gives_unit_rows_and_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)
