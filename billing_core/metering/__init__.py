"""Metering: usage per meter over windows of time, aggregated in SQL."""

from billing_core.metering.aggregate import (
    Allowance,
    MeterUsage,
    Usage,
    Window,
    measure,
    measure_each,
    skipped_by_meter,
)

__all__ = ["Allowance", "MeterUsage", "Usage", "Window", "measure", "measure_each",
           "skipped_by_meter"]
