"""The lab: real systemd hosts in their own network namespaces, reached over SSH through a route guard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tacops.lab.lab import HostStatus, Lab

__all__ = ["HostStatus", "Lab"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the route guard and the supervisor (run once per connection or host)
    # do not import pydantic and the rest of tacops.
    if name in __all__:
        from tacops.lab import lab

        return getattr(lab, name)
    raise AttributeError(f"module 'tacops.lab' has no attribute {name!r}")
