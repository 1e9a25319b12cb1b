"""Every text the pages put through ``_()`` (templates) or ``gettext``/``plain`` (code) has a
Danish translation: a page asked for in Danish never shows an English sentence by omission."""

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


@pytest.mark.parametrize("where", ["templates", "code"])
def test_every_text_has_a_danish_translation(where: str) -> None:
    keys = _template_keys() if where == "templates" else _code_keys()
    assert keys, "no translated text found: the pattern is wrong"
    missing = sorted(k for k in keys if k not in DANISH)
    assert missing == [], "no Danish for:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    slots = re.compile(r"%\((\w+)\)s")
    for english, danish in DANISH.items():
        assert sorted(slots.findall(english)) == sorted(slots.findall(danish)), english
