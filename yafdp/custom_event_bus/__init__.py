"""EventBridge's Custom Event Bus (API ``EventBridgeV2``), emulated: one implementation of its buses, subscribers,
ordering per event group, deduplication at publish, retention and starting positions, retries and on-failure
records, driven by a local run on its virtual clock or served on AWS's wire protocol.

AWS's user guide now tells new applications to start with this bus; the rules-and-targets bus is "Custom Event
Bus - Classic" (UG "Custom Event Bus", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus.html).
Every behaviour cites its page; where AWS is silent, :class:`~yafdp.custom_event_bus.choices.Choices` says what
this emulator does.

Examples
--------
>>> from yafdp.custom_event_bus import CustomEventBusService, ManualClock
>>> service = CustomEventBusService(ManualClock(1_767_225_600.0))
>>> bus = service.create_event_bus(Name="orders")
>>> bus["State"]
'CREATING'
>>> service.clock.advance(); service.describe_event_bus(EventBusArn=bus["EventBusArn"])["State"]
'ACTIVE'
"""

import importlib

__all__ = ["ApiError", "Choices", "Clock", "CustomEventBusService", "ManualClock", "OPERATIONS", "RealTimeClock"]


# Where each name above is defined.
_MODULES = {"Choices": "choices", "Clock": "clock", "ManualClock": "clock", "RealTimeClock": "clock", "ApiError": "errors",
            "OPERATIONS": "service", "CustomEventBusService": "service"}


def __getattr__(name: str):
    """The names above, imported from their modules when first used: importing one module of the package (the
    plan reads ``choices`` and ``limits``) does not import the engine. By name, so the Lambda package, whose modules
    are found by following the imports of what its functions import, does not carry the engine none of them runs."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
