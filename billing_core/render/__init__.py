"""Rendering invoices: Jinja2 HTML, WeasyPrint PDF, and the JSON document."""
