"""yafdp: the choreography saga of a food-delivery platform, on an EventBridge-faithful bus.

The catalog in ``data/`` is the single source of truth; from it the package derives the event-flow
graph and a deployment plan that the ``local``, ``moto`` and ``aws`` backends apply.
"""

__version__ = "0.1.0"
