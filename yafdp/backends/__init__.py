"""The backends that apply a deployment plan: ``local`` (in this process) and ``aws`` (deployed with boto3 to
moto or AWS). :mod:`yafdp.runs.bootstrap` is the only module that chooses between them."""
