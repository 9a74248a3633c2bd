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
    assert "not shown by any stored copy" in describe_price(prices["eventbridge_custom_event"])
    assert "read on AWS's page" in describe_price(prices["lambda_request"])


def test_a_price_without_its_source_fields_is_refused_naming_the_key(tmp_path):
    from yafdp.errors import ConfigurationError

    broken = json.loads(PRICES_FILE.read_text())
    del broken["prices"]["lambda_request"]["source"]["read"]
    (tmp_path / "prices.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigurationError, match=r"prices.lambda_request.source needs read"):
        load_prices(tmp_path / "prices.json")
