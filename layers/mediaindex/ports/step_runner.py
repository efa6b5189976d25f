"""What an executor calls to run the pipeline (the local worker pool, the Batch entrypoint, the
pipeline-events Lambda): implemented once, by mediaindex.services.pipeline.PipelineRunner. A task
is always named with its tenant."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mediaindex.domain.models import ErrorInfo


class StepRunner(ABC):
    @abstractmethod
    def run_step(self, tenant_id: str, task_id: str, step_name: str) -> bool:
        """Runs the step unless nothing is left for it to do; returns whether it ran. Raises
        MediaError for bad media (never worth retrying) and anything else for a retry."""

    @abstractmethod
    def fail_step(self, tenant_id: str, task_id: str, step_name: str, error: ErrorInfo) -> None:
        """The step failed for good (after its retries): its features fail."""

    @abstractmethod
    def finish_task(self, tenant_id: str, task_id: str) -> None:
        """Every step of the task has ended."""
