"""The GraphQL the shopify connector sends, built from one field list per resource.

Each resource (orders, customers, products) is selected the same way whether it is
read page by page or exported by a bulk operation, so both paths hand the mapping
records of one shape. Money is read as ``shopMoney`` only: the warehouse keeps every
amount in the shop's currency, so amounts add up across orders and match product prices.

Cost: Shopify reserves the worst case of a query (``first`` times the cost of a node,
nested connections multiplied through) and refuses any query above 1000 points. Page
sizes are therefore chosen at run time from the cost Shopify reports (streams.PageSize);
the children's ``first`` below keeps one order near 115 points, and orders with more
line items (products with more variants) get the rest by follow-up queries.

Every document built here is validated against a live-introspected Admin schema in
tests/connectors/test_shopify_schema.py (deprecated fields fail it).
"""

from __future__ import annotations

from dataclasses import dataclass

MONEY = "{ shopMoney { amount currencyCode } }"

ADDRESS = """firstName lastName company address1 address2 city province provinceCode zip
    country countryCodeV2 phone"""

# What an order says of its customer: enough for the same person row the customers
# stream writes (same function, same values), so the two never contradict each other.
CUSTOMER_CONTACT = f"""id firstName lastName displayName updatedAt
    defaultEmailAddress {{ emailAddress marketingState }}
    defaultPhoneNumber {{ phoneNumber }}
    defaultAddress {{ {ADDRESS} }}"""

VISIT = "id occurredAt landingPage referrerUrl source utmParameters { source medium campaign content term }"

ORDER_FIELDS = f"""id name createdAt updatedAt processedAt cancelledAt cancelReason closedAt test
    displayFinancialStatus displayFulfillmentStatus currencyCode presentmentCurrencyCode taxesIncluded
    subtotalPriceSet {MONEY} totalDiscountsSet {MONEY} totalTaxSet {MONEY}
    totalShippingPriceSet {MONEY} totalPriceSet {MONEY} totalRefundedSet {MONEY}
    discountCodes note customAttributes {{ key value }} tags email phone sourceName customerAcceptsMarketing
    customer {{ {CUSTOMER_CONTACT} }}
    billingAddress {{ {ADDRESS} }}
    shippingAddress {{ {ADDRESS} }}
    customerJourneySummary {{ ready daysToConversion firstVisit {{ {VISIT} }} lastVisit {{ {VISIT} }} }}
    refunds(first: 5) {{ id createdAt note totalRefundedSet {MONEY} }}"""

# Needs the read_users scope, and Shopify grants it only to Plus/Advanced shops.
STAFF_MEMBER = "staffMember { id name }"

LINE_ITEM_FIELDS = f"""id title variantTitle sku quantity currentQuantity customAttributes {{ key value }}
    originalUnitPriceSet {MONEY}
    discountAllocations {{ allocatedAmountSet {MONEY} }}
    variant {{ id }} product {{ id }}"""

CUSTOMER_FIELDS = f"""id firstName lastName displayName note tags createdAt updatedAt state
    numberOfOrders amountSpent {{ amount currencyCode }}
    defaultEmailAddress {{ emailAddress marketingState marketingOptInLevel marketingUpdatedAt }}
    defaultPhoneNumber {{ phoneNumber }}
    defaultAddress {{ id {ADDRESS} }}"""
# SMS consent is not read: CustomerPhoneNumber.marketing* are deprecated (in favour of
# smsMarketingConsent on the phone number) and Customer.smsMarketingConsent is deprecated
# in favour of them, in every schema up to 2026-07; the warehouse keeps email consent only.

PRODUCT_FIELDS = "id title handle productType vendor status tags createdAt updatedAt"

# unitCost (what a unit costs the shop, in the shop's currency) gives the reports' gross
# margin; InventoryItem is readable with read_products since 2025-01 (no read_inventory needed).
VARIANT_FIELDS = """id title sku price compareAtPrice barcode createdAt updatedAt
    inventoryItem { unitCost { amount currencyCode } }"""


@dataclass(frozen=True)
class Child:
    """A connection read inside each node (an order's line items, a product's variants)."""

    field: str  # lineItems
    node_type: str  # LineItem: the type in the children's gids, used to join bulk output
    fields: str
    first: int  # per node in a page; the rest comes by follow-up queries


