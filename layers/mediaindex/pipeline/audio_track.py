"""The asset's first audio stream as 16 kHz mono, the form Whisper reads, kept beside its derived
files (`audio16k.flac`).

Probe makes it while it has the original at hand (it has just read every byte to hash it); the
transcription step (on the GPU image) then downloads these few megabytes instead of the whole
original, and a re-index that transcribes again reads it too. It is an `audio_track` derivative
(not served). FLAC is lossless, so Whisper hears
exactly the samples a WAV would give it, at about half the size. Media probed before the track
was kept has none: transcription then extracts the audio from the original, as it always did."""

from __future__ import annotations

from pathlib import Path

from mediaindex.domain.blob_keys import KeyOwner, derived_key
from mediaindex.domain.errors import MediaError, NotFoundError
from mediaindex.domain.models import Derivative
from mediaindex.media import ffmpeg
from mediaindex.ports.blobs import BlobStore

TRACK_NAME = "audio16k.flac"
TRACK_KIND = "audio_track"
# 16 kHz mono 16-bit: the most a lossless track can take per second (FLAC stays below it).
PCM_BYTES_PER_S = 16_000 * 2


def extract(src: Path, dest: Path, *, timeout_s: float = 1800, max_duration_s: float | None = None) -> bool:
    """Writes the first audio stream of `src` as 16 kHz mono to `dest` (WAV or FLAC, by its suffix).
    False when the file has no audio. `max_duration_s` caps the decode and the output's size:
    MediaError(`media_too_large`) past it; an audio stream that does not decode is MediaError too."""
    codec = "flac" if dest.suffix == ".flac" else "pcm_s16le"
    args = ["-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", codec, str(dest)]
    max_bytes = None
    if max_duration_s is not None:
        max_bytes = int((max_duration_s + ffmpeg.DECODE_MARGIN_S + 1) * PCM_BYTES_PER_S) + 4096
    out = ffmpeg.run_ffmpeg(
        args, timeout_s=timeout_s, check=False, max_duration_s=max_duration_s, max_output_bytes=max_bytes
    )
    if out.returncode != 0:
        if "matches no streams" in out.stderr:
            return False
        raise MediaError(f"cannot decode the audio: {out.stderr.strip()[-300:]}")
    return dest.is_file() and dest.stat().st_size > 44  # a bare header is no audio


def key(owner: KeyOwner) -> str:
    return derived_key(owner, TRACK_NAME)


def store(owner: KeyOwner, blobs: BlobStore, path: Path) -> Derivative:
    info = blobs.put_file(key(owner), path, "audio/flac")
    return Derivative(
        asset_id=owner.id, kind=TRACK_KIND, key=info.key, content_type="audio/flac", size_bytes=info.size
    )


def fetch(owner: KeyOwner, blobs: BlobStore, dest: Path) -> bool:
    """Downloads the kept track to `dest`; False when the asset has none."""
    try:
        blobs.download_file(key(owner), dest)
    except NotFoundError:
        return False
    return True
