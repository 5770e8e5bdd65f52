"""Name lookups through a plain dict, with an error that lists the valid names."""

from __future__ import annotations


def build(registry: dict, name: str, what: str, **kwargs):
    """``registry[name](**kwargs)``; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; valid names: {sorted(registry)}")
    return registry[name](**kwargs)
