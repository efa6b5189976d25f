"""The tests make their media with the same generator as `mediaindex demo`."""

from mediaindex.samples import (
    FFMPEG,
    have_tools,
    image,
    scene_video,
    silent_video,
    speech_wav,
    talking_video,
    tone_audio,
    truncated,
)

__all__ = [
    "FFMPEG",
    "have_tools",
    "image",
    "scene_video",
    "silent_video",
    "speech_wav",
    "talking_video",
    "tone_audio",
    "truncated",
]
