"""The use cases: one function per business operation, each over a unit of work.

Flows, the command line and the benchmarks call these same functions.
"""