@dataclass(frozen=True)
class Resource:
    """A top-level connection that is one stream: ``orders``, ``customers``, ``products``."""

    name: str  # the query root field, and the stream's name
    node_type: str  # Order
    fields: str
    children: tuple[Child, ...] = ()

    def child(self, node_type: str) -> Child | None:
        return next((c for c in self.children if c.node_type == node_type), None)


LINE_ITEMS = Child("lineItems", "LineItem", LINE_ITEM_FIELDS, first=10)
VARIANTS = Child("variants", "ProductVariant", VARIANT_FIELDS, first=20)

ORDERS = Resource("orders", "Order", ORDER_FIELDS, (LINE_ITEMS,))
ORDERS_WITH_STAFF = Resource("orders", "Order", f"{ORDER_FIELDS}\n    {STAFF_MEMBER}", (LINE_ITEMS,))
CUSTOMERS = Resource("customers", "Customer", CUSTOMER_FIELDS)
PRODUCTS = Resource("products", "Product", PRODUCT_FIELDS, (VARIANTS,))

FOLLOW_UP_PAGE = 100  # children per follow-up query (100 line items cost about 800 points)


def page_query(resource: Resource) -> str:
    """One page of a resource, oldest change first, filtered by a search query."""
    children = "\n".join(
        f"{c.field}(first: {c.first}) {{ nodes {{ {c.fields} }} pageInfo {{ hasNextPage endCursor }} }}"
        for c in resource.children
    )
    op = f"Shopify{resource.name.title()}"
    return f"""query {op}($first: Int!, $after: String, $query: String) {{
  {resource.name}(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    edges {{ cursor node {{
    {resource.fields}
    {children}
    }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


def children_query(resource: Resource, child: Child) -> str:
    """The rest of one node's children, after the ones its page carried."""
    op = f"Shopify{resource.node_type}{child.field[0].upper()}{child.field[1:]}"  # ShopifyOrderLineItems
    return f"""query {op}($id: ID!, $after: String) {{
  node(id: $id) {{ ... on {resource.node_type} {{
    {child.field}(first: {FOLLOW_UP_PAGE}, after: $after) {{
      nodes {{ {child.fields} }} pageInfo {{ hasNextPage endCursor }}
    }}
  }} }}
}}"""


def bulk_query(resource: Resource, search: str | None) -> str:
    """The same selection as a bulk export: no page sizes, every connection as edges/node.

    Shopify writes each child as its own JSONL line with ``__parentId``.
    """
    args = f'(query: "{escape(search)}", sortKey: UPDATED_AT)' if search else "(sortKey: UPDATED_AT)"
    children = "\n".join(f"{c.field} {{ edges {{ node {{ {c.fields} }} }} }}" for c in resource.children)
    # refunds(first: 5) is a list, not a connection: bulk queries take it as it is
    return f"{{ {resource.name}{args} {{ edges {{ node {{ {resource.fields}\n {children} }} }} }} }}"


def count_query(resource: Resource) -> str:
    return f"""query Shopify{resource.name.title()}Count($query: String, $limit: Int) {{
  {resource.name}Count(query: $query, limit: $limit) {{ count precision }}
}}"""


SHOP_CURRENCY = "query ShopifyShop { shop { currencyCode } }"

BULK_RUN = """mutation ShopifyBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

BULK_POLL = """query ShopifyBulkPoll($id: ID!) {
  node(id: $id) { ... on BulkOperation {
    id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl
  } }
}"""


def documents(search: str | None = "updated_at:>='2026-01-01T00:00:00Z'") -> dict[str, str]:
    """Every GraphQL document the connector can send, by a name for test reports."""
    docs = {"shop": SHOP_CURRENCY, "bulk run": BULK_RUN, "bulk poll": BULK_POLL}
    for resource in (ORDERS, ORDERS_WITH_STAFF, CUSTOMERS, PRODUCTS):
        label = "orders with staff" if resource is ORDERS_WITH_STAFF else resource.name
        docs[f"{label} page"] = page_query(resource)
        docs[f"{label} count"] = count_query(resource)
        docs[f"{label} bulk"] = bulk_query(resource, search)
        docs[f"{label} bulk, everything"] = bulk_query(resource, None)
        for child in resource.children:
            docs[f"{label} {child.field}"] = children_query(resource, child)
    return docs


def escape(text: str) -> str:
    """A value inside a GraphQL string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def search_since(since_text: str | None) -> str | None:
    """Shopify search syntax for "changed at or after": dates must be quoted."""
    return f"updated_at:>='{since_text}'" if since_text else None
