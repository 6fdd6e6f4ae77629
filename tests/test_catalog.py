from decimal import Decimal

import pytest

from billing_core.catalog import CatalogError, load_catalog_file, parse_catalog
from tests.conftest import DATA, apply, catalog_document, catalog_with, load_catalog


def _doc() -> dict:
    return catalog_document()


def test_issue_example_is_accepted_as_written(issue_catalog):
    assert [m.key for m in issue_catalog.meters] == ["api_calls", "tokens", "peak_users"]
    api = issue_catalog.meter("api_calls")
    assert api.filter.conditions[0].value == "POST"
    assert api.filter.groups[0].logic == "or"
    pro = issue_catalog.product("pro")
    assert pro.base_price == Decimal("49.00")
    assert pro.charges[1].price_per_unit == Decimal("0.00004")


def test_every_problem_is_listed_with_its_place():
    doc = _doc()
    doc["meters"][1].pop("over_property")
    doc["products"][0]["charges"].append({"meter": "tokenz", "price_per_unit": "1"})
    doc["meters"][0]["filter"]["conditions"][0]["operator"] = "like"
    doc["subscriptions"][0]["customer"] = "cus_nobody"
    with pytest.raises(CatalogError) as error:
        parse_catalog(doc)
    problems = error.value.problems
    assert "meters[1].over_property: required for aggregation 'sum'" in problems
    assert "products[0].charges[3].meter: unknown meter 'tokenz'" in problems
    assert any(p.startswith("meters[0].filter.conditions[0].operator: unknown operator 'like'")
               for p in problems)
    assert "subscriptions[0].customer: unknown customer 'cus_nobody'" in problems
    assert len(problems) == 4


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["meters"][0].update(aggregation="median"),
     "meters[0].aggregation: must be one of"),
    (lambda d: d.update(currency="XYZ"), "currency: unknown ISO 4217 currency 'XYZ'"),
    (lambda d: d["products"][0]["charges"][0].update(price_per_unit="abc"),
     "products[0].charges[0].price_per_unit: must be a decimal number"),
    (lambda d: d["products"][0]["charges"][0].update(free_threshold=-5),
     "products[0].charges[0].free_threshold: must not be negative"),
    (lambda d: d["products"][0].update(charges=[{"meter": "tokens", "price_per_unit": "1"}] * 11),
     "products[0].charges: at most 10 charges per product"),
    (lambda d: d["meters"][0]["filter"]["conditions"].append(
        {"key": "n", "operator": "greater_than", "value": "ten"}),
     "meters[0].filter.conditions[1].value: operator 'greater_than' needs a number"),
    (lambda d: d["customers"].append(dict(d["customers"][0])),
     "customers[1].id: duplicate customer id 'cus_acme'"),
    (lambda d: d["subscriptions"][0].update(start="01/02/2026"),
     "subscriptions[0].start: must be a date YYYY-MM-DD"),
    (lambda d: d["meters"][0].update(colour="red"), "meters[0].colour: unknown field"),
])
def test_single_problems_are_named(change, expected):
    doc = _doc()
    change(doc)
    with pytest.raises(CatalogError) as error:
        parse_catalog(doc)
    assert any(p.startswith(expected) for p in error.value.problems), error.value.problems


def test_filter_groups_nest_three_levels_and_more():
    doc = _doc()
    inner = {"logic": "and", "conditions": [{"key": "region", "operator": "equals",
                                             "value": "eu"}]}
    level2 = {"logic": "or", "conditions": [{"key": "tier", "operator": "equals",
                                             "value": "gold"}], "groups": [inner]}
    doc["meters"][0]["filter"]["groups"][0]["groups"] = [level2]
    catalog = parse_catalog(doc)
    assert catalog.meter("api_calls").filter.groups[0].groups[0].groups[0].conditions[0].value \
        == "eu"


def test_yaml_floats_are_read_as_exact_decimals(tmp_path):
    text = (DATA / "issue_catalog.yaml").read_text().replace('"0.00004"', "0.00004")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    charge = load_catalog_file(path).product("pro").charges[1]
    assert charge.price_per_unit == Decimal("0.00004")
    assert isinstance(charge.price_per_unit, Decimal)


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("currency: USD\nmeters: [\n")
    with pytest.raises(CatalogError, match=r"(?s)broken.yaml.*line 3, column 1: invalid YAML"):
        load_catalog_file(path)


def test_overlapping_subscriptions_that_share_a_meter_are_refused():
    subs = [{"id": "s1", "customer": "cus_acme", "product": "pro", "start": "2026-01-01"},
            {"id": "s2", "customer": "cus_acme", "product": "pro", "start": "2026-06-01"}]
    with pytest.raises(CatalogError, match=r"subscriptions\[1\]: overlaps s1"):
        catalog_with(subscriptions=subs)


def _by_key(catalog):
    return ({m.key: m for m in catalog.meters}, {p.key: p for p in catalog.products},
            catalog.customers, catalog.subscriptions, catalog.currency, catalog.seller)


def test_apply_round_trips_exactly_and_is_idempotent(engine):
    doc = _doc()
    doc["meters"][0]["filter"]["conditions"].append(
        {"key": "latency_ms", "operator": "less_than", "value": Decimal("250.5")})
    catalog = parse_catalog(doc)
    apply(engine, catalog)
    stored = load_catalog(engine)
    assert _by_key(stored) == _by_key(catalog)
    value = stored.meter("api_calls").filter.conditions[1].value
    assert isinstance(value, Decimal) and value == Decimal("250.5")
    apply(engine, catalog)  # applying again changes nothing
    assert _by_key(load_catalog(engine)) == _by_key(catalog)


def test_a_refused_apply_leaves_the_database_unchanged(engine, issue_catalog):
    from sqlalchemy import text

    apply(engine, issue_catalog)
    # Valid on its own, but its new subscription overlaps one applied earlier on the same
    # meters: refused as a whole, so the renamed customer is not applied either.
    doc = _doc()
    doc["customers"][0]["name"] = "Acme Renamed"
    doc["subscriptions"] = [{"id": "sub_second", "customer": "cus_acme", "product": "pro",
                             "start": "2026-06-01"}]
    with pytest.raises(CatalogError, match=r"subscriptions\[0\]: overlaps sub_acme_pro"):
        apply(engine, parse_catalog(doc))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM customer")).scalar_one() == "Acme Corp"
    assert load_catalog(engine).customer("cus_acme").name == "Acme Corp"
