"""Every GraphQL document the shopify connector sends, validated against Shopify's real schema.

The schema is the Admin GraphQL SDL of 2026-07, generated from a live introspection of a
shop (tests/fixtures/shopify/admin_schema_2026-07.graphql.gz; its source is in NOTES.md).
A document that names a field the schema lacks, passes a wrong argument, or selects a
deprecated field fails here, before Shopify removes the field and the stream fails on
every run.
"""

from __future__ import annotations

import gzip
from functools import cache

import pytest

graphql = pytest.importorskip("graphql")  # the test extra installs graphql-core

from graphql import GraphQLSchema, build_schema, parse, validate  # noqa: E402
from graphql.validation import NoDeprecatedCustomRule, specified_rules  # noqa: E402

from connectors.shopify import queries  # noqa: E402
from tests.conftest import FIXTURES  # noqa: E402

SDL = FIXTURES / "shopify" / "admin_schema_2026-07.graphql.gz"


@cache
def admin_schema() -> GraphQLSchema:
    # assume_valid: Shopify's schema breaks a graphql-js rule on deprecated interface fields
    # (MediaImage.metafield); that says nothing about the documents validated against it
    return build_schema(gzip.decompress(SDL.read_bytes()).decode(), assume_valid=True)


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
