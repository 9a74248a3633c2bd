"""The deployment plan on AWS: applied with boto3 (``deployer``), run by Lambda, or on a moto server by an
in-process poller that does what Lambda's event source mapping does (``poller``, ``functions``).

Every boto3 client is passed in (see :mod:`yafdp.aws.clients`), so the same code talks to moto or to AWS.
"""
