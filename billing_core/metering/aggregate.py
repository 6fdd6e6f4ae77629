"""Measuring a billing cycle: every subscription's usage of each of its product's meters.

One GROUP BY over the cycle's events (joined to the subscriptions active in the cycle)
computes all count/sum/max/unique_count meters at once, each meter an aggregate with its
own FILTER (WHERE event_name AND filter); `last` meters need an ordering, so they take one
window query. Nothing is aggregated in Python: on SQLite the exact decimal sum and max are
SQL aggregate functions registered on the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection, Engine, text

from billing_core.catalog import NUMERIC_AGGREGATIONS, Catalog, Meter, Subscription
from billing_core.metering.json_sql import JsonSql, Params, json_sql
from billing_core.periods import BillingPeriod


@dataclass(frozen=True)
class MeterUsage:
    """One subscription's usage of one meter in one cycle."""

    meter: str
    quantity: Decimal
    matched_events: int = 0
    skipped_missing: int = 0
    skipped_not_number: int = 0


@dataclass
class PeriodUsage:
    period: BillingPeriod
    subscriptions: list[Subscription]
    usage: dict[str, dict[str, MeterUsage]] = field(default_factory=dict)

    def skipped_by_meter(self) -> dict[str, dict[str, int]]:
        """Events not counted per meter and why (missing property / not a number)."""
        totals: dict[str, dict[str, int]] = {}
        for meters in self.usage.values():
            for u in meters.values():
                if u.skipped_missing or u.skipped_not_number:
                    entry = totals.setdefault(u.meter, {"missing_property": 0, "not_a_number": 0})
                    entry["missing_property"] += u.skipped_missing
                    entry["not_a_number"] += u.skipped_not_number
        return totals


def active_subscriptions(catalog: Catalog, period: BillingPeriod,
                         customers: list[str] | None = None) -> list[Subscription]:
    """Subscriptions that overlap the cycle, optionally only for some customers."""
    chosen = set(customers) if customers else None
    return [s for s in catalog.subscriptions
            if s.start < period.end_date and (s.end is None or s.end > period.start_date)
            and (chosen is None or s.customer in chosen)]


def _predicate(sql: JsonSql, meter: Meter) -> str:
    name = f"e.event_name = {sql.params.add(meter.event_name)}"
    return f"({name} AND {sql.filter(meter.filter)})" if meter.filter else f"({name})"


def _aggregate_columns(sql: JsonSql, index: int, meter: Meter) -> list[str]:
    """SELECT columns for one meter: q{i} quantity, n{i} matched, m{i} missing, x{i} NaN."""
    match = _predicate(sql, meter)
    prop = meter.over_property
    columns = [f"COUNT(*) FILTER (WHERE {match}) AS n{index}"]
    agg = meter.aggregation
    if agg == "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match}) AS q{index}")
    elif agg in ("sum", "max"):
        func = sql.sum_function if agg == "sum" else sql.max_function
        columns.append(f"{func}({sql.number(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_number(prop)}) AS q{index}")
    elif agg == "unique_count":
        columns.append(f"COUNT(DISTINCT {sql.raw(prop)}) FILTER "
                       f"(WHERE {match} AND {sql.is_present(prop)}) AS q{index}")
    if agg != "count":
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_missing(prop)}) AS m{index}")
    if agg in NUMERIC_AGGREGATIONS:
        columns.append(f"COUNT(*) FILTER (WHERE {match} AND {sql.is_present(prop)} "
                       f"AND NOT {sql.is_number(prop)}) AS x{index}")
    return columns


def _scope(sql: JsonSql, period: BillingPeriod, meters: list[Meter],
           customers: list[str] | None) -> str:
    """FROM/WHERE: the cycle's events of the meters' names, joined to the subscriptions
    active in the cycle (selected by date in SQL, so any number of them fits)."""
    p = sql.params
    start, end = p.add(sql.timestamp(period.start)), p.add(sql.timestamp(period.end))
    names = ", ".join(p.add(n) for n in sorted({m.event_name for m in meters}))
    where = (f"FROM event e JOIN subscription s ON s.customer_id = e.customer_id "
             f"WHERE e.ts >= {start} AND e.ts < {end} "
             f"AND s.start_date < {p.add(period.end_date)} "
             f"AND (s.end_date IS NULL OR s.end_date > {p.add(period.start_date)}) "
             f"AND e.ts >= s.start_date AND (s.end_date IS NULL OR e.ts < s.end_date) "
             f"AND e.event_name IN ({names})")
    if customers:
        where += f" AND s.customer_id IN ({', '.join(p.add(c) for c in customers)})"
    return where


def _quantity(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        raise TypeError("a float reached metering")
    return Decimal(value) if isinstance(value, Decimal | int) else Decimal(str(value))


def measure_period(engine: Engine, catalog: Catalog, period: BillingPeriod,
                   customers: list[str] | None = None) -> PeriodUsage:
    """Usage of every active subscription for every meter its product charges."""
    subscriptions = active_subscriptions(catalog, period, customers)
    result = PeriodUsage(period=period, subscriptions=subscriptions)
    charged = {p.key: [c.meter for c in p.charges] for p in catalog.products}
    meter_keys = sorted({k for s in subscriptions for k in charged.get(s.product, [])})
    meters = [catalog.meter(k) for k in meter_keys]
    rows: dict[str, dict] = {}
    last_values: dict[tuple[str, str], Decimal] = {}
    if subscriptions and meters:
        with engine.connect() as conn:
            params = Params()
            sql = json_sql(conn.dialect.name, params)
            columns = [c for i, m in enumerate(meters) for c in _aggregate_columns(sql, i, m)]
            query = (f"SELECT s.id AS subscription_id, {', '.join(columns)} "
                     f"{_scope(sql, period, meters, customers)} GROUP BY s.id")
            for row in conn.execute(text(query), params.values).mappings():
                rows[row["subscription_id"]] = dict(row)
            for meter in meters:
                if meter.aggregation == "last":
                    for sub_id, value in _last_values(conn, meter, period, customers):
                        last_values[(sub_id, meter.key)] = value
    for s in subscriptions:
        row = rows.get(s.id, {})
        usage: dict[str, MeterUsage] = {}
        for i, meter in enumerate(meters):
            if meter.key not in charged.get(s.product, []):
                continue
            quantity = (last_values.get((s.id, meter.key), Decimal(0))
                        if meter.aggregation == "last" else _quantity(row.get(f"q{i}")))
            usage[meter.key] = MeterUsage(
                meter=meter.key, quantity=quantity, matched_events=int(row.get(f"n{i}") or 0),
                skipped_missing=int(row.get(f"m{i}") or 0),
                skipped_not_number=int(row.get(f"x{i}") or 0))
        result.usage[s.id] = usage
    return result


def _last_values(conn: Connection, meter: Meter, period: BillingPeriod,
                 customers: list[str] | None) -> list[tuple[str, Decimal]]:
    params = Params()
    sql = json_sql(conn.dialect.name, params)
    prop = meter.over_property
    query = (f"SELECT subscription_id, value FROM ("
             f"SELECT s.id AS subscription_id, {sql.number(prop)} AS value, "
             f"ROW_NUMBER() OVER (PARTITION BY s.id ORDER BY e.ts DESC, e.event_id DESC) AS rn "
             f"{_scope(sql, period, [meter], customers)} "
             f"AND {_predicate(sql, meter)} AND {sql.is_number(prop)}) ranked WHERE rn = 1")
    return [(sub_id, _quantity(value))
            for sub_id, value in conn.execute(text(query), params.values)]
