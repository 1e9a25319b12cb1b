"""Identity providers: one module per type behind the protocols in ``base``; ``registry`` maps
each ``type`` to its class."""
