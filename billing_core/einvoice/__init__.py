"""Structured e-invoices: Factur-X / ZUGFeRD (EN 16931), embedded in the PDF/A-3."""
