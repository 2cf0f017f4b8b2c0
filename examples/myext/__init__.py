"""``myext``: a small DIRAC extension, served with ``dirac-worker Mine --extension myext``.

Extensions follow DIRAC's layout: ``<extension>/<System>System/Service/<Service>Handler.py``.
"""
