"""segsync's Mailchimp connector: connector, rule compiler and a stateful emulator.

Registered under the `segsync.connectors` entry point as `mailchimp`, exactly like a
third-party connector would be. Importing the package loads the connector only: the emulator
(`segsync_mailchimp.emulator`) is imported when it is asked for, by the conformance kit,
`segsync emulate`, the demo or the benchmark (`MailchimpEmulator` here imports it on first
access).
"""

from typing import TYPE_CHECKING, Any

from segsync_mailchimp.api import subscriber_hash
from segsync_mailchimp.compiler import MailchimpCompiler
from segsync_mailchimp.config import MailchimpConfig
from segsync_mailchimp.connector import MailchimpConnector

if TYPE_CHECKING:
    from segsync_mailchimp.emulator import MailchimpEmulator

__all__ = [
    "MailchimpCompiler",
    "MailchimpConfig",
    "MailchimpConnector",
    "MailchimpEmulator",
    "subscriber_hash",
]


def __getattr__(name: str) -> Any:
    """`MailchimpEmulator`, imported on first access (the emulator is not a runtime need)."""
    if name == "MailchimpEmulator":
        from segsync_mailchimp.emulator import MailchimpEmulator

        return MailchimpEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
