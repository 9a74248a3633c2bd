"""A lost update between two concurrent Loyalty awards, run on DynamoDB (moto, through boto3): the read-modify-write
balance loses one, every countermeasure loses none, whatever the machine's speed (the interleaving is a handshake)."""

import pytest

from yafdp.analysis.lost_update import STRATEGIES, Award, create_table, lost_update_table, race
from yafdp.backends.aws.clients import make_clients


@pytest.fixture(scope="module")
def table(moto_url):
    name = "lost-update-test"
    create_table(make_clients(moto_url).dynamodb, name)
    return name


def test_read_modify_write_loses_an_award_and_each_countermeasure_loses_none(moto_url):
    rows = {row["strategy"]: row for row in lost_update_table(lambda: make_clients(moto_url).dynamodb, "lost-update-table")}
    assert list(rows) == list(STRATEGIES)
    naive = rows["read-modify-write"]
    assert (naive["expected"], naive["balance"], naive["lost awards"]) == (42, 25, 1)  # the second write replaced the first
    reads = [call for call in naive["calls"] if call[1].startswith("GetItem")]
    assert [balance for _, _, balance in reads] == [0, 0]  # both invocations read before either wrote
    for strategy in ("UpdateItem ADD", "conditional write", "ledger"):
        assert (rows[strategy]["balance"], rows[strategy]["lost awards"]) == (42, 0), rows[strategy]
    assert rows["conditional write"]["conflicts"] == 1  # the second writer was refused once, read again, and wrote
    refused = [call for call in rows["conditional write"]["calls"] if "ConditionalCheckFailedException" in call[1]]
    assert refused == [("invocation 2", "PutItem if version 0: ConditionalCheckFailedException", None)]


@pytest.mark.parametrize("strategy, balance, lost, conflicts", [
    ("read-modify-write", 40, 2, 0), ("UpdateItem ADD", 70, 0, 0), ("conditional write", 70, 0, 2), ("ledger", 70, 0, 0)])
def test_three_invocations_at_once(moto_url, table, strategy, balance, lost, conflicts):
    clients = [make_clients(moto_url).dynamodb for _ in range(3)]
    got = race(clients, table, strategy, [Award("ord-a", 10), Award("ord-b", 20), Award("ord-c", 40)],
               customer_id=f"cus-three-{strategy.replace(' ', '-')}")
    assert (got["expected"], got["balance"], got["lost awards"], got["conflicts"]) == (70, balance, lost, conflicts)


def test_an_invocation_that_fails_is_reported_and_releases_the_others(moto_url, table):
    clients = [make_clients(moto_url).dynamodb for _ in range(2)]
    with pytest.raises(RuntimeError, match="an invocation failed"):
        race(clients, "no-such-table", "read-modify-write", [Award("ord-a", 1), Award("ord-b", 2)])
    with pytest.raises(ValueError, match="strategy must be one of"):
        race(clients, table, "hope", [Award("ord-a", 1)])
