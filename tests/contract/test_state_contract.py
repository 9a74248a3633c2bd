"""One contract for a service's state, run against the local bus's SQLite store and a DynamoDB table on
moto: what a unit of work wrote is what a later handler reads, exactly, and nothing else is there."""

import secrets

import pytest

from yafdp.backends.aws.dynamo_state import ATTRIBUTES, KEY_SCHEMA, DynamoState
from yafdp.backends.local.run_writer import RunWriter, SqliteServiceState
from yafdp.runtime import rundb
from yafdp.runtime.unit_of_work import BufferedUnitOfWork, ServiceState

CHARGE = {"order_id": "ord-1", "amount": 17.1, "currency": "EUR", "items": [{"item_id": "p-1", "quantity": 2}]}


class StateContract:
    """Subclasses provide the fixture ``store``: ``(state, commit)`` where ``commit(writes)`` stores a unit
    of work's writes the way that backend commits them."""

    def test_the_state_is_a_service_state(self, store):
        assert isinstance(store[0], ServiceState)

    def test_nothing_is_stored_before_a_write(self, store):
        state, _ = store
        assert state.get("charge", "ord-1") is None

    def test_a_committed_item_reads_back_exactly(self, store):
        state, commit = store
        uow = BufferedUnitOfWork("payment", state, world=None, now=lambda: 0.0)
        assert uow.add("charge", "ord-1", CHARGE)
        commit(uow.writes)
        assert state.get("charge", "ord-1") == CHARGE
        assert state.get("refund", "ord-1") is None and state.get("charge", "ord-2") is None

    def test_a_later_write_replaces_the_item(self, store):
        state, commit = store
        commit({("charge", "ord-1"): CHARGE})
        commit({("charge", "ord-1"): {**CHARGE, "amount": 20.0}})
        assert state.get("charge", "ord-1")["amount"] == 20.0

    def test_a_unit_of_work_over_the_state_refuses_to_add_what_exists(self, store):
        state, commit = store
        commit({("charge", "ord-1"): CHARGE})
        assert not BufferedUnitOfWork("payment", state, world=None, now=lambda: 0.0).add("charge", "ord-1", {})


class TestSqliteState(StateContract):
    @pytest.fixture
    def store(self):
        writer = RunWriter(rundb.connect(":memory:"), durable=False)

        def commit(writes):
            writer.put_state("payment", writes)
            writer.flush()
        return SqliteServiceState(writer, "payment"), commit


class TestDynamoState(StateContract):
    @pytest.fixture
    def store(self, clients):
        dynamodb, table = clients.dynamodb, f"state-{secrets.token_hex(3)}"
        dynamodb.create_table(TableName=table, KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES,
                              BillingMode="PAY_PER_REQUEST")
        state = DynamoState(dynamodb, table)

        def commit(writes):
            assert state.commit(writes, marker=None, outbox_key="k", outbox=[], trace=[])
        yield state, commit
        dynamodb.delete_table(TableName=table)

    def test_a_marker_makes_a_second_commit_of_the_same_delivery_a_no_op(self, store):
        state, _ = store
        assert state.commit({("charge", "ord-1"): CHARGE}, marker="r#e", outbox_key="r#e", outbox=[], trace=[])
        assert not state.commit({("charge", "ord-1"): {**CHARGE, "amount": 99.0}}, marker="r#e", outbox_key="r#e",
                                outbox=[], trace=[])
        assert state.get("charge", "ord-1") == CHARGE
