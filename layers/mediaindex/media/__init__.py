"""Media tools: the one ffmpeg/ffprobe runner (`media.ffmpeg`) and what a file is (`media.probe`).

Imports nothing from the pipeline, the models, the services or the API: steps and models use it,
never the other way round."""
