"""The pricing catalog: meters, products with charges, customers, subscriptions, settings.

`load_catalog_file` / `parse_catalog` validate a whole document and list every problem
with its place (``meters[1].over_property: required for aggregation 'sum'``).
"""

from billing_core.catalog.models import (
    AGGREGATIONS,
    NUMERIC_AGGREGATIONS,
    NUMERIC_OPERATORS,
    Catalog,
    Charge,
    Condition,
    Customer,
    Discount,
    Filter,
    Meter,
    Product,
    Seller,
    Settings,
    Subscription,
    Taxes,
    TaxRate,
)
from billing_core.catalog.validation import CatalogError, load_catalog_file, parse_catalog

__all__ = [
    "AGGREGATIONS", "NUMERIC_AGGREGATIONS", "NUMERIC_OPERATORS", "Catalog", "CatalogError",
    "Charge", "Condition", "Customer", "Discount", "Filter", "Meter", "Product", "Seller",
    "Settings", "Subscription", "TaxRate", "Taxes", "load_catalog_file", "parse_catalog",
]
