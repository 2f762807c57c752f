"""ZzProbe29034 connector against a local HTTP server replaying its API."""

from __future__ import annotations

from crm_model.mapping import MapContext
from crm_model.mapping.zz_probe_29034 import map_contact
from crm_model.sync import sync
from connectors.zz_probe_29034 import ZzProbe29034Config, ZzProbe29034Connector

PAGE_1 = {"data": [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com",
                    "updated_at": "2026-01-02T03:04:05Z"}], "next_cursor": "c2"}
PAGE_2 = {"data": [{"id": 2, "name": "Bad Mail", "email": "nope", "updated_at": "2026-01-03T00:00:00Z"},
                   {"id": 3, "name": "Bad Date", "email": "c@example.com", "updated_at": "next week"}],
          "next_cursor": None}


def test_mapping():
    (row,) = map_contact(PAGE_1["data"][0], MapContext("src", "contacts", "zz_probe_29034"))
    assert row.values["email"] == "ada@example.com"


def test_sync(httpserver, warehouse):
    httpserver.expect_request("/v1/contacts", query_string={"limit": "100"}).respond_with_json(PAGE_1)
    httpserver.expect_request("/v1/contacts", query_string={"limit": "100", "cursor": "c2"}).respond_with_json(PAGE_2)
    connector = ZzProbe29034Connector(ZzProbe29034Config(base_url=httpserver.url_for("/"), token="t"), source="src")
    result = sync(warehouse, "src", connector, "zz_probe_29034")
    # a bad email is a field warning (the contact loads without it); a bad timestamp rejects
    assert (result.read, result.loaded, result.rejected, result.warnings) == (3, 2, 1, 1)
