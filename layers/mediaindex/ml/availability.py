"""Which search modalities the configured models can serve, read from settings and the file
system only: no model is loaded and nothing heavy (numpy, torch) is imported, so the API can answer
/v1/capabilities on a cold start."""

from __future__ import annotations

from mediaindex.domain.search import TRANSCRIPTION, VISUAL
from mediaindex.ml.base import ModelLoadError
from mediaindex.settings import Settings


def unavailable_modalities(settings: Settings) -> dict[str, str]:
    """The search modalities the models of these settings cannot embed a query for, each with why
    (`visual` without a CLIP model, `transcription` without a text model). Read from configuration
    and the file system only: nothing is loaded, so asking costs nothing."""
    out: dict[str, str] = {}
    clip = settings.clip_model_path
    if clip is None:
        out[VISUAL] = "no CLIP model is configured (MEDIAINDEX_CLIP_MODEL_PATH)"
    elif not clip.exists():
        out[VISUAL] = f"the CLIP model path {clip} does not exist"
    text = settings.text_model_path
    if text is not None and not text.exists():
        out[TRANSCRIPTION] = f"the text model path {text} does not exist"
    elif text is None:
        from mediaindex.ml.text_encoder import default_model_path as default_text_path

        try:
            default_text_path()
        except ModelLoadError as e:
            out[TRANSCRIPTION] = str(e)
    return out
