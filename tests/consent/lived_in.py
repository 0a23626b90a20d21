"""Lived-in accounts on the three emulators, the people acting in them, and the consent floor.

`World` is one user's Mailchimp audience, HubSpot portal and Brevo account as they were
before segsync (people in every status, the user's own tags and lists, some named as segsync
would name its own), the engine syncing them (in-process ASGI transports, one virtual
clock, one event loop, an in-memory SQLite state), and a model of the people's consent:
which explicit opt-in evidence each person gave where, and when they withdrew it.

Foreign actors (the `*_` methods named after a platform) change the emulators directly, as
a person in the platform's UI or inbox would, and record what they did in the model.
`World.sync()` runs the engine and returns the violations of the floor it finds:

1. nobody is subscribed on Mailchimp, `SUBSCRIBED` on HubSpot or, un-blocklisted, in a
   Brevo list the user did not put them in, without live explicit opt-in evidence; a
   platform that held an opt-out is subscribed again only by the person's own act there;
   nobody is in a declared Brevo consent list the user did not put them in (fabricated
   evidence);
2. an opt-out given since the last run (and not followed by a new opt-in) is an opt-out on
   every platform holding the person: Mailchimp unsubscribed/cleaned, HubSpot
   NOT_SUBSCRIBED, Brevo blocklisted;
3. every consent status segsync changed on a platform has a ledger row of that run with the
   person's email, the platform and the status actually sent;
4. a Mailchimp `pending` nobody acted on, without evidence anywhere, stays `pending`;
5. segsync never asks a platform for an opt-in over an opt-out it holds: no run reports a
   consent-floor refusal (Mailchimp `ConsentFloor`, HubSpot `CONSENT_OPT_OUT`, Brevo
   `consent_floor`); people act only between runs, so the engine knew every opt-out.

Where an emulator has no public hook for an act, the helper uses its state directly; those
places are marked `# hook:` (the hooks the emulators should offer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp.api import iso_time

from segsync.clock import VirtualClock
from segsync.connector import Connector
from segsync.model import normalize_email
from segsync.state import LedgerEntry, StateStore, open_store
from segsync.sync import Engine, SyncPolicy
from segsync.testing.data import DEFAULT_SCHEMA
from segsync.testing.harness import RecordingTransport

PLATFORMS = ("mailchimp", "hubspot", "brevo")
CONSENT_ATTRIBUTE = "SEGSYNC_CONSENT"  # the Brevo connector's default `consent_attribute`
DOI_ATTRIBUTE = "DOUBLE_OPT-IN"
SUBSCRIPTION_ID = 101  # the emulated portal's default Marketing email type
CONSENT_LIST = "Newsletter"  # declared in `brevo.consent.lists`
#: the user's own Brevo lists (two with names segsync gives its own lists)
USER_LISTS = ("Newsletter", "Customers", "tag: Webinar", "segsync contacts")
OPT_OUTS = frozenset({"unsubscribed", "bounced"})
#: the codes a connector gives a refused opt-in over an opt-out it holds
FLOOR_REFUSALS = frozenset({"ConsentFloor", "CONSENT_OPT_OUT", "consent_floor"})

MC_PEOPLE = {  # Mailchimp's `seed_lived_in`
    "ada.subscribed@lived.dev": "subscribed",
    "ben.pending@lived.dev": "pending",
    "cy.transactional@lived.dev": "transactional",
    "dee.unsubscribed@lived.dev": "unsubscribed",
    "eve.cleaned@lived.dev": "cleaned",
}
HS_PEOPLE = {  # email -> the managed subscription's status ("" none, "ALL" opted out of all)
    "hal.subscribed@lived.dev": "SUBSCRIBED",
    "ivy.unsubscribed@lived.dev": "NOT_SUBSCRIBED",
    "jon.unspecified@lived.dev": "",
    "kim.optout@lived.dev": "ALL",
    "ada.subscribed@lived.dev": "",
    "ben.pending@lived.dev": "",
    "cy.transactional@lived.dev": "",
}
BV_PEOPLE: dict[str, dict[str, Any]] = {  # email -> lists, listUnsubscribed, blocklist, DOI
    "lea.newsletter@lived.dev": {"lists": ("Newsletter",)},
    "max.customer@lived.dev": {"lists": ("Customers",)},
    "noe.blocked@lived.dev": {"lists": ("Customers",), "blocked": True},
    "ola.listunsub@lived.dev": {"lists": ("Customers",), "unsub": ("Newsletter",)},
    "pia.doi@lived.dev": {"lists": ("Customers",), "doi": True},
    "cy.transactional@lived.dev": {"lists": ("Customers", "tag: Webinar")},
    "dee.unsubscribed@lived.dev": {"lists": ("Customers",)},
    "hal.subscribed@lived.dev": {"lists": ("segsync contacts",)},
}
NEW_PEOPLE = ("new.one@fresh.dev", "new.two@fresh.dev", "new.three@fresh.dev")
PEOPLE = tuple(dict.fromkeys([*MC_PEOPLE, *HS_PEOPLE, *BV_PEOPLE, *NEW_PEOPLE]))
MC_TAGS = ("vip", "Webinar", "Customers 2023")


@dataclasses.dataclass
class Person:
    """What the model knows of one person's consent."""

    #: platforms where the person's explicit opt-in evidence is live (cleared by an opt-out)
    evidence: set[str] = dataclasses.field(default_factory=set)
    #: platforms seen holding an opt-out for the person (after a run, or by the person's act)
    out_on: set[str] = dataclasses.field(default_factory=set)
    #: consent acts since the last run: ("in" | "out" | "ask", platform, what); "ask" is a
    #: re-subscription asked for and not confirmed yet (newer than an opt-out, no evidence)
    window: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    touched: bool = False  # acted on since the last run
    #: Mailchimp's status at the last run, and the evidence and `out_on` an opt-out there
    #: since then replaced (restored when a sign-up hides that opt-out from every run)
    mc_at_run: str | None = None
    before_mc_out: tuple[set[str], set[str]] | None = None


