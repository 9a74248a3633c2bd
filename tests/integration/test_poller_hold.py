"""The moto backend's stand-in for Lambda's SQS event source mapping keeps AWS's guarantee that a batch is not
received again while its function runs, however slow this machine makes the function; what the function did not
finish comes back (on moto's SQS)."""

import threading
import time

from yafdp.backends.aws.poller import QueuePoller


def test_a_batch_is_not_received_again_while_its_function_runs_past_the_visibility_timeout(clients):
    url = clients.sqs.create_queue(QueueName="held-batch", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    clients.sqs.send_message(QueueUrl=url, MessageBody='{"n": 1}')
    has_it, done = threading.Event(), threading.Event()

    def slow_function(event, context):  # as slow as a starved machine: until the test lets it finish, then fails
        has_it.set()
        done.wait(600)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    poller = QueuePoller(clients.sqs, url, "arn:aws:sqs:eu-west-1:123456789012:held-batch", slow_function,
                         wait_seconds=1, visibility_timeout=1)
    polling = threading.Thread(target=poller.poll_once)
    polling.start()
    try:
        assert has_it.wait(600)
        time.sleep(1.5)  # the queue's visibility timeout has passed since the receive: on moto alone, visible again
        assert clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    finally:
        done.set()
        polling.join()
    # the function failed it, after more than the visibility timeout: it is back at once, received a second time
    again = clients.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in again] == ['{"n": 1}'] and again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
