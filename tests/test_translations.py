"""Every text the pages put through ``_()`` (templates) or ``gettext``/``plain`` (code), and
every sentence an error page may show, has a Danish translation: a page asked for in Danish
never shows an English sentence by omission."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"
DANISH = json.loads((GATEWAY / "translations" / "da.json").read_text(encoding="utf-8"))
# _("...") or _('...') in a template: the first argument, a literal.
TEMPLATE_KEY = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
TRANSLATING = {"_", "gettext", "plain", "_t"}


def _template_keys() -> set[str]:
    keys = set()
    for path in (GATEWAY / "templates").rglob("*.html"):
        for double, single in TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")):
            keys.add((double or single).replace("\\'", "'").replace('\\"', '"'))
    return keys


def _code_keys() -> set[str]:
    keys = set()
    for path in GATEWAY.rglob("*.py"):
        if "devsite" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in TRANSLATING
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                keys.add(node.args[0].value)
    return keys


def _error_keys() -> set[str]:
    """What an error page may say: every error's own sentence, the visitor wordings by code,
    and the sentences raised (or decided) with a literal message anywhere in the gateway."""
    import importlib
    import pkgutil

    import gateway
    from gateway.errors import GatewayError
    from gateway.web.message_pages import VISITOR_MESSAGES

    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if "devsite" not in module.name and "migrations" not in module.name:
            importlib.import_module(module.name)
    errors: list[type[GatewayError]] = [GatewayError]
    for known in errors:
        errors.extend(known.__subclasses__())
    keys = {error.default_message for error in errors} | set(VISITOR_MESSAGES.values())
    raising = {error.__name__ for error in errors} | {"Decision"}
    for path in GATEWAY.rglob("*.py"):
        if "devsite" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in raising:
                keys |= {
                    a.value
                    for a in node.args[:3]
                    if isinstance(a, ast.Constant) and isinstance(a.value, str) and " " in a.value
                }
    return keys


KEYS = {"templates": _template_keys, "code": _code_keys, "errors": _error_keys}


@pytest.mark.parametrize("where", sorted(KEYS))
def test_every_text_has_a_danish_translation(where: str) -> None:
    keys = KEYS[where]()
    assert keys, "no translated text found: the pattern is wrong"
    missing = sorted(k for k in keys if k not in DANISH)
    assert missing == [], "no Danish for:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    slots = re.compile(r"%\((\w+)\)s")
    for english, danish in DANISH.items():
        assert sorted(slots.findall(english)) == sorted(slots.findall(danish)), english
