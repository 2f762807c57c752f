"""Every GraphQL document the shopify connector sends, validated against Shopify's real schema.

The schema is Shopify's own introspection of the Admin GraphQL API at the version the
connector pins (2026-10), as Shopify publishes it in its npm package `@shopify/dev-mcp`
(`dist/data/admin_2026-10.json.gz`, ISC licence), fetched with `npm pack` when the tests
run (tests/vendor_packages.py), never copied into this repository.
A document that names a field the schema lacks, passes a wrong argument, or selects a
deprecated field fails here, before Shopify removes the field and the stream fails on
every run.
"""

from __future__ import annotations

import gzip
import json
from functools import cache

import pytest
from graphql import GraphQLSchema, build_client_schema, parse, validate
from graphql.validation import NoDeprecatedCustomRule, specified_rules

from connectors.shopify import queries
from connectors.shopify.streams import ShopifyConfig
from tests.vendor_packages import npm_file

PACKAGE, VERSION = "@shopify/dev-mcp", "1.16.0"
PINNED = ShopifyConfig.model_fields["api_version"].default  # the version the connector sends
INTROSPECTION = f"package/dist/data/admin_{PINNED}.json.gz"


@cache
def admin_schema() -> GraphQLSchema:
    # assume_valid: Shopify's schema breaks a graphql-js rule on deprecated interface fields
    # (MediaImage.metafield); that says nothing about the documents validated against it
    introspection = json.loads(gzip.decompress(npm_file(PACKAGE, VERSION, INTROSPECTION)))
    return build_client_schema(introspection["data"], assume_valid=True)


def problems(document: str) -> list[str]:
    return [error.message for error in validate(admin_schema(), parse(document),
                                                 [*specified_rules, NoDeprecatedCustomRule])]


def test_the_stored_schema_is_a_real_admin_schema():
    schema = admin_schema()
    assert {"orders", "customers", "products", "bulkOperationRunQuery"} <= (
        set(schema.query_type.fields) | set(schema.mutation_type.fields))
    assert schema.type_map["CustomerPhoneNumber"].fields["marketingState"].deprecation_reason


@pytest.mark.parametrize(("name", "document"), sorted(queries.documents().items()))
def test_every_document_the_connector_sends_is_valid_and_uses_no_deprecated_field(name, document):
    assert problems(document) == []


def test_the_check_catches_what_it_is_for():
    """The validation fails on the deprecated phone consent fields the customers query used to select."""
    old = queries.page_query(queries.CUSTOMERS).replace(
        "defaultPhoneNumber { phoneNumber }",
        "defaultPhoneNumber { phoneNumber marketingState marketingOptInLevel marketingUpdatedAt }")
    assert old != queries.page_query(queries.CUSTOMERS)
    found = problems(old)
    assert any("CustomerPhoneNumber.marketingState is deprecated" in p for p in found), found
    assert any("Cannot query field" in p for p in problems("query Q { shop { noSuchField } }"))
