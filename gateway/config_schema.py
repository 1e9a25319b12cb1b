"""``gateway config-schema``: the JSON Schema of the configuration file, generated from the
settings models (and the identity types the registry knows), so that an editor can check a
file while it is typed (taplo / Even Better TOML read JSON Schema).

Every key carries the comment it has in the models as its description; secrets are strings
with ``writeOnly``; choices are enums; defaults are shown. Keys the loader sets itself
(``name``) are left out, and unknown keys are refused (``additionalProperties: false``), as
``gateway check-config`` refuses them.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter

from gateway.identity.registry import PROVIDER_TYPES
from gateway.settings import Settings

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Keys that take one value or a list of them (TOML: identity = "corp" or ["corp", "team"]).
ONE_OR_MANY = ("identity", "secret_key")


def config_schema() -> dict[str, Any]:
    schema = Settings.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    identities = _identity_schema(defs)
    schema["properties"]["identity"] = identities
    for name, body in [("Settings", schema), *defs.items()]:
        _tidy(name, body)
    schema["$schema"] = DIALECT
    schema["title"] = "23 Gateway configuration"
    return schema


def _identity_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """``[identity.<name>]``: one of the registered types, told apart by ``type``."""
    models = tuple(kind.settings for kind in PROVIDER_TYPES.values())
    union = Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    adapter: TypeAdapter[Any] = TypeAdapter(dict[str, union])
    found = adapter.json_schema(mode="validation", ref_template="#/$defs/{model}")
    defs.update(found.pop("$defs", {}))
    found["description"] = "Identity providers, by name; `type` says which kind."
    return found


def _tidy(name: str, body: dict[str, Any]) -> None:
    """Descriptions from the models' comments; no loader-set ``name``; strict keys; the
    keys that take one value or a list."""
    properties: dict[str, Any] = body.get("properties", {})
    if not properties:
        return
    if "_table_key" in properties:  # "name" is a display name; the key comes from the loader
        properties.pop("_table_key")
    elif name in _named_models():  # its name is its table's key, set by the loader
        properties.pop("name", None)
    body["additionalProperties"] = body.get("additionalProperties", False)
    comments = _comments().get(name, {})
    for key, prop in properties.items():
        if key in comments and "description" not in prop:
            prop["description"] = comments[key]
        if key in ONE_OR_MANY and prop.get("type") == "array":
            prop.pop("type", None)
            items = prop.pop("items", {"type": "string"})
            prop["anyOf"] = [{"type": "string"}, {"type": "array", "items": items}]
        if prop.get("format") == "password":
            prop["writeOnly"] = True


@cache
def _comments() -> dict[str, dict[str, str]]:
    """Model name -> key -> the comment on its line in the source (or the class docstring's
    first line for a key whose type is a model)."""
    from gateway import settings, settings_fields
    from gateway.identity import registry

    modules = [
        settings,
        settings_fields,
        *(_module_of(k.settings) for k in PROVIDER_TYPES.values()),
    ]
    found: dict[str, dict[str, str]] = {}
    for module in {*modules, registry}:
        source = inspect.getsource(module)
        notes = _line_comments(source)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                keys = found.setdefault(node.name, {})
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        note = notes.get(item.lineno) or notes.get(item.end_lineno or 0)
                        note = note or _above(notes, item.lineno)
                        if note:
                            keys[item.target.id] = note
    return found


def _above(notes: dict[int, str], line: int) -> str:
    """The comment block right above a key (lines of their own), joined."""
    block: list[str] = []
    while -(line - 1 - len(block)) in notes and len(block) < 4:
        block.insert(0, notes[-(line - 1 - len(block))])
    return " ".join(block)


@cache
def _named_models() -> frozenset[str]:
    from gateway.settings_fields import Named

    found: set[str] = set()
    todo: list[type] = [Named]
    while todo:
        model = todo.pop()
        found.add(model.__name__)
        todo.extend(model.__subclasses__())
    return frozenset(found)


def _module_of(model: type[BaseModel]) -> Any:
    return inspect.getmodule(model)


def _line_comments(source: str) -> dict[int, str]:
    """Line -> its comment; a comment alone on its line is keyed by the negative line."""
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if text and not text.startswith(("type:", "noqa", "fmt:")):
                alone = token.line.strip().startswith("#")
                comments[-token.start[0] if alone else token.start[0]] = text
    return comments
