"""The RabbitMQ permissions of a DIRAC user and of a worker (docs/security.md).

RabbitMQ grants a user three regular expressions per vhost: what it may
*configure* (declare, delete), *write* (publish to, bind a queue) and *read*
(consume from, bind from an exchange).  The names they match are those of
broker/topology.py:

* a **client** publishes requests to the exchange ``dirac.rpc`` and consumes replies
  from its own reply queues ``dirac.reply.<user>.<host>.<pid>.<random>``;
* a **worker** declares and consumes the service queues ``dirac.rpc.<System>.<Service>``
  (and the retry/parking queues ``dirac.rpc.retry``/``dirac.rpc.parked``), publishes
  replies through the default exchange (``amq.default``), and is a client too (its
  identity checks ask the Configuration service).

A client gets nothing else: it cannot consume a service queue (other users'
requests), another user's reply queue, bind anything, or publish to a queue
directly.  Any broker user name works, a certificate's DN included
(``CN=dirac.example.org,O=Example``): the reply-queue names carry it as
``topology.user_token`` (no ``.`` in it, so user ``al`` never matches ``al.ice``'s
queues).

``python -m DIRAC.Core.Security.BrokerPermissions --vhost /dirac alice`` prints the
``rabbitmqctl`` commands that create a client user (``--worker`` for a worker).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence

from diracmq.broker.topology import user_token

__all__ = ["client_permissions", "check_broker_user_name", "main", "worker_permissions"]


def check_broker_user_name(user: str) -> str:
    """``user`` if it can be a broker user name (non-empty, no control characters)."""
    if not isinstance(user, str) or not user or any(ord(c) < 32 for c in user):
        raise ValueError(f"broker user name {user!r} must be non-empty, without control "
                         f"characters")
    return user


def _own_replies(user: str) -> str:
    return rf"dirac\.reply\.{re.escape(user_token(check_broker_user_name(user)))}\..+"


def client_permissions(user: str) -> tuple[str, str, str]:
    """(configure, write, read) regexes of a DIRAC client user."""
    own_replies = rf"^{_own_replies(user)}$"
    return own_replies, r"^dirac\.rpc$", own_replies


def worker_permissions(user: str) -> tuple[str, str, str]:
    """(configure, write, read) regexes of a worker's broker user."""
    mine = rf"^(dirac\.rpc(\..+)?|{_own_replies(user)})$"
    return mine, r"^(dirac\.rpc(\..+)?|amq\.default)$", mine


def main(argv: Sequence[str] | None = None) -> int:
    """Print the rabbitmqctl commands that create a user with these permissions."""
    parser = argparse.ArgumentParser(
        prog="python -m DIRAC.Core.Security.BrokerPermissions",
        description="Print the rabbitmqctl commands for a DIRAC broker user.")
    parser.add_argument("user", help="the broker user name (a certificate user: its DN as "
                                     "the broker spells it, e.g. 'CN=alice,DC=example,DC=org')")
    parser.add_argument("--certificate", action="store_true",
                        help="a certificate (EXTERNAL) user: created without a password")
    parser.add_argument("--vhost", default="/", help="the vhost (default /)")
    parser.add_argument("--worker", action="store_true",
                        help="a worker's user (serves services) instead of a client's")
    args = parser.parse_args(argv)
    try:
        perms = (worker_permissions if args.worker else client_permissions)(args.user)
    except ValueError as exc:
        parser.error(str(exc))
    if args.certificate:
        # A user with no password can only log in through EXTERNAL (its certificate).
        print(f"rabbitmqctl add_user {shlex.quote(args.user)} \"$(openssl rand -hex 32)\"")
        print(f"rabbitmqctl clear_password {shlex.quote(args.user)}")
    else:
        print(f"rabbitmqctl add_user {shlex.quote(args.user)} \"$PASSWORD\"")
    print(f"rabbitmqctl set_permissions -p {shlex.quote(args.vhost)} {shlex.quote(args.user)} "
          + " ".join(shlex.quote(p) for p in perms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
