"""The Brevo account fixture: folders, lists, attributes and contacts people made before
segsync came.

Schema (YAML or JSON; unknown keys refused; times are `segsync.emulator.fixture.Stamp`):

    folders: [Marketing]                 # beyond "Your first folder" (id 1)
    lists:                               # beyond "Your first list" (id 1); by name below
      - {name: Newsletter, folder: Marketing}
    attributes:                          # the user's own (FIRSTNAME, LASTNAME, SMS exist)
      - {name: COMPANY}                                   # normal text
      - {name: SCORE, type: float}
      - {name: PLAN, category: category, labels: [Free, Pro]}   # valued 1, 2, ...
      - {name: INTERESTS, type: multiple-choice, options: [News, Events]}
    contacts:
      - email: lea@lived.dev
        attributes: {FIRSTNAME: Lea, PLAN: 2}
        lists: [Newsletter]              # names, or "Your first list"
        unsubscribed_lists: [Events]     # per-list unsubscribes (listUnsubscribed)
        blocklisted: true                # emailBlacklisted (unsubscribed from all, or bounced)
        created: 900d
        modified: 30d                    # default: created

An attribute value of the wrong type is refused here (Brevo would drop it silently).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from segsync.emulator.fixture import FixtureError, FixtureModel, Stamp

__all__ = ["BrevoFixture", "apply_brevo_fixture"]


class ListFixture(FixtureModel):
    name: str = Field(min_length=1)
    folder: str = "Your first folder"
    created: Stamp | None = None


class AttributeFixture(FixtureModel):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    category: Literal["normal", "category"] = "normal"
    type: Literal["text", "date", "float", "boolean", "multiple-choice"] = "text"
    labels: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


class ContactFixture(FixtureModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    attributes: dict[str, Any] = Field(default_factory=dict)
    lists: tuple[str, ...] = ()
    unsubscribed_lists: tuple[str, ...] = ()
    blocklisted: bool = False
    created: Stamp | None = None
    modified: Stamp | None = None


class BrevoFixture(FixtureModel):
    """A Brevo account's pre-existing data; see the module docstring."""

    folders: tuple[str, ...] = ()
    lists: tuple[ListFixture, ...] = ()
    attributes: tuple[AttributeFixture, ...] = ()
    contacts: tuple[ContactFixture, ...] = ()

    @field_validator("contacts")
    @classmethod
    def _unique_emails(cls, contacts: tuple[ContactFixture, ...]) -> tuple[ContactFixture, ...]:
        seen: set[str] = set()
        for contact in contacts:
            key = contact.email.strip().lower()
            if key in seen:
                raise ValueError(f"{contact.email} appears twice")
            seen.add(key)
        return contacts


def apply_brevo_fixture(state: Any, fixture: BrevoFixture) -> None:
    """Stage `fixture` in `state` (a `BrevoState`); FixtureError names a refused place."""
    folders = {name: fid for fid, name in state.folders.items()}
    for name in fixture.folders:
        if name not in folders:
            folders[name] = state.seed_folder(name)
    lists = {meta["name"]: lid for lid, meta in state.lists.items()}
    for n, spec_l in enumerate(fixture.lists):
        if spec_l.folder not in folders:
            raise FixtureError("<data>", [f"lists[{n}].folder: no folder {spec_l.folder!r}"])
        lid = state.seed_list(spec_l.name, folders[spec_l.folder])
        state.lists[lid]["createdAt"] = state.fixture_time(spec_l.created, f"lists[{n}].created")
        lists[spec_l.name] = lid
    for spec_a in fixture.attributes:
        state.seed_attribute(spec_a.name, spec_a.category, spec_a.type, labels=spec_a.labels)
        state.attributes[spec_a.name.upper()].options = list(spec_a.options)
    problems: list[str] = []
    for c, spec_c in enumerate(fixture.contacts):
        place = f"contacts[{c}]"
        created = state.fixture_time(spec_c.created, f"{place}.created")
        modified = created if spec_c.modified is None else state.fixture_time(
            spec_c.modified, f"{place}.modified"
        )
        if modified < created:
            problems.append(f"{place}.modified: before created")
        ids: dict[str, tuple[int, ...]] = {}
        for key in ("lists", "unsubscribed_lists"):
            names = getattr(spec_c, key)
            missing = [n for n in names if n not in lists]
            problems += [f"{place}.{key}: no list {n!r}" for n in missing]
            ids[key] = tuple(lists[n] for n in names if n in lists)
        for name, value in spec_c.attributes.items():
            attribute = state.attributes.get(name.upper())
            if attribute is None:
                problems.append(f"{place}.attributes.{name}: no such attribute")
            elif state._typed(attribute, value) is None:
                problems.append(f"{place}.attributes.{name}: {value!r} is not a {attribute.type}")
        if problems:
            continue
        if state.contact(spec_c.email) is not None:
            problems.append(f"{place}.email: {spec_c.email} exists already")
            continue
        contact = state.seed_contact(
            spec_c.email,
            lists=ids["lists"],
            unsubscribed_lists=ids["unsubscribed_lists"],
            blocklisted=spec_c.blocklisted,
            attributes={
                k.upper(): state._typed(state.attributes[k.upper()], v)
                for k, v in spec_c.attributes.items()
            },
            created_at=created,
        )
        contact.modified_at = modified
    if problems:
        raise FixtureError("<data>", problems)
