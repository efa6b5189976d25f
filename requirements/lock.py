"""Regenerates the hashed lock of each deployable artifact from its pyproject extra (`make lock`).

    requirements/layer.txt    the Lambda layer         base + [layer]
    requirements/media.txt    the CPU media image      base + [media]
    requirements/ml.txt       the GPU Batch image      base + [ml]
    requirements/encoder.txt  the encoder Lambda image base + [encoder]

Each is `pip-compile --generate-hashes` output. torch is kept out of every lock: the images install
it first from the CPU or CUDA index (tests from the CPU wheel on disk), and its hashes differ per
build; everything else, torch's own dependencies included, is pinned with hashes and installed with
`pip install --require-hashes --no-deps -r requirements/<artifact>.txt`.

The layer is installed for Lambda's platform (manylinux2014_aarch64, cp311), not the machine that
resolves it: after compiling, every pin of its lock is checked to have such a wheel among its hashes
(`pip download` of exactly those files for that platform).

Usage: python requirements/lock.py [artifact ...] [--upgrade]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ("layer", "media", "ml", "encoder")
# Installed before the lock, never from it (see above).
OUTSIDE_THE_LOCK = ("torch",)
LAMBDA_PLATFORM = "manylinux2014_aarch64"

_NOTE = (
    "# torch is not in this lock: install torch=={version} first (CPU or CUDA build),\n"
    "# then this file with --require-hashes --no-deps (containers/README.md).\n"
)


def lock_path(artifact: str) -> Path:
    return ROOT / "requirements" / f"{artifact}.txt"


def compile_lock(artifact: str, *, upgrade: bool) -> None:
    out = lock_path(artifact).relative_to(ROOT)
    cmd = [
        sys.executable, "-m", "piptools", "compile",
        "--quiet", "--generate-hashes", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
        *[arg for pkg in OUTSIDE_THE_LOCK for arg in ("--unsafe-package", pkg)],
        "--extra", artifact, "--output-file", str(out), "pyproject.toml",
    ]  # fmt: skip
    if upgrade:
        cmd.append("--upgrade")
    subprocess.run(cmd, cwd=ROOT, check=True)
    tidy(lock_path(artifact))


def tidy(path: Path) -> None:
    """Replaces pip-compile's warning about the unpinned torch with what to do about it."""
    text = path.read_text()
    warning = re.search(r"\n# WARNING: The following packages were not pinned.*?(?=\n[^#]|\Z)", text, re.S)
    if warning is None:
        return
    unpinned = {line[2:].strip() for line in warning.group(0).splitlines()[4:]}
    if unpinned - set(OUTSIDE_THE_LOCK):
        raise SystemExit(f"{path.name}: unpinned {sorted(unpinned)}; only {OUTSIDE_THE_LOCK} may be")
    text = text.replace(warning.group(0), "").rstrip("\n")
    path.write_text(text + "\n\n" + _NOTE.format(version=torch_pin()))


def torch_pin() -> str:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {req.split("==", 1)[1] for reqs in extras.values() for req in reqs if req.startswith("torch==")}
    if len(pins) != 1:
        raise SystemExit(f"pyproject.toml pins torch to {sorted(pins)}: expected one version")
    return pins.pop()


def check_lambda_platform(lock: Path) -> None:
    """Every pin has a wheel for Lambda's platform among the lock's hashes (pip downloads exactly those)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps",
                "--only-binary=:all:", "--platform", LAMBDA_PLATFORM, "--implementation", "cp",
                "--python-version", "3.11", "--dest", tmp, "-r", str(lock),
            ],
            check=True,
        )  # fmt: skip
        wheels = sorted(p.name for p in Path(tmp).glob("*.whl"))
    pins = [line.split("==")[0] for line in lock.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    if len(wheels) != len(pins):
        raise SystemExit(f"{lock.name}: {len(pins)} pins but {len(wheels)} wheels for {LAMBDA_PLATFORM}")
    print(f"{lock.name}: all {len(pins)} pins have a wheel for {LAMBDA_PLATFORM} (or a pure-Python one)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("artifacts", nargs="*", help=f"some of {', '.join(ARTIFACTS)} (default: all)")
    parser.add_argument("--upgrade", action="store_true", help="take the newest versions the extras allow")
    args = parser.parse_args(argv)
    artifacts = args.artifacts or list(ARTIFACTS)
    unknown = sorted(set(artifacts) - set(ARTIFACTS))
    if unknown:
        parser.error(f"unknown artifacts {unknown}: choose from {', '.join(ARTIFACTS)}")
    for artifact in artifacts:
        print(f"locking {artifact} -> {lock_path(artifact).relative_to(ROOT)}", flush=True)
        compile_lock(artifact, upgrade=args.upgrade)
    if "layer" in artifacts:
        check_lambda_platform(lock_path("layer"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
