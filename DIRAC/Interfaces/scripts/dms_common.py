"""What the ``dirac-dms-*`` commands share: LFN arguments and bulk-result reporting.

LFN arguments are LFNs (``/vo/user/a/alice/f`` or ``LFN:/vo/...``) or, as in DIRAC,
the name of a local text file holding LFNs (one per line, blank lines and ``#``
comments ignored).  A bulk result (``{"Successful": ..., "Failed": ...}``) is printed
one line per LFN; each failure is an ``ERROR: <lfn>: <reason>`` line on stderr and
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from DIRAC.Interfaces.scripts.common import EXIT_FAILED, EXIT_OK, error, print_json

__all__ = ["add_lfn_arguments", "collect_lfns", "report_bulk"]


def add_lfn_arguments(parser: argparse.ArgumentParser, nargs: str = "+") -> None:
    """Positional ``LFN...`` (LFNs, or local files listing LFNs)."""
    parser.add_argument("lfns", nargs=nargs, metavar="LFN",
                        help="an LFN, or a local file with one LFN per line")


def _from_file(text: str) -> list[str] | None:
    if text.startswith(("/", "LFN:")) or not os.path.isfile(text):
        return None
    lines = Path(text).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def collect_lfns(parser: argparse.ArgumentParser, values: list[str]) -> list[str]:
    """The LFNs of the command line (files expanded), in order, each once."""
    lfns: list[str] = []
    for value in values:
        try:
            listed = _from_file(value)
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"cannot read LFNs from {value}: {exc}")
        if listed is not None:
            lfns += listed
        elif value.startswith(("/", "LFN:")):
            lfns.append(value)
        else:
            parser.error(f"{value!r} is neither an LFN (/vo/...) nor a file of LFNs")
    if not lfns:
        parser.error("no LFN given")
    return list(dict.fromkeys(lfns))


def report_bulk(result: dict[str, Any], as_json: bool,
                line: Callable[[str, Any], str | None]) -> int:
    """Print a bulk result (``line(lfn, value)`` per success) and its failures; the exit
    status (0 when nothing failed)."""
    from DIRAC.Interfaces.scripts.common import value_or_fail

    value = value_or_fail(result)
    if as_json:
        print_json(value)
    else:
        for lfn, item in value["Successful"].items():
            text = line(lfn, item)
            if text is not None:
                print(text)
    for lfn, reason in value["Failed"].items():
        error(f"{lfn}: {reason}")
    return EXIT_FAILED if value["Failed"] else EXIT_OK
