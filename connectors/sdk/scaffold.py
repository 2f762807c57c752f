"""`crmhub connectors new NAME`: a connector, its mapping and its test, ready to edit.

The generated files run as they are (a REST API with token auth, one `contacts` stream
with cursor paging); the test replays a page on a local HTTP server.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from crmhub.errors import ConfigError

CONNECTOR = Template('''"""$title: <what this source is, and which of its data crmhub reads>.

    sources:
      my_$name:
        connector: $name
        config:
          token: $${${upper}_TOKEN}
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import SecretStr

from connectors.sdk import Connector, Http, HttpConfig, StreamState, paginate, stream


class ${camel}Config(HttpConfig):
    base_url: str = "https://api.$name.example"
    token: SecretStr
    page_size: int = 100


class ${camel}Connector(Connector):
    Config = ${camel}Config
    config: ${camel}Config

    def __init__(self, config: ${camel}Config, **kw):
        super().__init__(config, **kw)
        self.http = Http(config.base_url, name="$name", **config.http_options(),
                         headers={"Authorization": f"Bearer {config.token.get_secret_value()}"})

    @stream(primary_key="id", cursor="updated_at")
    def contacts(self, state: StreamState) -> Iterator[list[dict]]:
        since = state.since()

        def fetch(cursor):
            params = {"limit": self.config.page_size, "cursor": cursor,
                      "updated_since": since.isoformat() if since else None}
            body = self.http.get_json("/v1/contacts", params=params)
            return body["data"], body.get("next_cursor")

        yield from paginate(fetch, what="$name contacts")

    def close(self) -> None:
        self.http.close()
''')

MAPPING = Template('''"""$title records -> unified rows (pure functions)."""

from __future__ import annotations

from crm_model.mapping import MapContext, Row, mapping
from crm_model.mapping import values as v
from crm_model.mapping.common import person_row


@mapping("$name", "contacts", version=1)
def map_contact(raw: dict, ctx: MapContext) -> list[Row]:
    return [person_row(
        f"contact:{raw['id']}",
        email=v.email(raw.get("email")),
        display_name=v.text(raw.get("name")),
        seen_at=v.timestamp(raw.get("updated_at")),
    )]
''')

TEST = Template('''"""$title connector against a local HTTP server replaying its API."""

from __future__ import annotations

from crm_model.mapping import MapContext
from crm_model.mapping.$name import map_contact
from crm_model.sync import sync
from connectors.$name import ${camel}Config, ${camel}Connector

PAGE_1 = {"data": [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com",
                    "updated_at": "2026-01-02T03:04:05Z"}], "next_cursor": "c2"}
PAGE_2 = {"data": [{"id": 2, "name": "Bad Mail", "email": "nope", "updated_at": "2026-01-03T00:00:00Z"},
                   {"id": 3, "name": "Bad Date", "email": "c@example.com", "updated_at": "next week"}],
          "next_cursor": None}


def test_mapping():
    (row,) = map_contact(PAGE_1["data"][0], MapContext("src", "contacts", "$name"))
    assert row.values["email"] == "ada@example.com"


def test_sync(httpserver, warehouse):
    httpserver.expect_request("/v1/contacts", query_string={"limit": "100"}).respond_with_json(PAGE_1)
    httpserver.expect_request("/v1/contacts", query_string={"limit": "100", "cursor": "c2"}).respond_with_json(PAGE_2)
    connector = ${camel}Connector(${camel}Config(base_url=httpserver.url_for("/"), token="t"), source="src")
    result = sync(warehouse, "src", connector, "$name")
    # a bad email is a field warning (the contact loads without it); a bad timestamp rejects
    assert (result.read, result.loaded, result.rejected, result.warnings) == (3, 2, 1, 1)
''')


def scaffold(name: str, root: Path) -> list[Path]:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ConfigError(f"connector name {name!r}: use lower-case letters, digits and _")
    camel = "".join(p.capitalize() for p in name.split("_"))
    values = {"name": name, "camel": camel, "upper": name.upper(), "title": camel}
    targets = {
        root / "connectors" / f"{name}.py": CONNECTOR,
        root / "crm_model" / "mapping" / f"{name}.py": MAPPING,
        root / "tests" / "connectors" / f"test_{name}.py": TEST,
    }
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise ConfigError(f"not overwriting {', '.join(existing)}")
    for path, template in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values))
    return list(targets)
