"""Mapping files: validation, shipped defaults, directions, transforms, dates and reductions."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import tomllib
from pathlib import Path

import pytest

from segsync.connector import registry
from segsync.mapping import (
    ENGAGEMENT_FIELDS,
    Direction,
    MappingError,
    MappingFile,
    MappingValueError,
    PlatformMapping,
    load_mapping,
    shipped_mapping,
)
from segsync.model import ConsentStatus

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ("mailchimp", "hubspot", "brevo")
COMMON = ("first_name", "last_name", "phone", "country", "language", "company", "city", "birthday")


def mapping(**spec: object) -> PlatformMapping:
    return PlatformMapping(MappingFile.model_validate({"platform": "test", **spec}))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_shipped_mappings_load_and_cover_common_fields(platform: str) -> None:
    """Each shipped file is valid, maps the common fields and only read-only engagement."""
    loaded = load_mapping(platform)

    assert loaded.platform == platform
    assert set(COMMON) <= set(loaded.fields)
    assert loaded.engagement, "engagement fields are mapped"
    assert set(loaded.engagement) <= set(ENGAGEMENT_FIELDS)
    assert all(m.direction is Direction.IN for m in loaded.engagement.values())


def test_shipped_mappings_live_in_their_connector_package() -> None:
    """Each built-in connector ships its mapping inside its own package, not in the core."""
    for platform in PLATFORMS:
        cls = registry.get(platform)
        resource = shipped_mapping(platform)
        package = importlib.import_module(cls.__module__.partition(".")[0])

        assert resource is not None, platform
        assert Path(str(resource)).parent == Path(str(package.__file__)).parent
    assert shipped_mapping("nope") is None
    with pytest.raises(FileNotFoundError, match="ships no mapping"):
        load_mapping("nope")


def test_the_core_wheel_carries_no_mappings() -> None:
    """pyproject packages no mapping directory into the core; none is left in the tree."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]

    assert "force-include" not in wheel
    assert not (REPO / "mappings").exists()


