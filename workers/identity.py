"""Who is calling: the caller's credentials from what the broker vouches for.

RabbitMQ refuses a message whose ``user_id`` property differs from the user of the
connection that published it, so ``user_id`` is the one fact about the caller a
worker can trust.  A message without it is anonymous.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANONYMOUS", "credentials_for"]

ANONYMOUS = "anonymous"


def credentials_for(broker_user: str | None, headers: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The caller's credentials (``username``, ``group``, ``properties``) for a request."""
    del headers  # a requested group (x-dirac-group) is honoured once a Registry exists
    if not broker_user:
        return {"username": ANONYMOUS, "group": "", "properties": []}
    return {"username": broker_user, "group": "", "properties": [], "brokerUser": broker_user}
