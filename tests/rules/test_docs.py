"""The examples of docs/rules.md load against a schema with the fields they name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import parse
from segsync.rules.typecheck import load_rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"

F = FieldType
SCHEMA = Schema(fields={
    name: FieldSpec(type=ftype, read_only=ro) for name, ftype, ro in [
        ("country", F.ENUM, False), ("state", F.ENUM, False), ("language", F.ENUM, False),
        ("city", F.TEXT, False), ("postal_code", F.TEXT, False), ("company", F.TEXT, False),
        ("phone", F.PHONE, False), ("lifetime_value", F.NUMBER, False),
        ("orders", F.INTEGER, False), ("last_purchase_at", F.DATE, False),
        ("signup_at", F.DATETIME, False), ("signup", F.DATE, False),
        ("lifecycle_stage", F.ENUM, False), ("interests", F.MULTI_ENUM, False),
        ("open_rate", F.NUMBER, True), ("last_open", F.DATETIME, True),
        ("member_rating", F.INTEGER, True),
    ]
})


def _blocks(language: str) -> list[str]:
    if not DOC.exists():
        pytest.skip(f"{DOC} not present")
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_example_rules_load() -> None:
    """Every line of the example blocks (and the multi-line opening rule) type-checks."""

    blocks = _blocks("text")
    opening, examples = blocks[0], blocks[1:]
    rules = [opening] + [
        line for block in examples for line in block.splitlines()
        if line.strip() and not line.startswith(("line ", "  ", "2 problems"))
    ]

    assert len(rules) >= 19
    for text in rules:
        load_rule(text, SCHEMA)


def test_yaml_structured_example_loads() -> None:
    """The structured YAML example is the same rule as its text form."""

    (block,) = _blocks("yaml")
    rule = yaml.safe_load(block)["segments"]["vip_fr"]["rule"]

    assert load_rule(rule, SCHEMA) == parse('country = "FR" and tags has "vip"')
