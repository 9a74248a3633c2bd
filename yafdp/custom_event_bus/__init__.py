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

from yafdp.custom_event_bus.choices import Choices
from yafdp.custom_event_bus.clock import Clock, ManualClock, RealTimeClock
from yafdp.custom_event_bus.errors import ApiError
from yafdp.custom_event_bus.service import OPERATIONS, CustomEventBusService

__all__ = ["ApiError", "Choices", "Clock", "CustomEventBusService", "ManualClock", "OPERATIONS", "RealTimeClock"]
