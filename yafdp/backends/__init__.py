"""The backends that apply a deployment plan: ``local`` (in this process) and ``aws`` (deployed with boto3 to
moto or AWS). :mod:`yafdp.runs.bootstrap` is the only module that chooses between them. :mod:`yafdp.backends.tasks`
is what a Step Functions Task runs, in the local runner and in the Lambda entry point alike."""
