"""mediaindex: self-hosted media indexing. One core, two runtimes (local embedded and AWS)."""

__version__ = "0.1.0"
