"""`mediaindex reindex` as a user meets it: a subprocess against a live local server holding an index
of speech the test makes itself; the re-index is started, followed, cancelled and refused, with its
outputs, exit codes and one-line errors (docs/cli.md)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediaindex.cli import main
from tests import mediagen
from tests.functional.test_cli import mi, on_a_terminal
from tests.reliability.conftest import LiveServer

SPEECH = [
    ("ferry.wav", "the ferry leaves the harbour at seven in the morning"),
    ("rain.wav", "heavy rain is expected across the northern mountains tonight"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose index `talks` holds two spoken clips, transcribed with tiny.en (the fast model;
    base is offered too). `missing-model` is offered as an AWS API offers what its ML image carries,
    but cannot be loaded here: a re-index onto it fails."""
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    root = tmp_path_factory.mktemp("cli-reindex-server")
    (root / "logs").mkdir()
    live = LiveServer(
        root / "data",
        root / "logs",
        MEDIAINDEX_WHISPER_MODEL="tiny.en",
        MEDIAINDEX_WHISPER_MODELS_OFFERED='["missing-model"]',
    )
    live.start(create_key="acme")
    with live.client() as api:  # only what a re-index rebuilds: no proxy or preview to wait for
        made = api.post(
            "/v1/indexes", json={"name": "talks", "default_features": ["transcription", "embedding"]}
        )
        assert made.status_code == 201, made.text
    wavs = [str(mediagen.speech_wav(root / name, text, lead_silence_s=0.5)) for name, text in SPEECH]
    ingest = run(live, root, "ingest", *wavs, "--index", "talks", "--wait")
    assert ingest.returncode == 0, ingest.stderr
    yield live
    live.stop()


@pytest.fixture
def idle_server(server: LiveServer) -> Iterator[LiveServer]:
    """The same server and data, restarted without workers: a re-index started now stays running
    until cancelled, whatever the machine's speed."""
    server.stop()
    server.env["MEDIAINDEX_START_WORKERS"] = "false"
    server.start()
    yield server
    server.stop()
    del server.env["MEDIAINDEX_START_WORKERS"]
    server.start()


