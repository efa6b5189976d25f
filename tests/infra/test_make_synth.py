"""`make synth` runs app.py: it leaves the cloud assembly in ./cdk.out and prints what it made."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]


def test_synth_leaves_cdk_out_and_prints_the_stack_and_its_outputs(tmp_path: Path) -> None:
    # Run from a copy's point of view: the output folder is relative to where it runs.
    env = {k: v for k, v in os.environ.items() if k != "CDK_OUTDIR"}
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{REPO / 'layers'}"
    out = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    template = tmp_path / "cdk.out" / "MediaIndex.template.json"
    assert template.is_file() and template.stat().st_size > 10_000
    assert re.search(r"^stack MediaIndex \(\S+\): \d+ resources$", out.stdout, re.M), out.stdout
    assert "template cdk.out/MediaIndex.template.json" in out.stdout
    # API, upload event, pipeline events, GPU batcher, query encoder, webhook delivery, reconcile
    assert re.search(r"^\s+7\s+AWS::Lambda::Function$", out.stdout, re.M), out.stdout
    assert re.search(r"^  ApiUrl\w*: Base URL of the mediaindex API$", out.stdout, re.M), out.stdout
