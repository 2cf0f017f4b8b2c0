"""Test handlers for the fault tests (tests/fault): crashes, CPU burners, recorded executions."""
