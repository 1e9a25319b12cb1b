"""Everything that knows the upstream 23 API. Imports nothing from Flask."""