def test_a_third_party_connector_ships_its_own_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector outside segsync names a mapping in its package; load_mapping reads it."""
    package = tmp_path / "segsync_elsewhere"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fields.yaml").write_text(
        "platform: elsewhere\nfields:\n  first_name: {path: given}\n  company: {path: org}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    connector = type(
        "ElsewhereConnector",
        (registry.get("brevo"),),
        {"name": "elsewhere", "default_mapping": "fields.yaml", "__module__": "segsync_elsewhere"},
    )
    override = tmp_path / "mine.yaml"
    override.write_text("platform: elsewhere\nextends: default\nfields:\n  company: {path: firm}\n")
    registry.register(connector)
    try:
        shipped = load_mapping("elsewhere")
        merged = load_mapping("elsewhere", override)
    finally:
        registry.unregister("elsewhere")

    assert shipped.source == str(package / "fields.yaml")
    assert shipped.platform_path("first_name") == "given"
    assert merged.platform_path("first_name") == "given"
    assert merged.platform_path("company") == "firm"


def test_mailchimp_real_field_names() -> None:
    """Mailchimp: merge fields, the member language, stats and rating, status vocabulary."""
    mc = load_mapping("mailchimp")
    member = {
        "status": "cleaned",
        "language": "FR",
        "member_rating": 4,
        "stats": {"avg_open_rate": 0.42, "avg_click_rate": 0.1},
        "merge_fields": {"FNAME": " Ann ", "LNAME": "", "ADDRESS": {"country": "fr"}},
    }

    assert mc.to_platform({"first_name": "Ann", "last_name": None, "open_rate": 0.9}) == {
        "merge_fields": {"FNAME": "Ann", "LNAME": ""}
    }
    assert mc.from_platform(member) == {
        "first_name": "Ann",
        "last_name": None,
        "country": "FR",
        "language": "fr",
    }
    assert mc.engagement_from_platform(member) == {
        "open_rate": 0.42,
        "click_rate": 0.1,
        "member_rating": 4,
    }
    assert mc.consent_from_platform(member) is ConsentStatus.BOUNCED
    assert mc.consent_to_platform(ConsentStatus.NON_SUBSCRIBED) == {"status": "transactional"}
    assert mc.consent_to_platform(ConsentStatus.BOUNCED) is None


def test_mailchimp_birthday_written_as_month_day_never_read() -> None:
    """A birthday merge field holds MM/DD: written in that form, not read back."""
    mc = load_mapping("mailchimp")

    assert mc.to_platform({"birthday": dt.date(1990, 2, 28)}) == {
        "merge_fields": {"BIRTHDAY": "02/28"}
    }
    assert "birthday" not in mc.from_platform({"merge_fields": {"BIRTHDAY": "02/28"}})


def test_hubspot_values_are_strings() -> None:
    """HubSpot: property names, string encoding of values, engagement and opt-out read."""
    hs = load_mapping("hubspot")
    props = {
        "firstname": "Ann",
        "hs_language": "FR",
        "date_of_birth": "1990-02-28",
        "hs_email_open": "7",
        "hs_email_last_open_date": "2026-01-02T03:04:05.000Z",
        "lifecyclestage": "customer",
        "hs_email_optout": "true",
        "segsync_tags": "vip;news",
    }

    assert hs.to_platform({"first_name": "Ann", "birthday": "1990-02-28", "country": "fr"}) == {
        "firstname": "Ann",
        "date_of_birth": "1990-02-28",
        "country": "FR",
    }
    assert hs.from_platform(props)["birthday"] == dt.date(1990, 2, 28)
    assert hs.engagement_from_platform(props) == {
        "opens": 7,
        "last_open": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "lifecycle_stage": "customer",
    }
    assert hs.consent_from_platform({"hs_email_optout": True}) is ConsentStatus.UNSUBSCRIBED
    assert hs.consent_from_platform({"hs_email_optout": "false"}) is None
    assert hs.tags_from_platform(props) == frozenset({"vip", "news"})
    assert hs.tags_to_platform({"news", "vip"}) == {"segsync_tags": "news;vip"}


def test_brevo_statistics_reduced() -> None:
    """Brevo: upper-case attributes; per-campaign statistics reduced to counts and latest."""
    br = load_mapping("brevo")
    contact = {
        "emailBlacklisted": False,
        "attributes": {"FIRSTNAME": "Ann", "SMS": "+33612345678", "SEGSYNC_TAGS": ["vip"]},
        "statistics": {
            "opened": [
                {"campaignId": 21, "count": 2, "eventTime": "2016-05-03T21:24:56Z"},
                {"campaignId": 45, "count": 1, "eventTime": "2017-01-30T13:56:40Z"},
            ],
            "clicked": [
                {"campaignId": 21, "links": [{"count": 2, "eventTime": "2016-05-03T21:25:01Z"}]}
            ],
        },
    }

    assert br.to_platform({"first_name": "Ann", "phone": "+33612345678"}) == {
        "attributes": {"FIRSTNAME": "Ann", "SMS": "+33612345678"}
    }
    assert br.from_platform(contact) == {"first_name": "Ann", "phone": "+33612345678"}
    assert br.engagement_from_platform(contact) == {
        "opens": 3,
        "clicks": 2,
        "last_open": dt.datetime(2017, 1, 30, 13, 56, 40, tzinfo=dt.UTC),
        "last_click": dt.datetime(2016, 5, 3, 21, 25, 1, tzinfo=dt.UTC),
    }
    assert br.consent_from_platform({"emailBlacklisted": True}) is ConsentStatus.UNSUBSCRIBED
    assert br.consent_from_platform(contact) is None
    assert br.consent_to_platform(ConsentStatus.SUBSCRIBED) is None
    assert br.tags_from_platform(contact) == frozenset({"vip"})


def test_latest_of_timestamps_with_offsets() -> None:
    """`max:` compares moments: 10:00+02:00 is earlier than 09:00Z."""
    m = mapping(
        engagement={"last_open": {"path": "s", "type": "datetime", "direction": "in",
                                  "reduce": "max:t"}}
    )
    record = {"s": [{"t": "2026-01-01T09:00:00Z"}, {"t": "2026-01-01T10:00:00+02:00"}]}

    assert m.engagement_from_platform(record) == {
        "last_open": dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    }
    assert m.engagement_from_platform({"s": []}) == {"last_open": None}


def test_directions() -> None:
    """`in` is never written, `out` never read, `both` both ways."""
    m = mapping(
        fields={
            "a": {"path": "A", "direction": "in"},
            "b": {"path": "B", "direction": "out"},
            "c": {"path": "C"},
        }
    )

    assert m.to_platform({"a": "1", "b": "2", "c": "3", "zzz": "4"}) == {"B": "2", "C": "3"}
    assert m.from_platform({"A": "1", "B": "2", "C": "3"}) == {"a": "1", "c": "3"}
    assert m.unmapped(["a", "b", "zzz"]) == ["a", "zzz"]


def test_value_map_and_transforms_both_ways() -> None:
    """Values are transformed, then mapped out; reversed then transformed in."""
    m = mapping(
        fields={
            "stage": {"path": "stage", "transforms": ["trim", "lowercase"],
                      "values": {"lead": "LEAD_STAGE", "customer": "CUST"}},
            "name": {"path": "n", "transforms": ["title"]},
        }
    )

    assert m.to_platform({"stage": " Lead ", "name": "ann lee"}) == {
        "stage": "LEAD_STAGE",
        "n": "Ann Lee",
    }
    assert m.from_platform({"stage": "CUST", "n": "ANN"}) == {"stage": "customer", "name": "Ann"}
    assert m.from_platform({"stage": " Other "}) == {"stage": "other"}


def test_typed_values_and_encodings() -> None:
    """Numbers, booleans, multi-enums and dates encode per file; read back typed."""
    spec = {
        "fields": {
            "ltv": {"path": "ltv", "type": "number"},
            "vip": {"path": "vip", "type": "boolean"},
            "topics": {"path": "topics", "type": "multi_enum"},
            "seen": {"path": "seen", "type": "datetime", "format": "epoch_ms"},
            "born": {"path": "born", "type": "date", "format": "%d.%m.%Y"},
        }
    }
    values = {
        "ltv": 12,
        "vip": True,
        "topics": ["b", "a"],
        "seen": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "born": dt.date(1990, 2, 28),
    }
    as_json = mapping(**spec).to_platform(values)
    as_text = mapping(value_encoding="string", **spec).to_platform(values)

    assert as_json == {
        "ltv": 12.0, "vip": True, "topics": ["a", "b"], "seen": 1767225600000, "born": "28.02.1990"
    }
    assert as_text == {
        "ltv": "12", "vip": "true", "topics": "a;b", "seen": "1767225600000", "born": "28.02.1990"
    }
    for platform_record in (as_json, as_text):
        assert mapping(**spec).from_platform(platform_record) == {
            **values, "ltv": 12.0, "topics": frozenset({"a", "b"})
        }


def test_bad_platform_value_dropped_or_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A value that does not fit is dropped with a warning, or raises when strict."""
    m = mapping(fields={"n": {"path": "n", "type": "integer"}, "ok": {"path": "ok"}})
    record = {"n": "seven", "ok": "fine"}

    with caplog.at_level(logging.WARNING, logger="segsync.mapping"):
        assert m.from_platform(record) == {"ok": "fine"}
    assert "n (n)" in caplog.text
    with pytest.raises(MappingValueError, match="'seven' is not a valid integer"):
        m.from_platform(record, strict=True)


