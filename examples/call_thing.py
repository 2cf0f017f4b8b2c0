"""Call the ``Mine/Thing`` service of the ``myext`` extension (myext/MineSystem/Service).

Start a worker for it first, from the examples/ folder::

    cd examples && ../.venv/bin/dirac-worker Mine --extension myext

then, from anywhere: ``.venv/bin/python examples/call_thing.py``.
"""

import sys

from DIRAC.Core.Base.Client import Client
from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise

thing = Client(url="Mine/Thing", timeout=10)

print(returnValueOrRaise(thing.hello("world")))
print("2 + 3.5 =", returnValueOrRaise(thing.add(2, 3.5)))
print(returnValueOrRaise(thing.describe({"name": "widget", "colour": "blue", 7: "seven"})))

# Errors come back as S_ERROR dicts, never as exceptions:
wrong_type = thing.add("2", 3)
print("add('2', 3) ->", wrong_type["Message"])
no_name = thing.describe({"colour": "red"})
print("describe({'colour': 'red'}) ->", no_name["Message"])
unknown = thing.subtract(3, 2)
print("subtract(3, 2) ->", unknown["Message"])

sys.exit(0 if not (wrong_type["OK"] or no_name["OK"] or unknown["OK"]) else 1)
