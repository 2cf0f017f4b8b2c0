"""Integration tests: real RabbitMQ, real ``dirac-worker`` processes (see tests/conftest.py)."""
