"""Runs of the saga: their options (``options``), workload (``workload``), lifecycle (``lifecycle``) and the
composition root that wires a backend (``bootstrap``).

The names below are imported from their modules when first used, so importing one module of the package (the
command line reads ``options`` to check its arguments) does not import a run's whole stack."""

__all__ = ["RunOptions", "StuckSagasError", "finish", "placing", "resume_saga", "run_saga", "start_saga", "summarize"]


def __getattr__(name: str):
    if name == "RunOptions":
        from yafdp.runs.options import RunOptions

        return RunOptions
    if name in __all__:
        from yafdp.runs import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
