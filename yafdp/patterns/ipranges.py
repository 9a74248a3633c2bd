"""IP addresses and CIDR blocks as EventBridge reads them, for the ``cidr`` operator and IP-literal values."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from yafdp.patterns.errors import PatternError

# EventBridge only treats strings of these shapes as IP addresses (anything else is never resolved).
_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_MASK = re.compile(r"[+-]?[0-9]+")


@lru_cache(maxsize=8192)
def address(text: str) -> tuple[int, int] | None:
    """The address ``text`` denotes as ``(byte length, integer value)``, or ``None`` if it is not one.

    An IPv4-mapped IPv6 address counts as the IPv4 address, as Java's ``InetAddress`` reads it.

    Examples
    --------
    >>> address("10.0.0.1")
    (4, 167772161)
    >>> address("10.0.0.256") is None
    True
    """
    if _IPV4_SHAPE.fullmatch(text):
        try:
            return 4, int(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if _IPV6_SHAPE.fullmatch(text):
        try:
            parsed = ipaddress.IPv6Address(text)
        except ValueError:
            return None
        mapped = parsed.ipv4_mapped
        return (4, int(mapped)) if mapped is not None else (16, int(parsed))
    return None


def cidr_range(text: str) -> tuple[int, int, int]:
    """The block a ``cidr`` pattern names, as ``(byte length, lowest, highest)``.

    The block is the network the mask names: the host bits of the written address are cleared, so
    ``10.0.0.5/24`` covers ``10.0.0.0`` to ``10.0.0.255``. The EventBridge user guide describes
    ``{"cidr": "10.0.0.0/24"}`` as matching "IP addresses that start with 10.0.0 and end with a
    number between 0 and 255" (awsdocs/amazon-eventbridge-user-guide,
    doc_source/eb-event-patterns-content-based-filtering.md, "IP address matching"), i.e. the whole
    network; issue 13 reports EventBridge matching ``10.0.0.1`` against ``10.0.0.5/24``. A malformed
    block raises :class:`PatternError` with EventBridge's reason.

    Examples
    --------
    >>> cidr_range("10.0.0.5/24") == (4, int(ipaddress.IPv4Address("10.0.0.0")),
    ...                               int(ipaddress.IPv4Address("10.0.0.255")))
    True
    >>> cidr_range("10.0.0.0")
    Traceback (most recent call last):
    ...
    yafdp.patterns.errors.PatternError: Event pattern is not valid. Reason: Malformed CIDR, one '/' required
    """
    parts = text.split("/")
    while parts and parts[-1] == "":
        parts.pop()  # Java's String.split drops trailing empty strings
    if len(parts) != 2:
        raise PatternError("Malformed CIDR, one '/' required")
    ip_text, mask_text = parts
    if not _MASK.fullmatch(mask_text) or not -(2**31) <= int(mask_text) < 2**31:
        raise PatternError("Malformed CIDR, mask bits must be an integer")
    mask = int(mask_text)
    if mask < 0:
        raise PatternError("Malformed CIDR, mask bits must not be negative")
    if not (_IPV4_SHAPE.fullmatch(ip_text) or _IPV6_SHAPE.fullmatch(ip_text)):
        raise PatternError(f"Nonstandard IP address: {ip_text}")
    parsed = address(ip_text)
    if parsed is None:
        raise PatternError(f"Invalid IP address: {ip_text}")
    size, value = parsed
    if size == 4 and mask > 31:
        raise PatternError("IPv4 mask bits must be < 32")
    if size == 16 and mask > 127:
        raise PatternError("IPv6 mask bits must be < 128")
    host_mask = (1 << (size * 8 - mask)) - 1
    network = value & ~host_mask
    return size, network, network | host_mask
