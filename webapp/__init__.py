"""``dirac-webapp``: a web job monitor and services page, itself a DIRAC client (app.py)."""
