"""The engine's fast paths give what the plain code gives: the pull's record encoding, the
materialised rules' values without a `Contact`, the plan's packed consent changes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segsync.connector import RemoteContact
from segsync.model import Consent, ConsentStatus, FieldSpec, FieldType, Schema
from segsync.rules import evaluate, load_rule
from segsync.sync.plan import ConsentChange, ConsentEvents, Plan, PlanFileError
from segsync.sync.segments import ViewValues, contact_of
from segsync.sync.snapshot import (
    CanonicalView,
    PlatformRecord,
    _encoded,
    _stored_read,
    content_hash,
    dumps,
    encode_read,
)

TEXT = st.text(max_size=12)
MOMENT = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2040, 1, 1),
    timezones=st.one_of(st.none(), st.just(dt.UTC), st.just(dt.timezone(dt.timedelta(hours=2)))),
)
VALUE = st.one_of(
    st.none(), TEXT, st.integers(), st.floats(allow_nan=True), st.booleans(), MOMENT,
    st.dates(), st.lists(TEXT, max_size=3), st.frozensets(TEXT, max_size=3),
)


@st.composite
def remotes(draw: st.DrawFn) -> RemoteContact:
    return RemoteContact.model_construct(
        platform_id=draw(TEXT),
        email=draw(TEXT),
        fields=draw(st.dictionaries(TEXT, VALUE, max_size=4)),
        tags=draw(st.frozensets(TEXT, max_size=4)),
        consent=Consent(
            status=draw(st.sampled_from(list(ConsentStatus))),
            updated_at=draw(st.one_of(st.none(), MOMENT)),
            legal_basis=draw(st.one_of(st.none(), TEXT)),
            evidence=draw(st.one_of(st.none(), TEXT)),
        ),
        engagement=draw(st.dictionaries(TEXT, VALUE, max_size=3)),
        updated_at=draw(st.one_of(st.none(), MOMENT)),
        deleted=draw(st.booleans()),
        reachable=draw(st.one_of(st.none(), st.booleans())),
        unread=draw(st.frozensets(TEXT, max_size=2)),
        aliases=frozenset(),
    )


@settings(max_examples=400, deadline=None)
@given(remotes(), TEXT)
def test_the_pulls_encoding_is_the_records_stored_form_and_hash(
    remote: RemoteContact, key: str
) -> None:
    text, digest = encode_read(remote, key)
    assert (text, digest) == _encoded(_stored_read(remote, key))
    # what the rest of the engine compares it with: the record decoded and hashed again
    record = PlatformRecord.loads(text)
    assert digest == content_hash(record)
    assert dumps(record.encode()) == dumps(PlatformRecord.of(remote, key).encode())


def test_a_field_name_that_is_not_text_is_encoded_as_before() -> None:
    remote = RemoteContact.model_construct(
        platform_id="1", email="a@x.dev", fields={1: "one"}, tags=frozenset(),
        consent=Consent(), engagement={}, updated_at=None, deleted=False, reachable=None,
        unread=frozenset(), aliases=frozenset())
    assert encode_read(remote, "a@x.dev") == _encoded(_stored_read(remote, "a@x.dev"))


SCHEMA = Schema(fields={
    "company": FieldSpec(type=FieldType.TEXT),
    "score": FieldSpec(type=FieldType.NUMBER),
    "signup": FieldSpec(type=FieldType.DATE),
    "opens": FieldSpec(type=FieldType.NUMBER),
})
RULES = [
    'tags has "vip" and company = "Acme"',
    "score > 3 or not company is set",
    'signup after "2024-01-01"',
    "opens >= 2",
    'email ends_with "@x.dev" and consent = "subscribed"',
]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["company", "score", "signup", "opens", "other"]),
                    st.one_of(TEXT, st.integers(-5, 10), st.sampled_from(
                        ["Acme", "2024-03-01", "2023-12-31", "x", "7"])), max_size=5),
    st.frozensets(st.sampled_from(["vip", "VIP", "b2b"]), max_size=3),
    st.sampled_from(list(ConsentStatus)),
    st.dictionaries(st.sampled_from(["opens", "clicks", "company"]), st.integers(0, 5),
                    max_size=2),
)
def test_rules_read_the_view_as_the_contact_gives_it(
    fields: dict[str, Any], tags: frozenset[str], consent: ConsentStatus,
    engagement: dict[str, int],
) -> None:
    view = CanonicalView("p@x.dev", fields, tuple(sorted(tags)), consent)
    live = {"mailchimp": PlatformRecord("1", "p@x.dev", "p@x.dev", engagement=engagement)}
    contact, values = contact_of(view, live, SCHEMA), ViewValues(view, live, SCHEMA)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for name in ["email", "tags", "consent", *SCHEMA.fields, "other", "clicks"]:
        assert values.value(name) == contact.value(name), name
    for text in RULES:
        rule = load_rule(text, SCHEMA)
        assert evaluate(rule, values, now=now, schema=SCHEMA) == evaluate(
            rule, contact, now=now, schema=SCHEMA), text


def _change(i: int) -> ConsentChange:
    return ConsentChange(f"c{i}", f"c{i}@x.dev", "mailchimp", None if i % 2 else "pending",
                         "subscribed", "mailchimp", "2026-01-01T00:00:00+00:00",
                         None, "status=subscribed" if i % 3 else None)


def test_packed_consent_changes_read_back_in_order_and_round_trip_a_plan_file() -> None:
    changes = [_change(i) for i in range(ConsentEvents.CHUNK * 2 + 7)]
    packed = ConsentEvents()
    for change in changes:
        packed.add(tuple(change))
    assert len(packed) == len(changes)
    assert list(packed) == changes
    assert packed[0] == changes[0]
    assert packed[-1] == changes[-1]
    assert packed[ConsentEvents.CHUNK + 3] == changes[ConsentEvents.CHUNK + 3]
    assert packed[2:5] == changes[2:5]
    plan = Plan(plan_id="p", config="c", generation=1, created_at="now", platforms={},
                consent_events=packed)
    data = json.loads(plan.to_json())
    assert data["consent_events"][1] == changes[1]._asdict()  # objects, as before
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert list(again.consent_events) == changes
    assert Plan.model_validate(plan.model_dump()) == plan


def test_a_plan_file_with_a_wrong_consent_change_says_where() -> None:
    plan = Plan(plan_id="p", config="c", generation=1, created_at="now", platforms={},
                consent_events=[_change(0), _change(1)])
    data = json.loads(plan.to_json())
    data["consent_events"][1]["bogus"] = 1
    with pytest.raises(PlanFileError, match=r"^consent_events\.1\.bogus:"):
        Plan.from_json(json.dumps(data))


LOCAL = st.text(alphabet=st.sampled_from(list("aZ09.+-_!~ @é\u200b\t")), min_size=0, max_size=8)
DOMAIN = st.one_of(
    st.sampled_from(["segsync.dev", "Example.COM", "b.com.", "münchen.de", "x", "1.2",
                     "a..b", "-a.com", "a.com ", " a.com", "a@b.com", "", "xn--mnchen-3ya.de"]),
    st.text(alphabet=st.sampled_from(list("ab.-Ü1 ")), max_size=8),
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.builds(lambda local, d: f"{local}@{d}", LOCAL, DOMAIN), st.text(max_size=20)))
def test_the_pulls_email_key_is_normalize_email(email: str) -> None:
    from segsync.model import InvalidEmail, normalize_email
    from segsync.sync.pull import email_key

    try:
        expected: str | None = normalize_email(email)
    except InvalidEmail as exc:
        expected, refused = None, str(exc)
    if expected is not None:
        assert email_key(email) == expected
    else:
        with pytest.raises(InvalidEmail) as caught:
            email_key(email)
        assert str(caught.value) == refused
    assert email_key("Person.One+x@Segsync.DEV") == "person.one+x@segsync.dev"


def _remote_of(pid: str, tags: list[str], company: str) -> RemoteContact:
    # every text made anew (no sharing between two records of the same content)
    return RemoteContact.model_construct(
        platform_id="".join(pid), email="".join(["p@", "x.dev"]),
        fields={"".join(["comp", "any"]): "".join(company), "n": None, "k": 1.5},
        tags=frozenset("".join(t) for t in tags),
        consent=Consent(status=ConsentStatus.SUBSCRIBED, evidence="".join(["status=", "s"]),
                        updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        engagement={}, updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        deleted=False, reachable=None, unread=frozenset(), aliases=frozenset())


def test_a_read_hash_follows_the_content_not_the_objects_holding_it() -> None:
    from segsync.sync.snapshot import read_hash

    one, two = _remote_of("1", ["a", "b", "c"], "Acme"), _remote_of("1", ["c", "a", "b"], "Acme")
    assert read_hash(one) == read_hash(two)
    # one text object held twice (the company is the evidence's own object) or two equal
    # texts: the same content
    text = "".join(["Ac", "me"])
    held_twice = RemoteContact.model_construct(**{
        **one.__dict__, "fields": {**one.fields, "company": text},
        "consent": one.consent.model_copy(update={"legal_basis": text})})
    held_apart = RemoteContact.model_construct(**{
        **one.__dict__, "fields": {**one.fields, "company": "".join(["Ac", "me"])},
        "consent": one.consent.model_copy(update={"legal_basis": "".join(["A", "cme"])})})
    assert read_hash(held_twice) == read_hash(held_apart)
    base = one.__dict__
    for change in ({"platform_id": "2"}, {"email": "q@x.dev"}, {"tags": frozenset({"a"})},
                   {"fields": {"company": "Acme", "k": 1}}, {"deleted": True},
                   {"updated_at": None}, {"reachable": True}, {"unread": frozenset({"t"})},
                   {"engagement": {"opens": 1}},
                   {"consent": Consent(status=ConsentStatus.SUBSCRIBED)}):
        assert read_hash(RemoteContact.model_construct(**{**base, **change})) != read_hash(one)


def test_a_read_hash_is_the_same_in_every_process() -> None:
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from test_engine_fast_paths import _remote_of; "
        "from segsync.sync.snapshot import read_hash; "
        "print(read_hash(_remote_of('7', ['x', 'y', 'z', 'w'], 'Initech')))"
    )
    from pathlib import Path

    here = str(Path(__file__).parent)
    seen = {
        subprocess.run([sys.executable, "-c", script, here], check=True, capture_output=True,
                       text=True, env={**__import__("os").environ, "PYTHONHASHSEED": seed},
                       ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1


@settings(max_examples=300, deadline=None)
@given(
    TEXT, st.dictionaries(TEXT, VALUE.filter(lambda v: not isinstance(v, dt.date | frozenset)),
                          max_size=4),
    st.lists(TEXT, max_size=3), st.sampled_from(list(ConsentStatus)),
    *(st.one_of(st.none(), TEXT) for _ in range(4)),
)
def test_a_views_stored_text_is_its_stored_form(
    email: str, fields: dict[str, Any], tags: list[str], consent: ConsentStatus,
    source: str | None, at: str | None, basis: str | None, evidence: str | None,
) -> None:
    view = CanonicalView(email, fields, tuple(sorted(tags)), consent, source, at, basis,
                         evidence)
    assert view.dumps() == dumps(view.encode())
    assert CanonicalView.loads(view.dumps()).dumps() == view.dumps()


def test_packed_consent_changes_extend_in_order() -> None:
    changes = [_change(i) for i in range(ConsentEvents.CHUNK * 3 + 5)]
    packed = ConsentEvents()
    packed.add(tuple(changes[0]))
    packed.extend(tuple(c) for c in changes[1:ConsentEvents.CHUNK * 2 + 9])
    packed.extend([])
    packed.extend(tuple(c) for c in changes[ConsentEvents.CHUNK * 2 + 9:])
    assert len(packed) == len(changes)
    assert list(packed) == changes


def test_a_compiled_rule_gives_the_verdicts_of_evaluate() -> None:
    """Thousands of seeded well-typed rules (every node type) on contacts drawn near their
    literals, with the schema and without: `compile_rule` is `evaluate`."""
    import random

    from segsync.rules.evaluate import compile_rule
    from segsync.rules.generate import EXAMPLE_SCHEMA, generate_contacts, generate_rule

    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    checked = 0
    for seed in range(400):
        rng = random.Random(seed)
        rule = generate_rule(EXAMPLE_SCHEMA, rng, max_depth=3, now=now)
        contacts = generate_contacts(EXAMPLE_SCHEMA, 12, rng, rule=rule, now=now)
        for schema in (EXAMPLE_SCHEMA, None):
            predicate = compile_rule(rule, schema)
            for contact in contacts:
                assert predicate(contact, now) == evaluate(
                    rule, contact, now=now, schema=schema), (seed, rule)
                checked += 1
    assert checked == 400 * 12 * 2
