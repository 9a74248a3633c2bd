"""Simulated AWS time: latency profiles (``profiles``), the account's quotas (``quotas``), the timing model the
local bus runs on (``timing``), and profiles fitted to a real run (``fitting``)."""
