"""The models and the two ML steps, with real ffmpeg, real Whisper tiny.en and MiniLM, and a tiny
random-weight CLIP built here and loaded through the real loading code (plumbing, never meaning)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediaindex.domain import transcript_formats
from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, derived_key, original_key
from mediaindex.domain.errors import NotFoundError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, Feature, FeatureStatus, MediaFacts, MediaType, UploadInfo
from mediaindex.domain.transcripts import Transcript
from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.registry import ModelRegistry
from mediaindex.ml.transcriber import TINY_EN_MODEL_SHA256, Transcriber, default_model_path
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.steps import embedding, transcription
from mediaindex.ports.blobs import BlobInfo, BlobStore, SignedRequest
from mediaindex.settings import Settings
from tests import mediagen

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng"),
]

SPOKEN = "the quick brown fox jumps over the lazy dog"
TENANT = "ten_test"


class MemoryBlobs(BlobStore):
    """Just enough of a blob store for steps: bytes in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put_bytes(self, key: str, data: bytes, content_type: str) -> BlobInfo:
        self.objects[key] = (data, content_type)
        return BlobInfo(key=key, size=len(data), etag=str(hash(data)), content_type=content_type)

    def put_file(self, key: str, path: Path, content_type: str) -> BlobInfo:
        return self.put_bytes(key, path.read_bytes(), content_type)

    def get_bytes(self, key: str) -> bytes:
        if key not in self.objects:
            raise NotFoundError(key)
        return self.objects[key][0]

    def download_file(self, key: str, dest: Path) -> None:
        dest.write_bytes(self.get_bytes(key))

    def head(self, key: str) -> BlobInfo | None:
        if key not in self.objects:
            return None
        data, ctype = self.objects[key]
        return BlobInfo(key=key, size=len(data), etag=str(hash(data)), content_type=ctype)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for k in keys:
            del self.objects[k]
        return len(keys)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def presign_put(self, key: str, content_type: str, expires_s: int) -> SignedRequest:
        raise NotImplementedError

    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest:
        raise NotImplementedError

    def create_multipart(self, key: str, content_type: str) -> str:
        raise NotImplementedError

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_s: int) -> SignedRequest:
        raise NotImplementedError

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> BlobInfo:
        raise NotImplementedError

    def abort_multipart(self, key: str, upload_id: str) -> None:
        raise NotImplementedError


# ---- a tiny CLIP with random weights, saved the way a real one is ------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: every byte maps to one printable character.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def build_tiny_clip(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    # A character-level BPE (no merges): every word tokenises, which is all the plumbing needs.
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (out / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    bos, eos = len(tokens) - 2, len(tokens) - 1
    text = {"vocab_size": len(tokens), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": bos, "eos_token_id": eos,
            "pad_token_id": eos}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "crop_size": 32})
    )
    return out


# ---- fixtures: models and media made once per module ------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    return {
        "talking": mediagen.talking_video(d / "talking.mp4", SPOKEN, size="320x240", lead_silence_s=1.0),
        "scenes": mediagen.scene_video(d / "scenes.mp4", ["red", "green", "blue"], seconds_each=2.0),
        "silent": mediagen.silent_video(d / "silent.mp4", seconds=2.0),
        "image": mediagen.image(d / "photo.png", size="200x120"),
    }


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, clip_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), clip_model_path=clip_dir)


@pytest.fixture(scope="module")
def models(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings)


@pytest.fixture(scope="module")
def models_without_clip(settings: Settings, models: ModelRegistry) -> ModelRegistry:
    # Shares the loaded Whisper and MiniLM; only CLIP is absent.
    return ModelRegistry(
        settings, transcriber=models.transcriber(), text_encoder=models.text_encoder(), clip=None
    )


def make_ctx(
    tmp_path: Path,
    src: Path,
    media_type: MediaType,
    models: ModelRegistry,
    settings: Settings,
    *,
    blobs: MemoryBlobs | None = None,
    asset_id: str | None = None,
    facts: MediaFacts | None = None,
) -> StepContext:
    blobs = blobs or MemoryBlobs()
    asset_id = asset_id or new_id("ast")
    key = original_key(TENANT, asset_id, src.suffix.lstrip("."), LAYOUT_TENANT_FIRST)
    blobs.put_file(key, src, "application/octet-stream")
    asset = Asset(
        id=asset_id, tenant_id=TENANT, index_id="idx_test", name=src.name, media_type=media_type,
        upload=UploadInfo(key=key), user_metadata={"team": "blue"}, facts=facts,
    )  # fmt: skip
    workdir = tmp_path / f"work-{asset_id}"
    workdir.mkdir()
    return StepContext(asset=asset, blobs=blobs, workdir=workdir, settings=settings, models=models)


