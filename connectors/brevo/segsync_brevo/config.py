"""The `brevo` block of segsync.yaml: the key, the API tier, where tags and consent live,
and which of the account's signals are consent evidence (`consent`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from segsync.connector import ConnectorConfig

__all__ = ["BrevoConfig", "ConsentEvidence", "DoubleOptIn"]


class DoubleOptIn(BaseModel):
    """Brevo's double opt-in: the confirmation template, the page after the click, the lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template_id: int = Field(gt=0, description="a template whose doiTemplate is true")
    redirection_url: str
    include_list_ids: tuple[int, ...] = Field(
        default=(), description="lists joined on confirmation (default: segsync's own list)"
    )


class ConsentEvidence(BaseModel):
    """What counts as consent evidence on this account (`brevo.consent`).

    Without `lists` and `double_opt_in_attribute`, Brevo contributes opt-outs only: list
    membership as such is never consent, and segsync's own consent attribute is an echo.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lists: tuple[int, ...] = Field(
        default=(),
        description="ids of the account's consent lists: membership is an opt-in, "
        "a per-list unsubscribe (listUnsubscribed) an opt-out",
    )
    double_opt_in_attribute: str | None = Field(
        default=None,
        description="a category attribute Brevo sets on a confirmed double opt-in "
        "(usually DOUBLE_OPT-IN); value 1 (Yes) is an opt-in",
    )
    allow_unconsented_in_lists: tuple[str, ...] = Field(
        default=(),
        description="segsync lists (names such as 'tag: vip', or ids) that may hold contacts "
        "without opt-in evidence; each run warns while set",
    )

    @field_validator("lists")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [i for i in value if i <= 0]
        if bad:
            raise ValueError(f"list ids are positive integers (got {bad}); see Contacts > Lists")
        return tuple(dict.fromkeys(value))

    @field_validator("allow_unconsented_in_lists", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() for v in value)
        return value


class BrevoConfig(ConnectorConfig):
    """The `brevo` block of segsync.yaml."""

    #: Brevo's API hosts (the second its former name)
    vendor_hosts: ClassVar[tuple[str, ...]] = ("api.brevo.com", "api.sendinblue.com")

    api_key: SecretStr
    tier: Literal["general", "advanced", "extended"] = "general"
    tags: Literal["lists", "attribute"] = Field(
        default="lists", description="tags as lists in the owned folder, or one attribute"
    )
    tags_attribute: str = "SEGSYNC_TAGS"
    folder: str = Field(default="segsync", description="the owned folder of tag/segment lists")
    consent_attribute: str = Field(
        default="SEGSYNC_CONSENT",
        description="segsync's own consent attribute: an echo of what it wrote, never evidence",
    )
    consent: ConsentEvidence = Field(default_factory=ConsentEvidence)
    attribute_names: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> Brevo attribute name overrides"
    )
    double_opt_in: DoubleOptIn | None = None
    import_threshold: int | None = Field(
        default=None, ge=1, description="fixed size from which imports are used (None: measured)"
    )
    read_overlap_seconds: float = Field(default=300.0, ge=0)
    import_timeout_seconds: float = Field(default=3 * 3600.0, gt=0)
