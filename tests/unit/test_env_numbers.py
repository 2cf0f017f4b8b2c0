"""Numeric settings from the environment: errors name the variable.

(DIRAC/Core/Utilities/Environment.py)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from DIRAC.Core.Utilities.Environment import envNumber


@pytest.mark.parametrize("raw, expected", [("", 25), ("  ", 25), ("7", 7), (" 12 ", 12)])
def test_unset_or_integer(monkeypatch, raw, expected):
    monkeypatch.setenv("X_TEST_N", raw)
    assert envNumber("X_TEST_N", 25, minimum=1) == expected


@pytest.mark.parametrize("raw, says", [("abc", "not an integer"), ("2.5", "not an integer"),
                                       ("0", "at least 1"), ("-3", "at least 1")])
def test_bad_integers_name_the_variable(monkeypatch, raw, says):
    monkeypatch.setenv("X_TEST_N", raw)
    with pytest.raises(ValueError, match=f"X_TEST_N={raw!r}: .*{says}"):
        envNumber("X_TEST_N", 25, minimum=1)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "x"])
def test_bad_floats_name_the_variable(monkeypatch, raw):
    monkeypatch.setenv("X_TEST_F", raw)
    with pytest.raises(ValueError, match="X_TEST_F="):
        envNumber("X_TEST_F", 60.0, minimum=1.0)


def test_float_setting(monkeypatch):
    monkeypatch.setenv("X_TEST_F", "2.5")
    assert envNumber("X_TEST_F", 60.0, minimum=1.0) == 2.5


def test_a_zero_optimizer_batch_is_refused_at_import_saying_which_variable():
    """A batch of 0 jobs per transaction would be a range() step of 0 in every sweep."""
    env = dict(os.environ, DIRAC_WMS_OPTIMIZER_BATCH="0")
    done = subprocess.run(
        [sys.executable, "-c", "import DIRAC.WorkloadManagementSystem.Executor.Optimizers"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DIRAC_WMS_OPTIMIZER_BATCH='0': must be at least 1" in done.stderr
