"""The operator console at ``/admin``: plots, audit events, "why can't this person get in?"
and the effective configuration. Off unless ``[admin]`` is configured."""
