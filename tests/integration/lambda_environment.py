"""A Lambda execution environment, as far as the code in the package can tell, for the package tests.

Run as ``python -I -S -B lambda_environment.py TASK_ROOT RUNTIME_SITE``: an isolated interpreter (no site-packages,
no PYTHON* variables, no user site, nothing written beside the code), whose imports find the extracted package
(Lambda's ``/var/task``) and then the runtime's own libraries (boto3 and what it needs), nothing else. The handler
module is imported once (Lambda's init phase); then each line of stdin is one invocation event (JSON), answered by
one line on stdout: ``{"result": ...}`` or ``{"raised": "Type: message"}``, as Lambda reports a function error.
At the end of stdin, a last line lists every file of the task root the function opened (its modules and its data):
``{"opened": [relative paths]}``.
"""

import json
import os
import sys


def _audit(event: str, args: tuple) -> None:
    """Every file opened (imports open their modules with io.open_code, which raises the same event)."""
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(TASK_ROOT + os.sep):
            OPENED.add(os.path.relpath(path, TASK_ROOT).replace(os.sep, "/"))


def main() -> None:
    sys.path[:0] = [TASK_ROOT, RUNTIME_SITE]
    sys.addaudithook(_audit)
    from yafdp.backends.aws.lambda_handler import lambda_handler  # the init phase

    for line in sys.stdin:
        try:
            answer = {"result": lambda_handler(json.loads(line), None)}
        except Exception as exc:  # Lambda answers a function error with its type and message
            answer = {"raised": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    print(json.dumps({"opened": sorted(OPENED)}), flush=True)


OPENED: set[str] = set()
if __name__ == "__main__":  # (pytest imports this file for its doctests: then nothing runs)
    TASK_ROOT, RUNTIME_SITE = (os.path.realpath(p) for p in sys.argv[1:3])
    main()
