"""Billflow's domain and adapters. Plain Python: nothing in here imports Prefect."""
