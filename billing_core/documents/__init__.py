"""Invoices and credit notes: values, JSON documents, numbers."""
