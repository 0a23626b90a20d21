"""The `platforms.mailchimp` block of segsync.yaml, validated.

The connector, its HTTP client and its rule compiler all read the same `MailchimpConfig`:
the key (whose `-<dc>` suffix names the datacenter), the audience, the merge tags that
override the derived ones, and the marketing permissions that stand for boolean fields.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from segsync.connector import ConnectorConfig
from segsync_mailchimp.api import DATACENTER

__all__ = ["MailchimpConfig"]


class MailchimpConfig(ConnectorConfig):
    """The `platforms.mailchimp` block of segsync.yaml."""

    #: Mailchimp's API host, under which each datacenter has its own (`us21.api.mailchimp.com`)
    vendor_hosts: ClassVar[tuple[str, ...]] = ("api.mailchimp.com",)

    api_key: SecretStr = Field(description="Marketing API key, `<32 hex>-<datacenter>`")
    list_id: str = Field(min_length=1, description="the audience (list) id")
    reoptin_via_pending: bool = Field(
        default=False,
        description="send a newer opt-in of an unsubscribed member as `pending` (a "
        "confirmation email) instead of refusing it",
    )
    merge_fields: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> merge tag, where not derived"
    )
    marketing_permissions: dict[str, str] = Field(
        default_factory=dict,
        description="canonical boolean field -> marketing_permission_id (GDPR lists)",
    )
    overlap_seconds: float = Field(
        default=300.0, ge=0, description="re-read window before the cursor (clock skew)"
    )
    max_concurrency: int = Field(default=10, ge=1, le=10, description="Mailchimp allows 10")

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return value

    tag_refresh_seconds: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="seconds between full reads of the audience, which see tag edits made "
        "in Mailchimp whether or not they move a member's last_changed (0: never)",
    )

    @model_validator(mode="after")
    def _datacenter_known(self) -> MailchimpConfig:
        # the datacenter becomes the API host: a crafted key must not send the key elsewhere
        if self.base_url is None and self.datacenter is None:
            raise ValueError(
                "api_key: the part after its last '-' must be a Mailchimp datacenter like "
                "'us21' (the key looks like '<32 hex digits>-us21'); copy the whole key from "
                "Mailchimp (Profile > Extras > API keys), or set base_url"
            )
        return self

    @property
    def datacenter(self) -> str | None:
        """The key's datacenter (`us21` of `<hex>-us21`), None when it names none."""
        key = self.api_key.get_secret_value().strip()
        suffix = key.rsplit("-", 1)[1] if "-" in key else ""
        return suffix if DATACENTER.fullmatch(suffix) else None

    @property
    def api_root(self) -> str:
        """The API root URL, ending in /3.0."""
        if self.base_url:
            return self.base_url if self.base_url.endswith("/3.0") else self.base_url + "/3.0"
        return f"https://{self.datacenter}.api.mailchimp.com/3.0"
