"""Credits: usage entitlements (units per cycle, with rollover) and prepaid monetary
grants applied to invoices. Pure values and functions; the ledger lives in the database
(`credit_grant`, `credit_ledger`) and is written by `billing_core.services.credits`."""