def run(server: LiveServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return mi(*args, "--url", server.url, cwd=cwd, MEDIAINDEX_API_KEY=server.key or "")


def _generations(server: LiveServer, name: str) -> tuple[int, int]:
    """The generation the index answers from, and the one a re-index started now builds: one never
    used before, so past a cancelled or failed attempt's too (docs/api.md, Re-indexing)."""
    with server.client() as api:
        page = api.get("/v1/indexes", params={"limit": 100}).json()["data"]
    index = next(i for i in page if i["name"] == name)
    tried = index["reindex"]["generation"] if index["reindex"] else 0
    return index["generation"], max(index["generation"], tried) + 1


def _on_a_terminal(server: LiveServer, cwd: Path, *args: str) -> str:
    """What the CLI writes to stderr when stderr is a terminal (stdout a pipe)."""
    return on_a_terminal(server, cwd, *args)[2]


def test_a_reindex_onto_another_model_is_followed_until_it_completes(server: LiveServer, here: Path) -> None:
    _, new = _generations(server, "talks")
    done = run(server, here, "reindex", "talks", "--transcription", "base", "--wait")
    assert done.returncode == 0, done.stderr
    # Progress on stderr, a line per change, from the start to the swap
    progress = done.stderr.splitlines()
    assert progress[0].startswith(f"  generation {new} running: "), progress
    assert progress[-1] == f"  generation {new} completed: 2/2 assets rebuilt, swapped"
    assert done.stdout == (
        f"talks: generation {new} completed: 2/2 assets rebuilt, swapped (transcription base); "
        f"search answers from generation {new}\n"
    )
    # Search answers from the new generation
    found = run(
        server, here, "search", "is heavy rain expected in the mountains", "--index", "talks", "--json"
    )
    hit = json.loads(found.stdout)["data"][0]
    assert hit["asset_name"] == "rain.wav" and hit["generation"] == new
    # --status --json is the index as the API serves it
    status = run(server, here, "reindex", "talks", "--status", "--json")
    index = json.loads(status.stdout)
    assert index["generation"] == new and index["models"] == {"transcription": "base"}
    assert index["reindex"]["state"] == "completed" and index["reindex"]["assets_done"] == 2


def test_a_reindex_whose_rebuild_fails_exits_1_with_why(server: LiveServer, here: Path) -> None:
    g, new = _generations(server, "talks")
    done = run(server, here, "reindex", "talks", "--transcription", "missing-model", "--wait")
    assert done.returncode == 1, done.stderr
    # The first rebuild to fail ends it; how many failed by then depends on the worker's pace.
    failed = re.fullmatch(
        rf"talks: generation {new} failed: 0/2 assets rebuilt, ([12]) failed "
        rf"\(transcription missing-model\); search answers from generation {g}; "
        r"reindex_failed: \1 asset\(s\) could not be rebuilt\n",
        done.stdout,
    )
    assert failed, done.stdout
    assert done.stderr.splitlines()[-1] == (
        f"error: re-index failed: reindex_failed: {failed.group(1)} asset(s) could not be rebuilt"
    )
    assert _generations(server, "talks")[0] == g  # the index answers from its old generation


def test_start_then_cancel_and_a_wait_that_runs_out(idle_server: LiveServer, here: Path) -> None:
    g, new = _generations(idle_server, "talks")
    running = f"talks: generation {new} running: 0/2 assets rebuilt (transcription tiny.en)"
    # Without --transcription: the server's own model
    start = run(idle_server, here, "reindex", "talks")
    assert start.returncode == 0, start.stderr
    assert start.stdout == f"{running}; search answers from generation {g}\n"
    # Nothing runs the rebuild: a wait of 0 s ends with it still running
    waited = run(idle_server, here, "reindex", "talks", "--status", "--wait", "--timeout", "0")
    assert waited.returncode == 1
    assert waited.stderr.splitlines() == [
        f"  generation {new} running: 0/2 assets rebuilt",
        "error: the re-index is still running after 0 s",
    ]
    # On a terminal the progress is one line redrawn in place, ended before the error
    shown = _on_a_terminal(idle_server, here, "reindex", "talks", "--status", "--wait", "--timeout", "0")
    assert shown == (
        f"\r\x1b[Kgeneration {new} running: 0/2 assets rebuilt\r\n"
        "error: the re-index is still running after 0 s\r\n"
    )
    again = run(idle_server, here, "reindex", "talks")
    assert again.returncode == 1
    assert again.stderr.startswith("error: reindex_running: "), again.stderr

    cancel = run(idle_server, here, "reindex", "talks", "--cancel")
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout == (
        f"talks: generation {new} cancelled: 0/2 assets rebuilt (transcription tiny.en); "
        f"search answers from generation {g}; reindex_cancelled: cancelled by request\n"
    )
    # Following a cancelled re-index is a failure that says why
    ended = run(idle_server, here, "reindex", "talks", "--status", "--wait")
    assert ended.returncode == 1
    assert (
        ended.stderr.splitlines()[-1] == "error: re-index cancelled: reindex_cancelled: cancelled by request"
    )
    assert _generations(idle_server, "talks")[0] == g


def test_refusals_are_one_line_errors(server: LiveServer, here: Path) -> None:
    wrong = run(server, here, "reindex", "talks", "--transcription", "large-v9")
    assert wrong.returncode == 1 and wrong.stdout == ""
    [line] = wrong.stderr.splitlines()
    assert line.startswith("error: model_not_available: transcription model 'large-v9' is not available"), (
        line
    )
    assert "'base'" in line and "'tiny.en'" in line and line.endswith("(HTTP 400)")

    nothing = run(server, here, "reindex", "talks", "--cancel")
    assert nothing.returncode == 1
    assert nothing.stderr.startswith("error: reindex_not_running: "), nothing.stderr
    unknown = run(server, here, "reindex", "nowhere", "--status")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: index_not_found: no index named 'nowhere' (HTTP 404)"


def test_flags_that_do_not_go_together_are_exit_2_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No server and no key: each is refused before either is looked for
    usage = {
        ("--cancel", "--transcription", "base"): "error: --transcription goes with starting a re-index",
        ("--status", "--transcription", "base"): "error: --transcription goes with starting a re-index",
        ("--cancel", "--wait"): "error: --wait goes with starting a re-index or --status",
    }
    for flags, said in usage.items():
        assert main(["reindex", "talks", *flags]) == 2, flags
        assert capsys.readouterr().err.startswith(said), flags
    with pytest.raises(SystemExit) as parsed:
        main(["reindex", "talks", "--cancel", "--status"])
    assert parsed.value.code == 2
    assert "argument --status: not allowed with argument --cancel" in capsys.readouterr().err


def test_status_of_an_index_never_reindexed(server: LiveServer, here: Path) -> None:
    with server.client() as api:
        assert api.post("/v1/indexes", json={"name": "fresh"}).status_code == 201
    for flags in ((), ("--wait",)):
        done = run(server, here, "reindex", "fresh", "--status", *flags)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "fresh: no re-index; generation 1 (transcription tiny.en)\n"
