"""Re-subscribing an address opted out of all email (issue #13, finding 1).

HubSpot documents that v3 will not resubscribe an opted-out contact and that opt-outs were
irreversible through the API; whether v4 re-subscribes someone who unsubscribed from *all*
email is not documented, so the emulator takes the strict reading by default (refused), and
the lenient one only when told (`resubscribes_opted_out_of_all`).
"""

from __future__ import annotations

from typing import Any

from segsync_hubspot import HubSpotEmulator

from segsync.clock import VirtualClock

from .test_consent_batch import CP, WRITE, Call, run, status_input

BASIS = {"legalBasis": "CONSENT_WITH_NOTICE", "legalBasisExplanation": "asked"}


def _subscribe_opted_out(lenient: bool) -> tuple[list[Any], str, str]:
    """(the single and batch answers, the statuses after) for two addresses opted out of
    all email, asked SUBSCRIBED through `statuses/{email}` and `statuses/batch/write`."""
    emulator = HubSpotEmulator(clock=VirtualClock())
    emulator.resubscribes_opted_out_of_all = lenient
    for email in ("one@example.com", "two@example.com"):
        emulator.seed_contact({"email": email})
        emulator.unsubscribe_all(email)
    answers: list[Any] = []

    async def body(call: Call) -> None:
        single = await call("POST", f"{CP}/statuses/one@example.com",
                            json={"channel": "EMAIL", "subscriptionId": 101,
                                  "statusState": "SUBSCRIBED", **BASIS})
        batch = await call("POST", WRITE,
                           json={"inputs": [status_input("two@example.com", **BASIS)]})
        answers.extend([(single.status_code, single.json()), (batch.status_code, batch.json())])

    run(emulator, body)
    return answers, emulator.subscription_status("one@example.com"), (
        emulator.subscription_status("two@example.com"))


def test_v4_refuses_to_resubscribe_an_address_opted_out_of_all_email_by_default() -> None:
    (single, batch), one, two = _subscribe_opted_out(lenient=False)

    assert single[0] == 400
    assert "unsubscribed from all email" in single[1]["message"]
    assert batch[0] == 200
    assert batch[1]["results"] == []
    assert batch[1]["errors"][0]["context"]["subscriberIdString"] == ["two@example.com"]
    assert (one, two) == ("NOT_SUBSCRIBED", "NOT_SUBSCRIBED")


def test_the_lenient_reading_resubscribes_when_told() -> None:
    (single, batch), one, two = _subscribe_opted_out(lenient=True)

    assert single[1]["results"][0]["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert batch[1]["results"][0]["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert (one, two) == ("SUBSCRIBED", "SUBSCRIBED")
