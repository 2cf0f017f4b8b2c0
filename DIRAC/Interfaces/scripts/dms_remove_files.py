"""``dirac-dms-remove-files LFN...``: remove files from every SE and the catalogue."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import make_parser, run_command, setup
from DIRAC.Interfaces.scripts.dms_common import add_lfn_arguments, collect_lfns, report_bulk

PROG = "dirac-dms-remove-files"

DESCRIPTION = """\
Remove files: every replica from its storage element, then the catalogue entry
(DataManager.removeFile).  A file that is not in the catalogue counts as removed.

Example:
  dirac-dms-remove-files /dirac/user/a/alice/data/run1.dat
  dirac-dms-remove-files lfns.txt
"""

EPILOG = ("Prints 'Successfully removed <LFN>' per file.\n"
          "Exit status: 0 all removed, 1 any failed (or no answer), 2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_lfn_arguments(parser)
    args = parser.parse_args()
    lfns = collect_lfns(parser, args.lfns)
    setup(args)

    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    result = DataManager().removeFile(lfns)
    return report_bulk(result, args.json, lambda lfn, _v: f"Successfully removed {lfn}")


if __name__ == "__main__":
    main()
