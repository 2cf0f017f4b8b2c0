"""DIRAC.exit and DIRAC.abort."""
import sys

import DIRAC

if sys.argv[1] == "exit":
    try:
        DIRAC.exit(3)
    finally:
        print("finally runs")
else:
    try:
        DIRAC.abort(4, "Giving up:", "the reason")
    finally:
        print("never printed")
