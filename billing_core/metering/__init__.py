"""Metering: per-cycle aggregation of events in SQL, one service per aggregation."""

from billing_core.metering.aggregate import MeterUsage, PeriodUsage, measure_period

__all__ = ["MeterUsage", "PeriodUsage", "measure_period"]
