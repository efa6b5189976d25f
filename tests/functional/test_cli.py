"""The `mediaindex` CLI as a user meets it: a subprocess against a live local server (or none), its
exit codes and its one-line errors, never a traceback (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from mediaindex.cli import build_parser
from tests import mediagen
from tests.reliability.conftest import LiveServer, free_port

_CLEARED = ("MEDIAINDEX_URL", "MEDIAINDEX_API_KEY", "MEDIAINDEX_DATA_DIR", "MEDIAINDEX_CLIENT_TIMEOUT_S")


def cli_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its MEDIAINDEX_* connection settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mediaindex.cli", *args]


def mi(*args: str, cwd: Path, timeout_s: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI in `cwd` (so its default data dir is there, not the checkout's)."""
    done = subprocess.run(
        cli_command(*args), cwd=cwd, env=cli_env(**env), capture_output=True, text=True, timeout=timeout_s
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("cli-server")
    (root / "logs").mkdir()
    live = LiveServer(root / "data", root / "logs")
    live.start(create_key="acme")
    yield live
    live.stop()


def _api(server: LiveServer) -> httpx.Client:
    return server.client()


def _asset_names(server: LiveServer, index_name: str) -> list[str]:
    with _api(server) as api:
        index = next(
            i for i in api.get("/v1/indexes", params={"limit": 100}).json()["data"] if i["name"] == index_name
        )
        return sorted(
            a["name"] for a in api.get("/v1/assets", params={"index_id": index["id"]}).json()["data"]
        )


def test_version_comes_from_the_package_and_every_option_says_what_it_does(here: Path) -> None:
    done = mi("--version", cwd=here)
    assert done.returncode == 0
    assert done.stdout.strip() == f"mediaindex {version('mediaindex')}"

    undocumented = []
    parsers = [("mediaindex", build_parser())]
    while parsers:
        name, parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for sub_name, sub in action.choices.items():
                    if not helps.get(sub_name):
                        undocumented.append(f"{name} {sub_name}")
                    parsers.append((f"{name} {sub_name}", sub))
            elif not action.help:
                undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert undocumented == []


def test_a_refused_connection_is_one_line_and_exit_4(here: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    (here / "clip.mp4").write_bytes(b"x")
    runs = [
        mi("search", "fox", "--index", "clips", "--url", url, "--api-key", "k", cwd=here),
        # MEDIAINDEX_URL is honoured without a flag
        mi("ingest", str(here), "--index", "clips", cwd=here, MEDIAINDEX_URL=url, MEDIAINDEX_API_KEY="k"),
        mi("status", "--url", url, cwd=here),
    ]
    for done in runs:
        assert done.returncode == 4, (done.args, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
        assert f"127.0.0.1:{port}" in done.stderr


def test_a_server_that_never_answers_times_out_with_exit_4(here: Path) -> None:
    # A socket that accepts connections (the kernel's backlog) and never answers a request
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = mi(
            "search",
            "fox",
            "--index",
            "x",
            "--url",
            url,
            "--api-key",
            "k",
            cwd=here,
            MEDIAINDEX_CLIENT_TIMEOUT_S="1",
        )
        assert done.returncode == 4, done.stderr
        assert done.stderr.strip() == f"error: timed out talking to {url}"
        assert time.monotonic() - started < 30
    bad = mi("search", "fox", "--index", "x", "--api-key", "k", cwd=here, MEDIAINDEX_CLIENT_TIMEOUT_S="soon")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: MEDIAINDEX_CLIENT_TIMEOUT_S must be a number of seconds"


def test_a_server_that_is_not_mediaindex_is_named_in_one_line(here: Path) -> None:
    # Given a web server that answers every path with an HTML error page
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>\n<body>\n<h1>Not Found</h1>\n" + b"x" * 5000 + b"\n</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        search = mi("search", "x", "--index", "a", "--url", url, "--api-key", "k", cwd=here)
        status = mi("status", "--url", url, cwd=here)
    finally:
        web.shutdown()
    assert search.returncode == 1
    [line] = search.stderr.splitlines()
    assert line.startswith("error: http_error: <html> <body> <h1>Not Found</h1> xxx") and line.endswith(
        "(HTTP 404)"
    )
    assert len(line) < 260
    assert status.returncode == 4
    assert status.stderr.startswith(f"error: no mediaindex server at {url}: ")


def test_a_setting_the_server_would_refuse_is_a_usage_error(here: Path) -> None:
    done = mi("status", cwd=here, MEDIAINDEX_PORT="eighty")
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid setting MEDIAINDEX_PORT: "), done.stderr


def test_a_missing_or_refused_key_is_exit_3(server: LiveServer, here: Path) -> None:
    missing = mi("search", "fox", "--index", "x", "--url", server.url, cwd=here)
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: an API key is needed: --api-key or MEDIAINDEX_API_KEY")
    wrong = mi("search", "fox", "--index", "x", "--url", server.url, cwd=here, MEDIAINDEX_API_KEY="mi_wrong")
    assert wrong.returncode == 3
    assert wrong.stderr.startswith("error: unauthorized: "), wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


def test_the_default_url_is_the_one_the_data_dirs_server_wrote(server: LiveServer, here: Path) -> None:
    # Given the server's data dir and no --url: the CLI finds its port in the lock file
    done = mi("--data-dir", str(server.data_dir), "status", cwd=here)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["url"] == server.url
    # MEDIAINDEX_URL wins over the lock file
    dead = f"http://127.0.0.1:{free_port()}"
    done = mi("--data-dir", str(server.data_dir), "status", cwd=here, MEDIAINDEX_URL=dead)
    assert done.returncode == 4
    assert dead in done.stderr


def test_ingest_recurses_folders_and_reports_each_failure_with_its_reason(
    server: LiveServer, here: Path
) -> None:
    # Given a folder tree: an image, a text file named .mp4, an empty file, a non-media file
    folder = here / "media"
    (folder / "sub" / "deeper").mkdir(parents=True)
    mediagen.image(folder / "card.png", size="160x90")
    (folder / "sub" / "notes.mp4").write_text("these are notes, not a video\n")
    (folder / "sub" / "deeper" / "empty.mp4").write_bytes(b"")
    (folder / "readme.txt").write_text("not media")
    # When it is ingested with --wait, with an unreadable file and a missing one beside it
    paths = [str(folder), "/proc/self/mem", "missing.mp4"]
    done = mi(
        "ingest", *paths, "--index", "tree", "--wait", "--url", server.url,
        cwd=here, MEDIAINDEX_API_KEY=server.key or "",
    )  # fmt: skip
    # Then it exits 1, naming each failure and its reason
    assert done.returncode == 1, done.stderr
    rows = {line.split()[1]: line.split(maxsplit=3)[2:] for line in done.stdout.splitlines()}
    assert rows[str(folder / "card.png")] == ["ready"]
    notes = rows[str(folder / "sub" / "notes.mp4")]
    assert notes[0] == "failed" and notes[1].startswith("unsupported_media: "), notes
    err = done.stderr.splitlines()
    assert f"error: {folder / 'sub' / 'deeper' / 'empty.mp4'}: the file is empty" in err
    assert "error: /proc/self/mem: cannot read it: Input/output error" in err
    assert "error: missing.mp4: no such file or folder" in err
    assert err[-1] == "4 of 5 failed to ingest"
    # And it showed per-feature progress on the way (one line per change when not on a terminal)
    assert any(re.search(r"card\.png  processing  proxy=\w+ preview=\w+", line) for line in err), err
    # And only the media files that could be read were uploaded (readme.txt is not media)
    assert _asset_names(server, "tree") == ["card.png", "notes.mp4"]


def on_a_terminal(server: LiveServer, cwd: Path, *args: str) -> tuple[int, str, str]:
    """Runs the CLI against `server` with stderr on a terminal and stdout a pipe: its exit code,
    stdout, and what the terminal showed."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(
        cli_command(*args, "--url", server.url),
        cwd=cwd, env=cli_env(MEDIAINDEX_API_KEY=server.key or "", COLUMNS="200"),
        stderr=follower, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out, seen.decode()


def test_on_a_terminal_wait_keeps_one_live_line(server: LiveServer, here: Path) -> None:
    image = mediagen.image(here / "live.png", size="64x64")
    code, out, shown = on_a_terminal(server, here, "ingest", str(image), "--index", "live", "--wait")
    assert code == 0, shown
    assert "Traceback" not in shown
    # The upload bar and the live line are redrawn in place; the settled asset gets a line of its own
    assert "live.png                       [##############################] 100.0%" in shown
    assert re.search(r"\r\x1b\[K\[0/1 settled\] \S+live\.png  processing  proxy=", shown), shown
    assert re.search(r"\r\x1b\[K  \S+live\.png  ready  proxy=completed", shown), shown
    assert out.split()[1:] == [str(image), "ready"]


def test_include_picks_what_a_folder_gives(server: LiveServer, here: Path) -> None:
    folder = here / "mixed"
    folder.mkdir()
    mediagen.image(folder / "a.png", size="64x64")
    mediagen.image(folder / "b.jpg", size="64x64")
    done = mi(
        "ingest", str(folder), "--include", "*.PNG", "--index", "globbed", "--url", server.url,
        cwd=here, MEDIAINDEX_API_KEY=server.key or "",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == [str(folder / "a.png")]
    assert _asset_names(server, "globbed") == ["a.png"]
    none = mi(
        "ingest", str(folder), "--include", "*.mkv", "--index", "globbed", "--url", server.url,
        cwd=here, MEDIAINDEX_API_KEY=server.key or "",
    )  # fmt: skip
    assert none.returncode == 1
    assert none.stderr.splitlines()[0] == f"error: {folder}: no files in this folder match --include"


def test_search_prints_names_times_and_text_within_the_width(server: LiveServer, here: Path) -> None:
    clip = mediagen.talking_video(
        here / "fox.mp4", "the quick brown fox jumps over the lazy dog", size="160x90"
    )
    key = server.key or ""
    ingest = mi(
        "ingest",
        str(clip),
        "--index",
        "talk",
        "--wait",
        "--url",
        server.url,
        cwd=here,
        MEDIAINDEX_API_KEY=key,
    )
    assert ingest.returncode == 0, ingest.stderr
    # By name, on a 40-column terminal
    done = mi(
        "search",
        "brown fox",
        "--index",
        "talk",
        "--url",
        server.url,
        cwd=here,
        MEDIAINDEX_API_KEY=key,
        COLUMNS="40",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["asset", "time", "score", "text"]
    assert re.match(r"fox\.mp4  \d\d:\d\d-\d\d:\d\d  [01]\.\d{3}  \S", lines[1]), lines
    assert all(len(line) <= 40 for line in lines), lines
    # By id, as JSON with the asset's name
    with _api(server) as api:
        index_id = next(i["id"] for i in api.get("/v1/indexes").json()["data"] if i["name"] == "talk")
    as_json = mi(
        "search", "brown fox", "--index", index_id, "--json", "--limit", "1", "--url", server.url,
        cwd=here, MEDIAINDEX_API_KEY=key,
    )  # fmt: skip
    hits = json.loads(as_json.stdout)["data"]
    assert len(hits) == 1 and hits[0]["asset_name"] == "fox.mp4"
    assert "brown fox" in hits[0]["text"].lower()


def test_search_errors_name_the_servers_code(server: LiveServer, here: Path) -> None:
    key = server.key or ""
    unknown = mi("search", "x", "--index", "nowhere", "--url", server.url, cwd=here, MEDIAINDEX_API_KEY=key)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: index_not_found: no index named 'nowhere' (HTTP 404)"
    unknown_id = mi(
        "search", "x", "--index", "idx_nothing", "--url", server.url, cwd=here, MEDIAINDEX_API_KEY=key
    )
    assert unknown_id.returncode == 1 and "index_not_found" in unknown_id.stderr
    usage = mi("search", "x", "--index", "a", "--limit", "500", cwd=here)
    assert usage.returncode == 2 and "between 1 and 100" in usage.stderr


def test_demo_with_a_url_it_cannot_vouch_for_needs_a_key_or_a_server(server: LiveServer, here: Path) -> None:
    # A URL whose server holds no data dir here: the demo cannot make a key for it
    done = mi("demo", "--url", server.url, cwd=here)
    assert done.returncode == 3
    assert (
        done.stderr.strip()
        == f"error: an API key for {server.url} is needed: --api-key or MEDIAINDEX_API_KEY"
    )
    dead = f"http://127.0.0.1:{free_port()}"
    gone = mi("demo", "--url", dead, "--api-key", "k", cwd=here, timeout_s=60)
    assert gone.returncode == 4
    assert gone.stderr.strip() == f"error: the server at {dead} did not answer /v1/health"


def test_ctrl_c_while_waiting_is_exit_130(server: LiveServer, here: Path) -> None:
    clip = mediagen.talking_video(here / "long.mp4", "a clip that takes a while to index", size="160x90")
    proc = subprocess.Popen(
        cli_command("ingest", str(clip), "--index", "interrupted", "--wait", "--url", server.url),
        cwd=here, env=cli_env(MEDIAINDEX_API_KEY=server.key or ""),
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:  # the upload is done: it is waiting now
        seen += line
        if line.startswith("uploaded "):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + rest
    assert "Traceback" not in rest and rest.strip().splitlines()[-1] == "interrupted"


def test_ingest_wait_reports_an_asset_deleted_meanwhile_and_one_still_processing(
    server: LiveServer, here: Path
) -> None:
    clip = mediagen.talking_video(
        here / "doomed.mp4", "this clip is deleted while it is indexed", size="160x90"
    )
    proc = subprocess.Popen(
        cli_command("ingest", str(clip), "--index", "doomed", "--wait", "--url", server.url),
        cwd=here, env=cli_env(MEDIAINDEX_API_KEY=server.key or ""),
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("uploaded "):
            break
    with _api(server) as api:
        index = next(
            i for i in api.get("/v1/indexes", params={"limit": 100}).json()["data"] if i["name"] == "doomed"
        )
        [asset] = api.get("/v1/assets", params={"index_id": index["id"]}).json()["data"]
        assert api.delete(f"/v1/assets/{asset['id']}").status_code == 204
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert out.strip() == f"{asset['id']}  {clip}  failed  asset_not_found: deleted while processing"
    # A wait that ends before the pipeline does says so, and fails
    done = mi(
        "ingest", str(clip), "--index", "doomed", "--wait", "--timeout", "0", "--url", server.url,
        cwd=here, MEDIAINDEX_API_KEY=server.key or "",
    )  # fmt: skip
    assert done.returncode == 1
    assert re.fullmatch(
        rf"ast_\w+  {re.escape(str(clip))}  processing  still processing after 0 s\n", done.stdout
    )


def test_search_on_an_empty_index_and_a_reader_that_goes_away(server: LiveServer, here: Path) -> None:
    with _api(server) as api:
        assert api.post("/v1/indexes", json={"name": "piped"}).status_code == 201
    empty = mi(
        "search", "x", "--index", "piped", "--url", server.url, cwd=here, MEDIAINDEX_API_KEY=server.key or ""
    )
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == "no results for 'x' in index 'piped'"
    # `mediaindex search ... --json | head -c0`: the pipe is closed before anything is written
    proc = subprocess.Popen(
        cli_command("search", "x", "--index", "piped", "--json", "--url", server.url),
        cwd=here, env=cli_env(MEDIAINDEX_API_KEY=server.key or ""),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, err
    assert err == ""
