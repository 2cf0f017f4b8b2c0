"""Package layout only (everything else is in pyproject.toml).

``broker/``, ``client/``, ``workers/`` and ``webapp/`` are installed under the ``diracmq`` namespace
(``diracmq.broker`` ...), so a user's site-packages gains no top-level module with a
generic name; ``DIRAC`` (and every sub-package of it, found here rather than listed by
hand) stays top-level, where DIRAC's scripts import it from.
"""

from setuptools import find_packages, setup

CORE = {"diracmq.broker": "broker", "diracmq.client": "client", "diracmq.workers": "workers",
        "diracmq.webapp": "webapp"}

setup(
    packages=[*CORE, *find_packages(include=["DIRAC", "DIRAC.*"])],
    package_dir=CORE,
)
