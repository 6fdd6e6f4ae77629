"""Prefect flows and tasks: they call billing_core and add retries, logs and run history."""
