"""data/prices.json quotes AWS's own pages only, and every quoted price is the figure its quote states."""

import json
from urllib.parse import urlparse

import pytest

from yafdp.analysis.costs import PRICED_AS, PRICES_FILE, describe_price, load_prices, verified

DOCUMENT = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
AWS_HOSTS = {"aws.amazon.com", "docs.aws.amazon.com"}


def test_every_price_names_an_aws_page_its_region_and_when_it_was_read():
    for name, price in load_prices().items():
        source = price["source"]
        assert urlparse(source["page"]).hostname == "aws.amazon.com", name
        assert source["region"] and source["read"], name
        if source["quote_url"]:
            assert urlparse(source["quote_url"]).hostname in AWS_HOSTS, name
    assert set(PRICED_AS.values()) <= set(load_prices())


def test_no_vendor_page_is_quoted_anywhere_in_the_file():
    hosts = {urlparse(word.strip('"(),;')).hostname for word in PRICES_FILE.read_text().split()
             if word.strip('"(),;').startswith("http")}
    assert hosts <= AWS_HOSTS, hosts - AWS_HOSTS


@pytest.mark.parametrize("name", [n for n, p in DOCUMENT["prices"].items() if p["source"]["quote"]])
def test_a_quoted_price_is_the_figure_its_quote_states(name):
    price = DOCUMENT["prices"][name]
    stated = price["source"]["stated"]
    assert f"${stated['usd']}" in price["source"]["quote"] or stated["usd"] in price["source"]["quote"]
    assert float(stated["usd"]) / stated["per"] == pytest.approx(price["usd"] / price["per"], rel=1e-3)


def test_the_course_regions_price_is_used_where_aws_publishes_it():
    standard = load_prices()["step_functions_standard_transition"]
    assert standard["source"]["region"] == DOCUMENT["course_region"] == "eu-west-1"
    assert "Europe (Ireland)" in standard["source"]["quote"]


def test_an_unverified_price_says_so_where_it_is_shown():
    prices = load_prices()
    assert not verified(prices["eventbridge_custom_event"])
    assumed = describe_price(prices["eventbridge_custom_event"])
    assert "(no Region named; this workbook's assumption: check it on AWS's page" in assumed
    assert assumed.count("AWS's page") == 1, assumed  # said once (a reviewer read it said twice)
    assert "quoted from AWS's page" in describe_price(prices["lambda_request"])


def test_a_price_without_its_source_fields_is_refused_naming_the_key(tmp_path):
    from yafdp.errors import ConfigurationError

    broken = json.loads(PRICES_FILE.read_text())
    del broken["prices"]["lambda_request"]["source"]["read"]
    (tmp_path / "prices.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigurationError, match=r"prices.lambda_request.source needs read"):
        load_prices(tmp_path / "prices.json")


REGION_NAMES = {"eu-west-1": "Europe (Ireland)", "us-east-1": "US East (N. Virginia)"}


@pytest.mark.parametrize("name", sorted(DOCUMENT["prices"]))
def test_a_prices_region_is_the_one_its_aws_page_names(name):
    """A price is for the Region its quote (or the page's words the note quotes) names; a quote naming none is for a
    Region 'not stated': the cost model never passes a US example off as the course's Region."""
    source = DOCUMENT["prices"][name]["source"]
    said = f"{source['quote'] or ''} {source.get('note', '')}"
    if source["region"] == "not stated":
        assert not any(region in (source["quote"] or "") for region in REGION_NAMES.values()), name
    else:
        assert REGION_NAMES[source["region"]] in said, name
    if source["region"] != DOCUMENT["course_region"] and source["quote"]:
        assert "no stored copy shows the eu-west-1 rate" in source["note"] or source["region"] == "not stated", name


@pytest.mark.parametrize("name", [n for n, p in DOCUMENT["prices"].items() if not p["source"]["quote"]])
def test_an_unverified_price_says_which_aws_page_was_searched_and_what_its_copy_showed(name):
    source = DOCUMENT["prices"][name]["source"]
    assert source["quote_url"] is None and "stated" not in source
    assert "Searched again on" in source["note"] and source["page"] in source["note"], name
    assert "no rate" in source["note"] or "no custom-events rate" in source["note"] or "not found" in source["note"] \
        or "was found at all" in source["note"], name


def test_the_pages_searched_for_lines_left_unpriced_are_aws_pages_and_name_what_they_showed():
    searched = {k: v for k, v in DOCUMENT["searched_without_a_rate"].items() if k != "description"}
    assert {"eventbridge_scheduler_invocation", "cloudwatch_logs_ingestion"} <= set(searched)
    for name, entry in searched.items():
        assert urlparse(entry["page"]).hostname == "aws.amazon.com", name
        assert entry["found"] and name not in DOCUMENT["prices"], name  # not priced: no rate was found


def test_the_cost_model_multiplies_by_the_files_figures_and_nothing_else():
    """Each line of cost_per_million_orders is the usage times the price the file states (its cited figure): one
    unit of each usage per order costs exactly usd / per per order, times a million."""
    from yafdp.analysis.costs import Usage, cost_per_million_orders

    prices = load_prices()
    usage = Usage(orders=1, **{line: 1 for line in PRICED_AS})
    for line, cost in cost_per_million_orders(usage, prices).items():
        price = prices[PRICED_AS[line]]
        assert cost == pytest.approx(round(1_000_000 * price["usd"] / price["per"], 4)), line
