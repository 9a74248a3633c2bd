"""Simulated AWS time: latency profiles (``profiles``), the account's quotas (``quotas``), the event bus and Step
Functions as the model sees them (``buses``, ``step_functions``), the timing model the local backend runs on
(``timing``), profiles fitted to a real run (``fitting``), and each order's causal graph recorded from a run
(``recording``) and replayed through the timing model without its handlers (``replay``)."""
