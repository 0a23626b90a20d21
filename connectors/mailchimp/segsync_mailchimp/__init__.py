"""segsync's Mailchimp connector: connector, rule compiler and a stateful emulator.

Registered under the `segsync.connectors` entry point as `mailchimp`, exactly like a
third-party connector would be.
"""

from segsync_mailchimp.compiler import MailchimpCompiler
from segsync_mailchimp.connector import MailchimpConfig, MailchimpConnector
from segsync_mailchimp.emulator import MailchimpEmulator, subscriber_hash

__all__ = [
    "MailchimpCompiler",
    "MailchimpConfig",
    "MailchimpConnector",
    "MailchimpEmulator",
    "subscriber_hash",
]