def test_validation_lists_every_problem_with_file_and_yaml_path(tmp_path: Path) -> None:
    """A broken mapping file reports each problem with its file, YAML path and line."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "platform: brevo\n"
        "fields:\n"
        "  a: {path: A, type: txt}\n"
        "  b: {path: B, type: number, format: '%Y'}\n"
        "engagement:\n"
        "  c: {path: C, direction: both}\n"
        "colour: red\n"
    )

    with pytest.raises(MappingError) as info:
        load_mapping("brevo", path)
    found = [str(p) for p in info.value.problems]

    assert len(found) == 4, found
    assert found[0].startswith(f"{path}:3: fields.a.type: input should be")
    assert found[1] == f"{path}:4: fields.b: format applies to date and datetime fields, not number"
    assert found[2] == f"{path}:5: engagement: engagement fields ['c'] must have direction: in"
    assert found[3] == f"{path}:7: colour: unknown key 'colour'"


def test_duplicate_keys_in_a_mapping_file(tmp_path: Path) -> None:
    """Duplicate keys are reported with their line."""
    path = tmp_path / "m.yaml"
    path.write_text("platform: brevo\nfields:\n  a: {path: A}\n  a: {path: B}\n")

    with pytest.raises(MappingError, match=r"m.yaml:4: fields.a: duplicate key 'a'"):
        load_mapping("brevo", path)


def test_wrong_platform_and_extends(tmp_path: Path) -> None:
    """A file for another platform is refused; `extends: default` overrides by name."""
    path = tmp_path / "m.yaml"
    path.write_text("platform: hubspot\nfields: {}\n")
    with pytest.raises(MappingError, match="is 'hubspot', not 'brevo'"):
        load_mapping("brevo", path)

    path.write_text(
        "platform: brevo\nextends: default\nfields:\n  first_name: {path: attributes.PRENOM}\n"
    )
    merged = load_mapping("brevo", path)

    assert merged.platform_path("first_name") == "attributes.PRENOM"
    assert merged.platform_path("last_name") == "attributes.LASTNAME"
    assert merged.platform_path("opens") == "statistics.opened"


def test_reduce_rules_are_checked() -> None:
    """A reduced value is read only, with a known reduction."""
    with pytest.raises(ValueError, match="use count, sum:<key> or max:<key>"):
        MappingFile.model_validate(
            {"platform": "x", "fields": {"a": {"path": "a", "reduce": "avg:x", "direction": "in"}}}
        )
    with pytest.raises(ValueError, match="can only be read"):
        MappingFile.model_validate(
            {"platform": "x", "fields": {"a": {"path": "a", "reduce": "count"}}}
        )
