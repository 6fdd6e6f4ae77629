"""Pricing: usage to invoice lines. Pure functions, Decimal only.

One module per price model (`per_unit`, `package`, `graduated`, `volume`,
`percentage`); `charges` applies a charge's free threshold and model; `minimums`,
`discounts` and `taxes` the layers above it; `lines` puts a cycle's invoice together in
the documented order: usage -> charge model -> minimums -> discounts -> taxes.
"""

from billing_core.pricing.charges import PricedCharge, price_charge
from billing_core.pricing.usage import ChargeUsage, Priced

__all__ = ["ChargeUsage", "Priced", "PricedCharge", "price_charge"]
