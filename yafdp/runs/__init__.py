"""Runs of the saga: their options (``options``), workload (``workload``), lifecycle (``lifecycle``) and the
composition root that wires a backend (``bootstrap``)."""

from yafdp.runs.lifecycle import StuckSagasError, finish, placing, resume_saga, run_saga, start_saga, summarize
from yafdp.runs.options import RunOptions

__all__ = ["RunOptions", "StuckSagasError", "finish", "placing", "resume_saga", "run_saga", "start_saga", "summarize"]
