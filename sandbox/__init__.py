"""Sandbox of fictional Chinese government websites served on loopback.

Tests and demos crawl these sites instead of the internet::

    from sandbox import Sandbox
    with Sandbox(port=0, slow_seconds=2.0) as sb:
        sb.base_url("t910000-portal")   # "http://127.0.0.10:PORT/"
        sb.registry()                   # registry dict with the real URLs
"""

from sandbox.server import Sandbox

__all__ = ["Sandbox"]
