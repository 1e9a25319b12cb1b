"""Flask blueprints, kept thin: parse, call the domain, render."""