@dataclasses.dataclass
class Totals:
    """Counters over a whole campaign (all examples)."""

    steps: int = 0
    syncs: int = 0
    checks: int = 0  # invariant evaluations (one per invariant, person and platform)
    violations: int = 0


TOTALS = Totals()


class World:
    """Three lived-in emulated accounts, an engine syncing them, and the consent model."""

    def __init__(self, store: StateStore | None = None) -> None:
        self.clock = VirtualClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
        self.loop = asyncio.new_event_loop()
        self.mc = MailchimpEmulator(clock=self.clock, reject_fake_emails=False)
        self.hs = HubSpotEmulator(clock=self.clock)
        self.bv = BrevoEmulator(clock=self.clock)
        self.people = {email: Person() for email in PEOPLE}
        self.user_lists: dict[str, int] = {}
        self.user_members: set[tuple[str, int]] = set()  # (email, list id) the user made
        self._seed()
        self.recorders: dict[str, RecordingTransport] = {}
        self.connectors = self._connectors()
        self.store = store or open_store("sqlite:///:memory:", clock=self.clock)
        self.config = "foreign-actors"
        self.engine = Engine(
            self.connectors,
            self.store,
            config=self.config,
            policy=SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mailchimp"})),
            schema=DEFAULT_SCHEMA,
            clock=self.clock,
        )
        self.runs = 0
        self.errors: list[str] = []
        self.pending_before: set[str] = set()

    # -- building ------------------------------------------------------------------------

    def _seed(self) -> None:
        self.mc.seed_lived_in()
        ada = self.mc.get_member("ada.subscribed@lived.dev")
        assert ada is not None
        self.mc._set_tags(self.mc.lists[self.mc.default_list_id], ada, ["vip"], replace=False)
        for email, status in HS_PEOPLE.items():
            self.hs.seed_contact({"email": email, "firstname": email.split(".")[0].title()})
            if status == "ALL":
                self.hs.unsubscribe_all(email)
            elif status:
                self.hs.set_subscription(email, SUBSCRIPTION_ID, subscribed=status == "SUBSCRIBED")
        for name in USER_LISTS:
            list_id = next(self.bv._list_ids)  # hook: seed_list(name, folder)
            self.bv.lists[list_id] = {"name": name, "folderId": 1, "createdAt": self.clock.now()}
            self.user_lists[name] = list_id
        for email, spec in BV_PEOPLE.items():
            contact = self.bv._new_contact(email)  # hook: seed_contact(email, lists, ...)
            contact.attributes["FIRSTNAME"] = email.split(".")[0].title()
            for name in spec.get("lists", ()):
                contact.list_ids.add(self.user_lists[name])
                self.user_members.add((email, self.user_lists[name]))
            for name in spec.get("unsub", ()):
                contact.list_unsubscribed.add(self.user_lists[name])
            if spec.get("doi"):
                contact.attributes[DOI_ATTRIBUTE] = 1
            if spec.get("blocked"):
                self.bv.blocklist(email)
        # the model: what the seeds are evidence of (opt-outs last: they win)
        for email, status in MC_PEOPLE.items():
            if status == "subscribed":
                self._opt_in(email, "mailchimp", "status=subscribed")
        for email, status in HS_PEOPLE.items():
            if status == "SUBSCRIBED":
                self._opt_in(email, "hubspot", "statusState=SUBSCRIBED")
        for email, spec in BV_PEOPLE.items():
            if CONSENT_LIST in spec.get("lists", ()) or spec.get("doi"):
                self._opt_in(email, "brevo", "consent list or DOI")
        for email, status in MC_PEOPLE.items():
            if status in ("unsubscribed", "cleaned"):
                self._opt_out(email, "mailchimp", f"status={status}")
        for email, status in HS_PEOPLE.items():
            if status in ("NOT_SUBSCRIBED", "ALL"):
                self._opt_out(email, "hubspot", f"seeded {status}")
        for email, spec in BV_PEOPLE.items():
            if spec.get("blocked") or CONSENT_LIST in spec.get("unsub", ()):
                self._opt_out(email, "brevo", "blocklisted or listUnsubscribed")
        self.clock.advance(3600)

    def _connectors(self) -> dict[str, Connector]:
        local = "http://127.0.0.1:9"
        for name, emulator in (("mailchimp", self.mc), ("hubspot", self.hs), ("brevo", self.bv)):
            self.recorders[name] = RecordingTransport(emulator.transport(), self.clock)
        common: dict[str, Any] = {"schema": DEFAULT_SCHEMA, "clock": self.clock}
        return {
            "mailchimp": MailchimpConnector(
                {"api_key": self.mc.default_api_key, "list_id": self.mc.default_list_id,
                 "base_url": local + self.mc.base_path, "reoptin_via_pending": True},
                transport=self.recorders["mailchimp"], **common,
            ),
            "hubspot": HubSpotConnector(
                {"token": self.hs.default_api_key, "base_url": local,
                 "subscription_id": SUBSCRIPTION_ID},
                transport=self.recorders["hubspot"], **common,
            ),
            "brevo": BrevoConnector(
                {"api_key": self.bv.api_key,
                 "consent": {"lists": [self.user_lists[CONSENT_LIST]],
                             "double_opt_in_attribute": DOI_ATTRIBUTE}},
                transport=self.recorders["brevo"], **common,
            ),
        }

    def close(self) -> None:
        for connector in self.connectors.values():
            self.loop.run_until_complete(connector.aclose())
        self.loop.close()
        self.store.close()

    # -- the model -----------------------------------------------------------------------

    def _opt_in(self, email: str, platform: str, what: str) -> None:
        person = self.people[email]
        person.evidence.add(platform)
        person.window.append(("in", platform, what))
        person.touched = True

    def _opt_out(self, email: str, platform: str, what: str) -> None:
        person = self.people[email]
        if platform == "mailchimp" and person.before_mc_out is None:
            person.before_mc_out = (set(person.evidence), set(person.out_on))
        person.evidence.clear()
        person.out_on.add(platform)
        person.window.append(("out", platform, what))
        person.touched = True

    # -- what the platforms hold ---------------------------------------------------------

    def mc_status(self, email: str) -> str | None:
        member = self.mc.get_member(email)
        return None if member is None or member.status == "archived" else member.status

    def hs_status(self, email: str) -> str | None:
        """The managed subscription's status (None: no contact and no status)."""
        status = str(self.hs.subscription_status(email, SUBSCRIPTION_ID))
        if self.hs.contact_by_email(email) is None and status == "NOT_SPECIFIED":
            return None
        return status

    def bv_lists_not_by_user(self, email: str) -> set[int]:
        contact = self.bv.contact(email)
        if contact is None:
            return set()
        return {i for i in contact.list_ids if (email, i) not in self.user_members}

    def consent_on(self, email: str) -> dict[str, str | None]:
        """Each platform's consent for `email`, canonically: None when absent or unknown."""
        out: dict[str, str | None] = {}
        mc = self.mc_status(email)
        out["mailchimp"] = {
            "cleaned": "bounced", "transactional": "non_subscribed", None: None
        }.get(mc, mc)
        hs = self.hs_status(email)
        hs_statuses = {"SUBSCRIBED": "subscribed", "NOT_SUBSCRIBED": "unsubscribed"}
        out["hubspot"] = hs_statuses.get(hs or "")
        contact = self.bv.contact(email)
        out["brevo"] = "unsubscribed" if contact is not None and contact.email_blacklisted else (
            None if contact is None else "reachable" if contact.list_ids else "unknown")
        return out

    def all_emails(self) -> set[str]:
        emails = set(PEOPLE)
        emails |= {m.email_address.lower() for lst in self.mc.lists.values()
                   for m in lst.members.values()}
        emails |= {c.email for c in self.bv.contacts.values() if c.email}
        emails |= {normalize_email(r.properties["email"]) for r in self.hs.contacts.values()
                   if r.properties.get("email") and not r.archived}
        return emails

    # -- people acting in the platforms --------------------------------------------------

    def _bv_contact(self, email: str) -> Any:
        contact = self.bv.contact(email)
        if contact is None:
            contact = self.bv._new_contact(email)  # hook: a contact created in the UI
        return contact

    def brevo_add_to_list(self, email: str, list_name: str) -> None:
        """The user adds a person (new or existing) to one of their own lists."""
        contact = self._bv_contact(email)
        list_id = self.user_lists[list_name]
        if list_id in contact.list_unsubscribed or list_id in contact.list_ids:
            return
        contact.list_ids.add(list_id)
        self.bv._touch(contact)
        self.user_members.add((email, list_id))
        self.people[email].touched = True
        if list_name == CONSENT_LIST and not contact.email_blacklisted:
            self._opt_in(email, "brevo", f"listIds+={list_id} (consent list)")

    def brevo_delete_consent_attribute(self) -> None:
        """An admin deletes segsync's consent attribute (and so every value of it)."""
        self.bv.attributes.pop(CONSENT_ATTRIBUTE, None)  # hook: delete_attribute(name)
        for contact in self.bv.contacts.values():
            contact.attributes.pop(CONSENT_ATTRIBUTE, None)

    def brevo_clear_consent_value(self, email: str) -> None:
        """An admin empties segsync's consent attribute on one contact."""
        contact = self.bv.contact(email)
        if contact is not None and contact.attributes.pop(CONSENT_ATTRIBUTE, None) is not None:
            self.bv._touch(contact)
            self.people[email].touched = True

    def brevo_unsubscribe_from_list(self, email: str, list_name: str) -> None:
        """The person unsubscribes from one list (a consent list: an opt-out)."""
        contact = self.bv.contact(email)
        list_id = self.user_lists[list_name]
        if contact is None or list_id not in contact.list_ids:
            return
        self.bv.unsubscribe_from_list(email, list_id)
        self.user_members.discard((email, list_id))
        self.people[email].touched = True
        if list_name == CONSENT_LIST:
            self._opt_out(email, "brevo", f"listUnsubscribed+={list_id}")

    def brevo_blocklist(self, email: str) -> None:
        contact = self.bv.contact(email)
        if contact is None or contact.email_blacklisted:
            return  # nothing the person can do: no new act, no new evidence
        self.bv.blocklist(email)
        self._opt_out(email, "brevo", "emailBlacklisted=true")

    def brevo_confirm_double_opt_in(self, email: str) -> None:
        """The person confirms a double opt-in (segsync's request, or a Brevo form's)."""
        if email in self.bv.pending_double_opt_in:
            request = self.bv.pending_double_opt_in[email]
            for list_id in request["includeListIds"]:
                self.user_members.add((email, list_id))
            self.bv.confirm_double_opt_in(email)
        else:  # hook: a Brevo form's double opt-in, confirmed
            contact = self._bv_contact(email)
            list_id = self.user_lists[CONSENT_LIST]
            contact.attributes[DOI_ATTRIBUTE] = 1
            contact.list_unsubscribed.discard(list_id)
            contact.list_ids.add(list_id)
            contact.email_blacklisted = False
            contact.blocklist_source = None
            self.bv._touch(contact)
            self.user_members.add((email, list_id))
        self.people[email].out_on.discard("brevo")
        self._opt_in(email, "brevo", f"{DOI_ATTRIBUTE}=1")

    def mailchimp_unsubscribe(self, email: str) -> None:
        if self.mc_status(email) in (None, "unsubscribed"):
            return
        self.mc.unsubscribe(email, reason="too many emails")
        self._opt_out(email, "mailchimp", "status=unsubscribed")

    def mailchimp_clean(self, email: str) -> None:
        if self.mc_status(email) in (None, "cleaned"):
            return
        self.mc.bounce(email)
        self._opt_out(email, "mailchimp", "status=cleaned")

    def mailchimp_confirm_double_opt_in(self, email: str) -> None:
        if self.mc_status(email) != "pending":
            return
        self.mc.confirm_double_opt_in(email)
        self.people[email].out_on.discard("mailchimp")
        self._opt_in(email, "mailchimp", "status=subscribed (confirmed)")

    def mailchimp_sign_up(self, email: str) -> None:
        """The person signs up through a form (an opted-out person is asked to confirm)."""
        status = self.mc_status(email)
        opted = {"timestamp_opt": iso_time(self.clock.now()), "ip_opt": "203.0.113.9",
                 "source": "Hosted Signup Form"}
        if status is None:
            self.mc.seed_member(email, "subscribed", **opted)
        elif status == "transactional":
            member = self.mc.get_member(email)
            assert member is not None
            member.status = "subscribed"  # hook: sign_up(email)
            member.timestamp_opt, member.ip_opt = opted["timestamp_opt"], opted["ip_opt"]
            self.mc._touch(member)
        elif status in ("unsubscribed", "cleaned"):
            member = self.mc.get_member(email)
            assert member is not None
            member.status = "pending"  # hook: sign_up(email) of a compliance-blocked member
            self.mc._touch(member)
            person = self.people[email]
            if person.mc_at_run == "pending" and person.before_mc_out is not None and all(
                w[1] == "mailchimp" for w in person.window if w[0] == "out"
            ):
                # pending at the last run, an opt-out, pending again: no run can see that
                # opt-out (Mailchimp shows the same status and evidence), so the model
                # cannot demand its effects; the earlier state stands
                person.evidence, person.out_on = person.before_mc_out
                person.before_mc_out = None
                person.window = [w for w in person.window if w[1] != "mailchimp"]
            person.touched = True  # a newer act than the opt-out, though no evidence yet
            person.window.append(("ask", "mailchimp", "status=pending (form, to confirm)"))
            return
        else:
            return
        self.people[email].out_on.discard("mailchimp")
        self._opt_in(email, "mailchimp", "status=subscribed (form)")

    def mailchimp_tag(self, email: str, tag: str) -> None:
        """The user tags a member who never opted in (transactional)."""
        member = self.mc.get_member(email)
        if member is None or member.status != "transactional":
            return
        lst = self.mc.lists[self.mc.default_list_id]
        self.mc._set_tags(lst, member, [tag], replace=False)  # hook: tag_member(email, tag)
        self.people[email].touched = True

    def hubspot_unsubscribe(self, email: str, everything: bool) -> None:
        if self.hs.contact_by_email(email) is None:
            return
        if everything:
            if email in self.hs.opted_out_of_all:
                return
            self.hs.unsubscribe_all(email)
            self._opt_out(email, "hubspot", "hs_email_optout=true")
        elif self.hs.subscription_status(email, SUBSCRIPTION_ID) != "NOT_SUBSCRIBED":
            self.hs.set_subscription(email, SUBSCRIPTION_ID, subscribed=False)
            self._opt_out(email, "hubspot", "statusState=UNSUBSCRIBED")

    def hubspot_subscribe(self, email: str) -> None:
        """The person subscribes through a HubSpot form (explicit, with a legal basis)."""
        if self.hs.contact_by_email(email) is None:
            self.hs.seed_contact({"email": email})
        if self.hs.subscription_status(email, SUBSCRIPTION_ID) == "SUBSCRIBED":
            return
        self.hs._set(email, SUBSCRIPTION_ID, True, "CONSENT_WITH_NOTICE", "form")  # hook
        self.people[email].out_on.discard("hubspot")
        self._opt_in(email, "hubspot", "statusState=SUBSCRIBED")

    # -- runs and the floor ----------------------------------------------------------------

    def sync(self) -> list[str]:
        """Run the engine once, after HubSpot's search shows what people did (the index lag);
        the violations of the floor (empty when it held)."""
        self.clock.advance(self.hs.read_lag_seconds)
        emails = self.all_emails()
        before = {e: self.consent_on(e) for e in emails}
        self.pending_before = {e for e in emails if self.mc_status(e) == "pending"}
        ledger_before = len(self.store.ledger(self.config))
        report = self.loop.run_until_complete(self.engine.sync())
        self.runs += 1
        TOTALS.syncs += 1
        self.errors.extend(f"run {self.runs}: {e}" for e in report.errors)
        ledger = self.store.ledger(self.config)[ledger_before:]
        emails = self.all_emails()
        after = {e: self.consent_on(e) for e in emails}
        problems = [
            *self.check_evidence(emails),
            *self.check_opt_outs(emails),
            *self.check_ledger(before, after, ledger),
            *self.check_pending(emails),
            *self.check_refusals(report.errors),
        ]
        for email in emails:
            person = self.people.setdefault(email, Person())
            person.out_on |= {p for p, s in after[email].items() if s in OPT_OUTS}
            person.window.clear()
            person.touched = False
            person.mc_at_run = self.mc_status(email)
            person.before_mc_out = None
        TOTALS.violations += len(problems)
        if problems and report.errors:
            problems.append(f"(the run's errors: {[str(e) for e in report.errors][:5]})")
        self.clock.advance(600)
        return problems

    def subscribed_on(self, email: str) -> set[str]:
        where = set()
        if self.mc_status(email) == "subscribed":
            where.add("mailchimp")
        if self.hs.subscription_status(email, SUBSCRIPTION_ID) == "SUBSCRIBED":
            where.add("hubspot")
        contact = self.bv.contact(email)
        if contact is not None and not contact.email_blacklisted and (
            self.bv_lists_not_by_user(email)
        ):
            where.add("brevo")
        return where

    def check_evidence(self, emails: set[str]) -> list[str]:
        """Invariant 1: subscribed only with live explicit evidence; no fabricated evidence."""
        problems = []
        consent_list = self.user_lists[CONSENT_LIST]
        for email in sorted(emails):
            person = self.people.setdefault(email, Person())
            for platform in sorted(self.subscribed_on(email)):
                TOTALS.checks += 1
                if not person.evidence:
                    problems.append(
                        f"[1] {email} is subscribed on {platform} without opt-in evidence "
                        f"anywhere ({self._history(email)})"
                    )
                elif platform in person.out_on and platform not in person.evidence:
                    problems.append(
                        f"[1] {email} is subscribed again on {platform}, which held an opt-out, "
                        f"though the person re-opted in only on {sorted(person.evidence)}"
                    )
            TOTALS.checks += 1
            if consent_list in self.bv_lists_not_by_user(email):
                problems.append(
                    f"[1] {email} was put in the declared consent list {consent_list} by "
                    "segsync (fabricated evidence)"
                )
        return problems

    def check_opt_outs(self, emails: set[str]) -> list[str]:
        """Invariant 2: an opt-out since the last run is an opt-out everywhere."""
        problems = []
        for email in sorted(emails):
            person = self.people[email]
            if not person.window or person.window[-1][0] != "out":
                continue
            acts = [w for w in person.window if w[0] == "out"]
            for platform, status in self.consent_on(email).items():
                if status is None:
                    continue
                TOTALS.checks += 1
                if status not in OPT_OUTS:
                    problems.append(
                        f"[2] {email} opted out ({acts}) but is {status!r} on {platform}"
                    )
        return problems

    def check_ledger(
        self,
        before: dict[str, dict[str, str | None]],
        after: dict[str, dict[str, str | None]],
        ledger: list[LedgerEntry],
    ) -> list[str]:
        """Invariant 3: every consent change segsync made on a platform has its ledger row."""
        problems = []
        rows: dict[tuple[str, str], set[str]] = {}
        for entry in ledger:  # what was sent (`new` is what was asked for)
            rows.setdefault((entry.platform, entry.email), set()).add(entry.sent or entry.new)
        for email, now in sorted(after.items()):
            was = before.get(email, dict.fromkeys(PLATFORMS))
            for platform in PLATFORMS:
                old, new = was.get(platform), now[platform]
                if old == new or (new in (None, "unknown", "reachable", "non_subscribed") and (
                    old in (None, "unknown", "reachable")
                )):
                    continue  # no change, or a person created with no status
                TOTALS.checks += 1
                wanted = OPT_OUTS if new in OPT_OUTS else {new}
                if new == "reachable" or new == "unknown":  # a Brevo blocklist lifted
                    wanted = {"subscribed", "pending", "non_subscribed"}
                found = rows.get((platform, normalize_email(email)), set())
                if not found & wanted:
                    problems.append(
                        f"[3] {email}: {platform} went {old!r} -> {new!r} in run {self.runs} "
                        f"with no ledger row saying so (rows for it: {sorted(found)})"
                    )
        return problems

    def check_refusals(self, errors: list[Any]) -> list[str]:
        """Invariant 5: no consent-floor refusal (an opt-in asked over a held opt-out)."""
        TOTALS.checks += 1
        return [
            f"[5] run {self.runs}: {e.platform} refused an opt-in for {e.email}: {e.message}"
            for e in errors if e.code in FLOOR_REFUSALS
        ]

    def check_pending(self, emails: set[str]) -> list[str]:
        """Invariant 4: an untouched Mailchimp pending without evidence stays pending."""
        problems = []
        for email in sorted(emails):
            person = self.people[email]
            if person.touched or person.evidence or email not in self.pending_before:
                continue
            TOTALS.checks += 1
            status = self.mc_status(email)
            if status != "pending":
                problems.append(f"[4] {email} was pending on mailchimp, nobody acted, now {status}")
        return problems

    def _history(self, email: str) -> str:
        person = self.people[email]
        return f"model: evidence={sorted(person.evidence)}, out_on={sorted(person.out_on)}"
