"""The moto backend's SQS event source mapping (``yafdp.backends.aws.poller``) reads a function's partial batch
response as Lambda reads it, against a real SQS API (moto): every shape Lambda documents as a complete failure
leaves the whole batch on the queue, and no shape loses a message that was not processed.

"Lambda treats a batch as a complete failure if your function returns any of the following: an invalid JSON
response, an empty string itemIdentifier, a null itemIdentifier, an itemIdentifier with a bad key name, an
itemIdentifier value with a message ID that doesn't exist" (Lambda developer guide, "Handling errors for an SQS
event source in Lambda", https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)."""

import secrets

import pytest

from yafdp.backends.aws.poller import QueuePoller

ALL, NONE = "all", "none"


def _answer(shape, ids):
    """The function's response for ``shape``; ``ids`` are the batch's message ids in order."""
    first, second = ids[0], ids[1]
    return {
        "second-failed": {"batchItemFailures": [{"itemIdentifier": second}]},
        "id-not-in-batch": {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]},
        "one-good-one-unknown": {"batchItemFailures": [{"itemIdentifier": first}, {"itemIdentifier": "unknown"}]},
        "null-list": {"batchItemFailures": None},
        "empty-list": {"batchItemFailures": []},
        "empty-response": {},
        "null-response": None,
        "null-id": {"batchItemFailures": [{"itemIdentifier": None}]},
        "empty-id": {"batchItemFailures": [{"itemIdentifier": ""}]},
        "bad-key-name": {"batchItemFailures": [{"itemId": first}]},
        "not-an-object": "done",
        "list-not-a-list": {"batchItemFailures": first},
        "element-not-an-object": {"batchItemFailures": [first]},
    }[shape]


@pytest.mark.parametrize("shape, left", [
    ("second-failed", "second"),
    ("id-not-in-batch", ALL),
    ("one-good-one-unknown", ALL),
    ("null-list", NONE),
    ("empty-list", NONE),
    ("empty-response", NONE),
    ("null-response", NONE),
    ("null-id", ALL),
    ("empty-id", ALL),
    ("bad-key-name", ALL),
    ("not-an-object", ALL),
    ("list-not-a-list", ALL),
    ("element-not-an-object", ALL),
])
def test_the_batch_response_is_read_as_lambda_reads_it(clients, shape, left):
    sqs = clients.sqs
    url = sqs.create_queue(QueueName=f"esm-{secrets.token_hex(4)}", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    try:
        for body in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        seen = []

        def function(event, context):
            seen.extend(r["messageId"] for r in event["Records"])
            return _answer(shape, [r["messageId"] for r in event["Records"]])

        poller = QueuePoller(sqs, url, "arn:aws:sqs:eu-west-1:123456789012:esm", function, wait_seconds=0)
        assert poller.poll_once() == 3 and len(seen) == 3  # one batch of the three
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                        "ApproximateNumberOfMessagesNotVisible"])
        remaining = sum(int(v) for v in counts["Attributes"].values())  # still on the queue, visible again later
        expected = {ALL: 3, NONE: 0, "second": 1}[left]
        assert remaining == expected, f"{shape}: {remaining} of 3 messages left on the queue"
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_a_function_error_leaves_the_whole_batch(clients):
    sqs = clients.sqs
    url = sqs.create_queue(QueueName=f"esm-{secrets.token_hex(4)}", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody="a")

        def function(event, context):
            raise RuntimeError("crashed")

        poller = QueuePoller(sqs, url, "arn:aws:sqs:eu-west-1:123456789012:esm", function, wait_seconds=0)
        assert poller.poll_once() == 1 and poller.errors == ["RuntimeError: crashed"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        assert counts["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    finally:
        sqs.delete_queue(QueueUrl=url)
