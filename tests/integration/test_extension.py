"""A user's own System, as DIRAC extensions do it: ``dirac-worker Mine --extension myext``.

tests/ext/myext/MineSystem/Service/ThingHandler.py is a plain folder of the user (not
installed, not on PYTHONPATH): the worker runs from the folder that holds ``myext``.
"""

import pytest
from diracmq.client.base import Client
from diracmq_testing import EXT_DIR, REPO_DIR

pytestmark = pytest.mark.timeout(60)


def test_users_own_system_from_a_plain_folder(workers, settings):
    worker = workers.start("Mine", extension="myext", cwd=EXT_DIR, pythonpath=[])
    assert "serving Mine/Thing" in worker.stderr()
    client = Client(url="Mine/Thing", settings=settings, timeout=10)
    assert client.getThing("answer") == {"OK": True, "Value": 42}
    assert client.getThing("nothing") == {"OK": True, "Value": None}
    where = client.whereAmI()
    assert where["OK"] and where["Value"] == {"module": "myext.MineSystem.Service.ThingHandler",
                                              "pid": worker.pid}
    assert client.getThing(1)["Message"].startswith("Type mismatch in parameter 0")
    assert client.ping()["Value"]["name"] == "Mine/Thing"


def test_extension_under_the_System_suffix(workers, settings):
    """``dirac-worker MineSystem`` names the same System."""
    workers.start("MineSystem", extension="myext", cwd=EXT_DIR, pythonpath=[])
    assert Client(url="Mine/Thing", settings=settings, timeout=10).getThing("answer")["Value"] \
        == 42


def test_extension_handler_subclass_of_DIRACs(workers, settings):
    """A DIRAC client subclass that calls ``setServer`` reaches the extension's service."""

    class ThingClient(Client):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.setServer("Mine/Thing")

    workers.start("Mine", extension="myext", cwd=EXT_DIR, pythonpath=[])
    client = ThingClient(settings=settings, timeout=10)
    assert client.getServer() == "Mine/Thing"
    assert client.getThing("answer") == {"OK": True, "Value": 42}


README_EXT = REPO_DIR / "examples" / "myext"


@pytest.mark.skipif(not (README_EXT / "MineSystem" / "Service" / "ThingHandler.py").exists(),
                    reason="examples/myext has no ThingHandler yet")
def test_readme_example_extension(workers, settings):
    """The README's small service (examples/myext) is served the same way."""
    workers.start("Mine", extension="myext", cwd=README_EXT.parent, pythonpath=[])
    result = Client(url="Mine/Thing", settings=settings, timeout=10).ping()
    assert result["OK"] and result["Value"]["name"] == "Mine/Thing"
