"""What the Brevo package declares about its platform, as class data the core reads."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.logs import Redactor
from segsync.mapping import load_mapping

KEY = "xkeysib-" + "a1" * 32 + "-Zx9Qw8Er7Ty6Ui5O"


def test_rate_limit_hints_read_the_reset_header() -> None:
    """A Brevo 429 says how long to wait in `x-sib-ratelimit-reset` (seconds, no Retry-After)."""
    hints = BrevoConnector.rate_limit_hints
    clock = VirtualClock()
    limited = httpx.Response(
        429, headers={"x-sib-ratelimit-reset": "12"}, json={"code": "too_many_requests"}
    )
    both = httpx.Response(429, headers={"x-sib-ratelimit-reset": "7", "Retry-After": "30"})

    assert hints.seconds(limited, clock) == 12.0
    assert hints.seconds(both, clock) == 7.0
    assert hints.seconds(httpx.Response(429, headers={"Retry-After": "3"}), clock) == 3.0
    assert hints.seconds(httpx.Response(429), clock) is None


def test_credential_patterns_redact_brevo_keys() -> None:
    """API and SMTP keys are redacted by shape, even when nobody registered them."""
    redact = Redactor(patterns=BrevoConnector.credential_patterns)
    smtp = "xsmtpsib-" + "b2" * 32 + "-Ab1Cd2Ef3Gh4Ij5K"

    assert KEY not in redact(f"GET /contacts api-key={KEY}")
    assert smtp not in redact(f"smtp key {smtp} refused")
    assert redact("xkeysib is the prefix") == "xkeysib is the prefix"


def test_default_mapping_is_shipped_in_the_package() -> None:
    """`mapping.yaml` sits in segsync_brevo and is the mapping `load_mapping` reads."""
    resource = BrevoConnector.default_mapping_resource()

    assert resource is not None
    assert resource.is_file()
    mapping = load_mapping("brevo")
    assert mapping.fields["first_name"].path == "attributes.FIRSTNAME"
    assert str(resource) == mapping.source


def test_emulator_declares_its_demo_port_and_client_config() -> None:
    """The demo reaches the emulator with `client_config()`; a connector accepts it as is."""
    emulator = BrevoEmulator(api_key=KEY)

    assert BrevoEmulator.demo_port == 8003
    assert emulator.client_config() == {"api_key": KEY}
    connector = BrevoConnector(emulator.client_config(), transport=emulator.transport())
    assert connector.config.api_key.get_secret_value() == KEY


@pytest.mark.slow
def test_importing_the_connector_does_not_load_the_emulator() -> None:
    """The emulator (and its web framework) load only when asked for."""
    code = (
        "import sys, segsync_brevo, segsync_brevo.connector; "
        "print(sorted(m for m in sys.modules if 'emulator' in m or m.startswith('starlette')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
