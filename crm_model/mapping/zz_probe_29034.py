"""ZzProbe29034 records -> unified rows (pure functions)."""

from __future__ import annotations

from crm_model.mapping import MapContext, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row


@mapping("zz_probe_29034", "contacts", version=1)
def map_contact(raw: dict, ctx: MapContext) -> list[Row]:
    return [person_row(
        f"contact:{raw['id']}",
        email=v.email(raw.get("email")),
        display_name=v.text(raw.get("name")),
        seen_at=v.timestamp(raw.get("updated_at")),
    )]
