"""The web page's texts: every key its scripts ask for exists in English and in Russian, and the
two languages have the same keys (no text shows up as a bare key in one of them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "services" / "gateway" / "web" / "static"
MESSAGES = json.loads((STATIC / "messages.json").read_text(encoding="utf-8"))
SCRIPTS = "\n".join(p.read_text(encoding="utf-8") for p in STATIC.glob("*.js"))


def test_both_languages_have_the_same_keys() -> None:
    assert set(MESSAGES) == {"en", "ru"}
    assert set(MESSAGES["en"]) == set(MESSAGES["ru"])
    assert all(MESSAGES["ru"][k].strip() and MESSAGES["en"][k].strip() for k in MESSAGES["en"])


def test_every_literal_key_the_scripts_use_exists() -> None:
    used = set(re.findall(r'\bt\("([a-z0-9_.]+)"', SCRIPTS))
    assert len(used) > 100
    assert sorted(used - set(MESSAGES["en"])) == []


def test_every_metric_and_link_column_has_a_name_and_a_definition() -> None:
    fields = re.findall(r'\["([a-z0-9_]+)", "(?:count|money|percent|days)"\]', (STATIC / "report.js").read_text())
    assert "romi" in fields and "retention_d30" in fields
    for field in fields:
        assert f"metric.{field}" in MESSAGES["en"] or f"link.{field}" in MESSAGES["en"], field
    for field in set(fields) - {"cost"}:
        if f"metric.{field}" in MESSAGES["en"]:
            assert f"def.{field}" in MESSAGES["en"], field


def test_the_russian_texts_are_russian() -> None:
    cyrillic = sum(1 for v in MESSAGES["ru"].values() if re.search("[а-яё]", v, re.IGNORECASE))
    assert cyrillic / len(MESSAGES["ru"]) > 0.9