@pytest.fixture(scope="module")
def transcription_run(
    tmp_path_factory: pytest.TempPathFactory,
    media: dict[str, Path],
    models: ModelRegistry,
    settings: Settings,
) -> tuple[StepContext, StepResult]:
    """The talking video through the transcription step once; later tests reuse what it stored."""
    ctx = make_ctx(tmp_path_factory.mktemp("tr"), media["talking"], MediaType.VIDEO, models, settings)
    return ctx, transcription.run(ctx)


@pytest.fixture(scope="module")
def transcribed(transcription_run: tuple[StepContext, StepResult]) -> tuple[StepContext, Transcript]:
    ctx, _ = transcription_run
    key = derived_key(ctx.asset, "transcript.json")
    return ctx, Transcript.model_validate_json(ctx.blobs.get_bytes(key))


# ---- transcription ---------------------------------------------------------------------------------


def test_transcription_step_hears_the_words_at_the_right_time(
    transcribed: tuple[StepContext, Transcript],
) -> None:
    # Given a video whose speech starts after 1 s of silence, transcribed by the step
    _, transcript = transcribed
    # Then the stored transcript has the spoken words, in English
    text = re.sub(r"[^a-z ]", "", transcript.text.lower())
    # (a small Whisper hears espeak's last word as "nog" sometimes: the distinctive words must be there)
    assert {"quick", "brown", "fox", "lazy"} <= set(text.split()), text
    assert transcript.language == "en"
    assert transcript.model_id == "faster-whisper/base"  # the default model (settings.whisper_model)
    # And the first word starts within half a second of 1.0 s
    first = transcript.segments[0].words[0]
    assert abs(first.start - 1.0) <= 0.5, first
    assert all(w.end >= w.start for s in transcript.segments for w in s.words)


def test_transcription_step_returns_a_transcript_derivative(
    transcription_run: tuple[StepContext, StepResult],
) -> None:
    # Given the talking video run through the step
    ctx, result = transcription_run
    # Then it settles no state itself (so the feature ends completed)
    assert result.feature_states == {}
    # And one JSON transcript derivative replaces any earlier one
    assert result.replaced_kinds == ["transcript"]
    [d] = result.derivatives
    assert (d.kind, d.content_type, d.key) == (
        "transcript",
        "application/json",
        derived_key(ctx.asset, "transcript.json"),
    )
    assert d.size_bytes == len(ctx.blobs.get_bytes(d.key))


def test_transcription_of_a_video_without_audio_is_na(
    tmp_path: Path, media: dict[str, Path], models_without_clip: ModelRegistry, settings: Settings
) -> None:
    # Given a video with no audio stream and no probe facts to say so
    ctx = make_ctx(tmp_path, media["silent"], MediaType.VIDEO, models_without_clip, settings)
    # When transcription runs
    result = transcription.run(ctx)
    # Then it ends `na` with a reason, storing nothing
    state = result.feature_states[Feature.TRANSCRIPTION]
    assert state.state == FeatureStatus.NA
    assert state.reason and "audio" in state.reason
    assert result.derivatives == []


def test_transcription_of_an_image_is_na(
    tmp_path: Path, media: dict[str, Path], models_without_clip: ModelRegistry, settings: Settings
) -> None:
    ctx = make_ctx(tmp_path, media["image"], MediaType.IMAGE, models_without_clip, settings)
    assert transcription.run(ctx).feature_states[Feature.TRANSCRIPTION].state == FeatureStatus.NA


def test_whisper_model_with_another_hash_is_refused() -> None:
    # Given the packaged model and a pin that does not match it
    wrong = Transcriber(default_model_path(), model_id="x", expected_sha256="0" * 64)
    # When it loads, Then it refuses, naming both hashes
    with pytest.raises(ModelLoadError, match=TINY_EN_MODEL_SHA256):
        wrong.load()


# ---- transcript formats ----------------------------------------------------------------------------

VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"
SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"


