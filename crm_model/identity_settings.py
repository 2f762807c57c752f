"""The ``identity:`` block of crmhub.yml: how identity resolution matches and merges, and
the counts a run reports.

Kept apart from :mod:`crm_model.identity` (numpy, rapidfuzz) so loading the config, and
every command that only reports on a run, stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


@dataclass
class ModelResult:
    """What one identity resolution run did."""

    persons: int = 0  # persons touched by this run
    created: int = 0
    merged: int = 0
    attached: int = 0
    looked_at: int = 0  # source_person rows re-clustered


class IdentitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Gmail ignores dots and +tags (a.b+news@gmail.com is ab@gmail.com); Outlook, iCloud
    # and Fastmail ignore +tags. Off by default: a company domain may treat them as distinct.
    email_provider_rules: bool = False
    # Custom identifiers: name -> {source: column or field}. The value is read from
    # source_person.attributes (csv columns with no warehouse field), else from the lead's
    # answers: a form or webhook field of that name, or a Typeform hidden field (kept as
    # ``hidden.<name>``). Records that share a value of one identifier are the same person,
    # across sources.
    identifiers: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Probabilistic matching on names, address, birth date, company, email local part.
    probabilistic: bool = True
    match_threshold: float = Field(0.95, gt=0, lt=1)
    # Never join two records probabilistically when their given names differ outright and
    # their birth dates differ outright or one is missing: relatives sharing a surname, an address and a landline would
    # otherwise become one person. Exception: the fields a household does not share (all
    # compared fields but the given name, the birth date and ``household_fields``: the email
    # name, compared id numbers) add ``household_override_bits`` of evidence (8 bits: a
    # value about one in 256 pairs agree on by chance), so a record whose name and birth
    # date were both mistyped still joins through its id number. Company is a household
    # field here: relatives share a family business.
    household_guard: bool = True
    household_fields: list[str] = Field(default_factory=lambda: [
        "last_name", "street", "postal_code", "city", "region", "country", "phone", "company"])
    household_override_bits: float = 8.0
    # Up to this many source_person rows, every run with something new resolves from scratch
    # (cheap at that size, and independent of the order data arrived in); above, runs are
    # incremental with the stored model.
    full_run_below: int = Field(20_000, ge=0)
    # attributes columns compared too (each as a code: exact / one edit / different)
    compare_attributes: list[str] = Field(default_factory=list)
    # attributes column -> person field it stands for when that field is empty
    attribute_fields: dict[str, str] = Field(default_factory=dict)
    # An email or phone given with more distinct names than this is shared (a switchboard,
    # info@, a family landline): it then joins only records whose names agree.
    shared_identifier_names: int = Field(1, ge=1)
    # Pairs of references that are never / always one person: an email, a +phone, or
    # SOURCE/EXTERNAL_ID of a source_person row.
    never_merge: list[tuple[str, str]] = Field(default_factory=list)
    must_merge: list[tuple[str, str]] = Field(default_factory=list)
    # Survivorship: field (or "*" for every field) -> sources, most trusted first. A value
    # from a listed source beats any other; among equals the most recent non-empty wins.
    source_priority: dict[str, list[str]] = Field(default_factory=dict)

    def priority(self, field: str) -> list[str]:
        return self.source_priority.get(field) or self.source_priority.get("*") or []


# the person fields the golden record chooses (crm_model.mapping.common.PERSON_FIELDS;
# repeated here so loading crmhub.yml imports no mapping code)
GOLDEN_FIELDS = (
    "display_name", "first_name", "last_name", "email", "phone", "company", "job_title",
    "street", "postal_code", "city", "region", "country", "birth_date",
)

__all__ = ["GOLDEN_FIELDS", "IdentitySettings", "ModelResult"]
