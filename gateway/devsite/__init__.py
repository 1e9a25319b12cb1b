"""An emulated closed 23 site for the demo and the tests (verifies OAuth like the real one)."""

from gateway.devsite.app import DevsiteOptions, create_devsite

__all__ = ["DevsiteOptions", "create_devsite"]
