"""Step Functions as the latency model sees it: the quotas' token buckets of a workflow type and how long a Task
takes to start its function. The local Step Functions runner and the replay (:mod:`yafdp.simulation.replay`)
both take them from here."""

from __future__ import annotations

from yafdp.errors import RefusedError
from yafdp.simulation.profiles import Distribution, LatencyProfile
from yafdp.simulation.quotas import Quotas, TokenBucket

WORKFLOWS = ("standard", "express")


class StepFunctionsModel:
    """A workflow type's throttles on an account: ``starts`` (StartExecution) and, for Standard workflows,
    ``transitions`` (every state entered), each a :class:`~yafdp.simulation.quotas.TokenBucket` with the
    quota's refill rate and bucket size ("Step Functions service quotas: Quotas related to API action throttling"
    and "... to state throttling", https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; Express
    workflows are not throttled on state transitions), and ``task_latency``: from the workflow being asked to
    run a Task to the Task's Lambda handler running (the profile's ``step_functions_<workflow>_task``).

    Raises :class:`~yafdp.errors.RefusedError` for an unknown ``workflow``.

    Examples
    --------
    >>> from yafdp.simulation.profiles import load_profile
    >>> from yafdp.simulation.quotas import load_quotas
    >>> model = StepFunctionsModel(load_quotas(), load_profile(), "express")
    >>> model.transitions is None, round(model.task_latency.quantile(0.5) * 1000, 1)
    (True, 77.3)
    """

    def __init__(self, quotas: Quotas, profile: LatencyProfile, workflow: str):
        if workflow not in WORKFLOWS:
            raise RefusedError(f"workflow must be 'standard' or 'express', got {workflow!r}")
        self.workflow = workflow
        self.task_latency: Distribution = profile.hops[f"step_functions_{workflow}_task"]
        self.transitions: TokenBucket | None = None
        if workflow == "standard":
            self.starts = TokenBucket(quotas.step_functions_standard_starts_per_second,
                                      quotas.step_functions_standard_starts_burst)
            self.transitions = TokenBucket(quotas.step_functions_standard_transitions_per_second,
                                           quotas.step_functions_standard_transitions_burst)
        else:
            self.starts = TokenBucket(quotas.step_functions_express_starts_per_second,
                                      quotas.step_functions_express_starts_burst)

    def report(self) -> dict:
        """What the throttles did: starts and transitions throttled, and the transitions' total wait."""
        transitions = self.transitions
        return {"starts_throttled": self.starts.throttled,
                "transitions_throttled": transitions.throttled if transitions else 0,
                "transitions_throttle_delay_s": round(transitions.delay, 3) if transitions else 0.0}
