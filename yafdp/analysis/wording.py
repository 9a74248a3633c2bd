"""Code names in a reader's words, for tables (:func:`yafdp.analysis.notebook.readable_header`) and figures' legends
and axes (:mod:`yafdp.analysis.figures`): one word list, in a module of its own that imports nothing, so both can use
it without importing each other."""

# Words of code names a reader spells otherwise.
WORDS = {"id": "ID", "sqs": "SQS", "dynamodb": "DynamoDB", "eventbridge": "EventBridge", "lambda": "Lambda",
         "gb": "GB", "iam": "IAM", "arn": "ARN", "dlq": "DLQ", "step": "Step", "functions": "Functions",
         "standard": "Standard", "express": "Express"}


def pretty(name) -> str:
    """A column or key as a reader says it: ``dead_lettered`` → ``dead lettered``, ``sqs_requests`` → ``SQS requests``.

    Examples
    --------
    >>> pretty("step_functions_standard_transitions")
    'Step Functions Standard transitions'
    """
    return " ".join(WORDS.get(w, w) for w in str(name).replace("_", " ").split(" "))
