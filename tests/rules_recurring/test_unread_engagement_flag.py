"""Whether segsync reads a platform's engagement is a typed mark on its qualified fields
(`FieldSpec.read`), not their description: a description equal to the "not read" text says
nothing, another description on an unread field hides nothing; and the mark is segsync's
own, never a configuration key."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import ValidationError

from segsync.config import ConfigError, config_json_schema, parse_config
from segsync.connector import registry
from segsync.engagement import (
    ENGAGEMENT_FIELDS,
    UNREAD,
    qualified_fields,
    unread_platforms,
)
from segsync.model import FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import load_rule

PLATFORMS = ("mailchimp", "hubspot", "brevo")


def test_a_read_platform_whose_description_reads_like_unread_is_read() -> None:
    """The failure mode of comparing descriptions: a read platform's field described with
    the very text of UNREAD (a mapping's or a user's wording) was taken for unread."""
    fields = qualified_fields(PLATFORMS, unread=["brevo"])
    fields["mailchimp.opens"] = fields["mailchimp.opens"].model_copy(
        update={"description": UNREAD})

    assert unread_platforms(fields) == ["brevo"]


def test_an_unread_platform_keeps_its_mark_under_another_description() -> None:
    fields = {name: spec.model_copy(update={"description": "Öffnungen"})
              for name, spec in qualified_fields(PLATFORMS, unread=["hubspot"]).items()}

    assert unread_platforms(fields) == ["hubspot"]
    assert not fields["hubspot.opens"].read
    assert fields["mailchimp.opens"].read


def test_the_compiler_names_only_the_unread_platforms() -> None:
    fields = {**ENGAGEMENT_FIELDS, **qualified_fields(PLATFORMS, unread=["brevo"])}
    fields["mailchimp.open_rate"] = fields["mailchimp.open_rate"].model_copy(
        update={"description": UNREAD})
    schema = Schema(fields=fields)
    compiler = registry.get("hubspot").build_compiler(schema, strictness="ignore")
    assert compiler is not None

    compiled = compiler.compile("s", load_rule("open_rate > 0.5", schema), PublishMode.AUTO)

    said = " | ".join(d.message for d in compiled.diagnostics)
    assert "aggregates the engagement of hubspot, mailchimp; brevo's is not read" in said
    assert "mailchimp's is not read" not in said


def test_the_mark_survives_a_schema_and_copies() -> None:
    unread = FieldSpec(type=FieldType.INTEGER).as_unread()
    schema = Schema(fields={"x": unread})

    assert not schema.fields["x"].read
    assert not unread.model_copy(update={"description": "d"}).read
    assert unread != FieldSpec(type=FieldType.INTEGER)
    assert FieldSpec(type=FieldType.INTEGER).read


def test_read_is_no_configuration_key() -> None:
    """Neither the JSON Schema (and so docs/configuration.md) nor a schema entry knows it."""
    assert "read" not in config_json_schema()["$defs"]["FieldSpec"]["properties"]
    assert "read" not in FieldSpec(type=FieldType.TEXT).model_dump()
    with pytest.raises(ValidationError, match="read"):
        FieldSpec.model_validate({"type": "text", "read": False})
    text = textwrap.dedent("""\
        schema:
          country: {type: text, read: false}
        """)
    with pytest.raises(ConfigError, match="unknown key 'read'"):
        parse_config(text, env={})
