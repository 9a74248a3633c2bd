"""The deployment plan on AWS: applied with boto3 (``deployer``, ``teardown``), run by Lambda (``package``,
``lambda_handler``, ``function``, ``dynamo_state``), or on a moto server by in-process pollers that do what
Lambda's event source mapping does (``poller``, ``functions``); ``bus`` drives a deployment, ``export``
writes it into ``run.db`` and ``deployment`` puts these together for a run.

Every boto3 client is passed in (see :mod:`yafdp.backends.aws.clients`), so the same code talks to moto or AWS.
"""