def test_stored_transcript_renders_as_valid_vtt_srt_and_text(
    transcribed: tuple[StepContext, Transcript],
) -> None:
    ctx, transcript = transcribed
    raw = ctx.blobs.get_bytes(derived_key(ctx.asset, "transcript.json"))
    n = len(transcript.segments)

    vtt, vtt_type = transcript_formats.render(raw, "vtt")
    assert vtt_type.startswith("text/vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert len(re.findall(rf"^{VTT_TIME} --> {VTT_TIME}$", vtt, flags=re.M)) == n

    srt, _ = transcript_formats.render(raw, "srt")
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == n
    for i, block in enumerate(blocks, start=1):
        num, times, text = block.split("\n", 2)
        assert num == str(i)
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", times)
        assert text.strip()

    txt, _ = transcript_formats.render(raw, "txt")
    assert "fox" in txt.lower()
    as_json, ctype = transcript_formats.render(raw, "json")
    assert ctype == "application/json"
    assert Transcript.model_validate_json(as_json) == transcript


def test_transcript_rendering_imports_no_model_runtime() -> None:
    # The API Lambda renders transcripts and carries neither faster-whisper nor torch.
    code = (
        "import sys, mediaindex.domain.transcript_formats;"
        "heavy = ('faster_whisper', 'torch', 'ctranslate2', 'transformers');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_transcript_timestamps_and_escaping() -> None:
    t = Transcript.model_validate(
        {
            "language": "en",
            "segments": [{"id": 0, "start": 3661.5, "end": 3662.0004, "text": "a <b> & c --> d"}],
        }
    )
    assert transcript_formats.to_vtt(t) == "WEBVTT\n\n01:01:01.500 --> 01:01:02.000\na &lt;b> &amp; c -> d\n"
    assert transcript_formats.to_srt(t) == "1\n01:01:01,500 --> 01:01:02,000\na <b> & c -> d\n"
    assert transcript_formats.srt_timestamp(59.9996) == "00:01:00,000"
    with pytest.raises(ValidationError):
        transcript_formats.render(t.model_dump_json(), "docx")


# ---- text encoder ----------------------------------------------------------------------------------


def test_text_encoder_is_384d_normalised_and_meaningful(models: ModelRegistry) -> None:
    enc = models.text_encoder()
    vecs = enc.encode(["a dog runs in the park", "a puppy running on grass", "quarterly tax filing"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert enc.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2]) + 0.2
    assert enc.model_id == "sentence-transformers/all-MiniLM-L6-v2"


# ---- CLIP ------------------------------------------------------------------------------------------


def test_tiny_clip_loads_from_a_saved_directory(
    models: ModelRegistry, clip_dir: Path, media: dict[str, Path], tmp_path: Path
) -> None:
    # Given a CLIP saved with save_pretrained and configured in settings
    clip = models.clip()
    assert clip is not None
    # When images and texts are encoded
    red = mediagen.image(tmp_path / "red.png", size="64x48", color="red")
    imgs = clip.encode_images([media["image"], red])
    texts = clip.encode_text(["a photo of a dog", "red"])
    # Then both towers give unit vectors of the projection size
    assert imgs.shape == (2, 16) and texts.shape == (2, 16) and clip.dim == 16
    np.testing.assert_allclose(np.linalg.norm(imgs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(imgs[0], imgs[1])
    # And the model id names the directory and changes with its contents
    assert clip.model_id.startswith("clip:tiny-clip-")
    assert ClipEncoder(clip_dir).model_id == clip.model_id
    other = build_tiny_clip(tmp_path / "tiny-clip", seed=1)
    (other / "config.json").write_text((other / "config.json").read_text().replace("16", "8"))
    assert ClipEncoder(other).model_id != clip.model_id


def test_no_clip_configured_means_none(settings: Settings, tmp_path: Path) -> None:
    assert ModelRegistry(settings.model_copy(update={"clip_model_path": None})).clip() is None
    with pytest.raises(ModelLoadError):
        ModelRegistry(settings.model_copy(update={"clip_model_path": tmp_path})).clip()


# ---- embedding -------------------------------------------------------------------------------------


def test_embedding_cuts_a_scene_video_into_shots_with_keyframes_and_visual_vectors(
    tmp_path: Path, media: dict[str, Path], models: ModelRegistry, settings: Settings
) -> None:
    # Given three 2 s shots of solid colour and a configured CLIP
    ctx = make_ctx(tmp_path, media["scenes"], MediaType.VIDEO, models, settings)
    # When embedding runs
    result = embedding.run(ctx)
    # Then it completes its visual part and says there was no speech to embed
    state = result.feature_states[Feature.EMBEDDING]
    assert state.state == FeatureStatus.COMPLETED and state.parts is not None
    assert {m: (p.state, p.reason) for m, p in state.parts.items()} == {
        "visual": (FeatureStatus.COMPLETED, None),
        "transcription": (FeatureStatus.NA, "no speech to embed"),
    }
    # And there is one segment per shot, cut near 2 s and 4 s
    segs = result.segments or []
    assert [s.kind for s in segs] == ["shot"] * 3
    assert [round(s.start) for s in segs] == [0, 2, 4]
    assert segs[-1].end == pytest.approx(6.0, abs=0.1)
    # And each has a stored JPEG keyframe
    assert [d.kind for d in result.derivatives] == ["keyframe"] * 3
    for s in segs:
        assert s.keyframe_key and ctx.blobs.get_bytes(s.keyframe_key)[:2] == b"\xff\xd8"
    # And a visual vector carrying the model id, normalised
    clip = models.clip()
    assert clip is not None
    docs = result.search_docs or []
    assert [d.segment_id for d in docs] == [s.id for s in segs]
    for d in docs:
        model_id, vec = d.vectors["visual"]
        assert model_id == clip.model_id and len(vec) == clip.dim
        assert abs(np.linalg.norm(vec) - 1.0) < 1e-5
        assert (d.tenant_id, d.index_id, d.media_type, d.user_metadata) == (
            TENANT,
            "idx_test",
            "video",
            {"team": "blue"},
        )


def test_embedding_without_clip_or_transcript_is_na(
    tmp_path: Path, media: dict[str, Path], models_without_clip: ModelRegistry, settings: Settings
) -> None:
    ctx = make_ctx(tmp_path, media["scenes"], MediaType.VIDEO, models_without_clip, settings)
    result = embedding.run(ctx)
    state = result.feature_states[Feature.EMBEDDING]
    assert (state.state, state.reason) == (FeatureStatus.NA, "no CLIP model configured")
    assert result.search_docs == []


def test_embedding_of_a_talking_video_makes_speech_segments_from_the_transcript(
    tmp_path: Path, transcribed: tuple[StepContext, Transcript], models_without_clip: ModelRegistry
) -> None:
    # Given the talking video whose transcript is stored, and no CLIP
    done, _ = transcribed
    ctx = StepContext(
        asset=done.asset,
        blobs=done.blobs,
        workdir=tmp_path,
        settings=done.settings,
        models=models_without_clip,
    )
    # When embedding runs
    result = embedding.run(ctx)
    # Then it completes on text alone, and says the visual part is not there and why
    state = result.feature_states[Feature.EMBEDDING]
    assert (state.state, state.reason) == (FeatureStatus.COMPLETED, "visual: no CLIP model configured")
    assert state.parts is not None and state.parts["visual"].state == FeatureStatus.NA
    assert state.parts["transcription"].state == FeatureStatus.COMPLETED
    segs = result.segments or []
    speech = [s for s in segs if s.kind == "speech"]
    assert speech
    assert "fox" in " ".join(s.text or "" for s in speech).lower()
    assert abs(speech[0].start - 1.0) <= 0.5
    # And every doc with text carries a 384-d transcription vector and no visual one
    docs = {d.segment_id: d for d in result.search_docs or []}
    for s in speech:
        model_id, vec = docs[s.id].vectors["transcription"]
        assert model_id == "sentence-transformers/all-MiniLM-L6-v2" and len(vec) == 384
        assert "visual" not in docs[s.id].vectors
        assert s.keyframe_key is not None
    # And the shots carry no text (speech is indexed once, by sentence) and, without CLIP, no doc
    shots = [s for s in segs if s.kind != "speech"]
    assert shots and all(s.text is None and s.id not in docs for s in shots)


def test_embedding_of_an_image_is_one_segment(
    tmp_path: Path, media: dict[str, Path], models: ModelRegistry, settings: Settings
) -> None:
    ctx = make_ctx(tmp_path, media["image"], MediaType.IMAGE, models, settings)
    result = embedding.run(ctx)
    [seg] = result.segments or []
    assert (seg.kind, seg.start, seg.end) == ("image", 0.0, 0.0)
    [doc] = result.search_docs or []
    assert set(doc.vectors) == {"visual"} and doc.media_type == "image"


# ---- the 16 kHz track probe keeps for transcription -------------------------------------------------


def _probe(ctx: StepContext, features: frozenset[Feature]) -> None:
    from mediaindex.pipeline.steps import probe as probe_step

    ctx.task_features = features
    result = probe_step.run(ctx)
    for name, value in result.asset_updates.items():
        setattr(ctx.asset, name, value)


def test_transcription_reads_the_track_probe_kept_not_the_original(
    tmp_path: Path,
    media: dict[str, Path],
    models: ModelRegistry,
    settings: Settings,
    transcribed: tuple[StepContext, Transcript],
) -> None:
    from mediaindex.pipeline import audio_track

    # Given a talking video probed for a task that transcribes
    ctx = make_ctx(tmp_path, media["talking"], MediaType.VIDEO, models, settings)
    _probe(ctx, frozenset({Feature.TRANSCRIPTION, Feature.EMBEDDING}))
    track = ctx.blobs.head(audio_track.key(ctx.asset))
    assert track is not None and track.size < media["talking"].stat().st_size
    kept = tmp_path / "kept.flac"
    ctx.blobs.download_file(track.key, kept)
    facts = probe_facts(kept)
    assert (facts["codec_name"], facts["sample_rate"], facts["channels"]) == ("flac", "16000", 1)
    # When the original is gone before transcription runs
    assert ctx.asset.upload is not None
    ctx.blobs.delete(ctx.asset.upload.key)
    ctx.workdir = tmp_path / "transcribe"
    ctx.workdir.mkdir()
    transcription.run(ctx)
    # Then it transcribed the kept track: the same words, at the same times, as from the original
    heard = Transcript.model_validate_json(ctx.blobs.get_bytes(derived_key(ctx.asset, "transcript.json")))
    _, from_original = transcribed
    assert heard.text == from_original.text
    assert [w.start for s in heard.segments for w in s.words] == [
        w.start for s in from_original.segments for w in s.words
    ]


def test_a_rerun_probe_keeps_the_stored_track_without_decoding_again(
    tmp_path: Path,
    media: dict[str, Path],
    models: ModelRegistry,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mediaindex.pipeline import audio_track

    ctx = make_ctx(tmp_path, media["talking"], MediaType.VIDEO, models, settings)
    _probe(ctx, frozenset({Feature.TRANSCRIPTION}))
    kept = ctx.blobs.head(audio_track.key(ctx.asset))
    assert kept is not None
    extracts: list[object] = []
    monkeypatch.setattr(audio_track, "extract", lambda *a, **k: extracts.append(a) or True)
    _probe(ctx, frozenset({Feature.TRANSCRIPTION}))
    assert extracts == [] and ctx.blobs.head(audio_track.key(ctx.asset)) == kept


def test_a_file_that_fails_probes_checks_leaves_no_track_behind(
    tmp_path: Path, media: dict[str, Path], models: ModelRegistry, settings: Settings
) -> None:
    from mediaindex.domain.errors import MediaError
    from mediaindex.pipeline import audio_track

    # Given a talking video cut short (its tail does not decode), probed for a task that transcribes
    cut = mediagen.truncated(media["talking"], tmp_path / "cut.mp4", keep_fraction=0.5)
    ctx = make_ctx(tmp_path, cut, MediaType.VIDEO, models, settings)
    # When probe runs (the track is decoded while the tail is checked)
    with pytest.raises(MediaError) as refused:
        _probe(ctx, frozenset({Feature.TRANSCRIPTION}))
    # Then the file is refused, and nothing was stored for it
    assert refused.value.code == "media_corrupt"
    assert ctx.blobs.head(audio_track.key(ctx.asset)) is None


def test_probe_keeps_no_track_for_a_task_that_does_not_transcribe(
    tmp_path: Path, media: dict[str, Path], models: ModelRegistry, settings: Settings
) -> None:
    from mediaindex.pipeline import audio_track

    ctx = make_ctx(tmp_path, media["talking"], MediaType.VIDEO, models, settings)
    _probe(ctx, frozenset({Feature.PROXY, Feature.PREVIEW}))
    assert ctx.blobs.head(audio_track.key(ctx.asset)) is None
    silent = make_ctx(tmp_path, media["silent"], MediaType.VIDEO, models, settings)
    _probe(silent, frozenset({Feature.TRANSCRIPTION}))
    assert silent.blobs.head(audio_track.key(silent.asset)) is None


def test_audio_that_does_not_decode_fails_transcription_not_probe(
    tmp_path: Path,
    media: dict[str, Path],
    models: ModelRegistry,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mediaindex.domain.errors import MediaError
    from mediaindex.pipeline import audio_track

    ctx = make_ctx(tmp_path, media["talking"], MediaType.VIDEO, models, settings)

    def broken(*args: object, **kwargs: object) -> bool:
        raise MediaError("cannot decode the audio: corrupt frame")

    monkeypatch.setattr(audio_track, "extract", broken)
    _probe(ctx, frozenset({Feature.TRANSCRIPTION}))  # no exception: the asset is still usable
    assert ctx.blobs.head(audio_track.key(ctx.asset)) is None
    with pytest.raises(MediaError):
        transcription.run(ctx)


def probe_facts(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], check=True, capture_output=True
    )
    stream: dict[str, object] = json.loads(out.stdout)["streams"][0]
    return stream
