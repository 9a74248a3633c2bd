"""How far the local backends emulate IAM: whether an identity policy's ``Allow`` statements grant an action on a
resource. Emulated: ``Effect: Allow`` statements, their ``Action`` (exact, ``service:*`` or ``*``) and
``Resource`` (exact, or a trailing ``*``). Not emulated: ``Deny``, conditions, permission boundaries, SCPs and
resource policies (the Classic bus's queue policies are checked by :mod:`yafdp.backends.local.bus` itself).
"""

from __future__ import annotations


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def policy_allows(policy: dict, action: str, resource: str) -> bool:
    """Whether ``policy`` (an IAM policy document) allows ``action`` on ``resource``.

    Examples
    --------
    >>> p = {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:r:1:q"}]}
    >>> policy_allows(p, "sqs:SendMessage", "arn:aws:sqs:r:1:q"), policy_allows(p, "sqs:SendMessage", "arn:aws:sqs:r:1:other")
    (True, False)
    """
    service = action.split(":", 1)[0]
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        if not {action, f"{service}:*", "*"} & set(_as_list(statement.get("Action"))):
            continue
        for pattern in _as_list(statement.get("Resource")):
            if pattern == resource or pattern == "*" or (pattern.endswith("*") and resource.startswith(pattern[:-1])):
                return True
    return False
