"""Shopify (GraphQL Admin API): orders, customers and products of one shop.

    sources:
      shop:
        connector: shopify
        start_date: 2026-01-01
        config:
          shop: my-shop                    # or base_url: https://my-shop.myshopify.com
          access_token: ${SHOPIFY_TOKEN}   # scopes read_orders (+ read_all_orders), read_customers, read_products
          api_version: "2026-10"           # pinned; Shopify supports each version for 12 months
          include_staff: true              # sales rep = the order's staff member (Plus/Advanced only)
          bulk_threshold: 20000            # first sync as one bulk export when the shop is this big

Modules: ``client`` talks GraphQL (throttling, errors, bulk exports), ``queries`` holds
what is asked for, ``streams`` the connector and its streams. See docs/connectors/shopify.md.
"""

from connectors.shopify.streams import ShopifyConfig, ShopifyConnector

__all__ = ["ShopifyConfig", "ShopifyConnector"]
