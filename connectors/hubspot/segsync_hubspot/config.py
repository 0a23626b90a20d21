"""The `platforms.hubspot` block of segsync.yaml, validated."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from segsync.connector import ConnectorConfig

__all__ = ["DEFAULT_EXPLANATION", "LEGAL_BASES", "HubSpotConfig"]

LEGAL_BASES = frozenset(
    {
        "LEGITIMATE_INTEREST_PQL",
        "LEGITIMATE_INTEREST_CLIENT",
        "PERFORMANCE_OF_CONTRACT",
        "CONSENT_WITH_NOTICE",
        "NON_GDPR",
        "PROCESS_AND_STORE",
        "LEGITIMATE_INTEREST_OTHER",
    }
)
"""HubSpot's `legalBasis` values; a canonical basis outside this set is not sent."""

DEFAULT_EXPLANATION = "Consent status synchronised by segsync from the platform that recorded it"
"""The `legalBasisExplanation` sent when the config names none."""


class HubSpotConfig(ConnectorConfig):
    """The `platforms.hubspot` block of segsync.yaml."""

    #: HubSpot's API hosts
    vendor_hosts: ClassVar[tuple[str, ...]] = (
        "api.hubapi.com",
        "api-eu1.hubapi.com",
        "api.hubspot.com",
    )

    token: SecretStr = Field(description="private-app token or service key")
    api_version: str = Field(default="2026-03", description="dated version (2026-03) or v3")
    tier: Literal["free", "starter", "professional", "enterprise"] = "starter"
    tags_as: Literal["property", "lists"] = "property"
    tags_property: str = "segsync_tags"
    property_group: str = "segsync"
    subscription_id: int | None = Field(
        default=None,
        description=(
            "email subscription type consent is synced with (an active, non-internal EMAIL "
            "type; default: the account's default one among those)"
        ),
    )
    legal_basis: str | None = Field(
        default=None,
        description=(
            "legalBasis sent with a status write when the change carries none (required on "
            "GDPR-enabled portals): " + ", ".join(sorted(LEGAL_BASES))
        ),
    )
    legal_basis_explanation: str | None = Field(
        default=None,
        max_length=1000,
        description="legalBasisExplanation sent with a legal basis (default: a segsync note)",
    )
    read_overlap_seconds: float = Field(default=60.0, ge=0)
    consent_batch_reads: bool = Field(
        default=True,
        description=(
            "read subscription statuses in batches (Marketing Hub Enterprise); without them "
            "consent is read from the hs_email_optout* properties (opt-outs only)"
        ),
    )
    consent_batch_writes: bool = Field(
        default=True,
        description=(
            "write subscription statuses in batches (Marketing Hub Enterprise); without them, "
            "or when HubSpot refuses the batch endpoint, one call per address"
        ),
    )
    list_prefix: str = "segsync: "

    @field_validator("legal_basis")
    @classmethod
    def _known_basis(cls, value: str | None) -> str | None:
        """One of HubSpot's `legalBasis` values (any case), stored upper-case."""
        if value is None:
            return None
        basis = value.strip().upper()
        if basis not in LEGAL_BASES:
            known = ", ".join(sorted(LEGAL_BASES))
            raise ValueError(f"{value!r} is not a HubSpot legal basis; use one of {known}")
        return basis

    @field_validator("legal_basis_explanation")
    @classmethod
    def _some_explanation(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("an empty explanation; leave legal_basis_explanation out instead")
        return value
