"""Orchestrator port: runs a task's pipeline somewhere (a local worker pool, Step Functions)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mediaindex.domain.models import Asset, Task


class Orchestrator(ABC):
    @abstractmethod
    def start(self, task: Task, asset: Asset) -> None:
        """Starts the pipeline for the task's features over `asset` (the task's asset, as the caller
        just stored it). Starting the same task twice runs it once."""

    @abstractmethod
    def cancel(self, task: Task) -> None:
        """Stops running work of the task; queued steps never start."""
