"""``dirac-dms-get-file LFN...``: download files from one of their replicas."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import make_parser, run_command, setup
from DIRAC.Interfaces.scripts.dms_common import add_lfn_arguments, collect_lfns, report_bulk

PROG = "dirac-dms-get-file"

DESCRIPTION = """\
Download files (DataManager.getFile) from an active replica into a local directory,
checking their adler32 against the catalogue's.

Example:
  dirac-dms-get-file /dirac/user/a/alice/data/run1.dat -D ./downloads
  dirac-dms-get-file lfns.txt
"""

EPILOG = ("Prints '<LFN> -> <local path>' per file.\n"
          "Exit status: 0 all downloaded, 1 any failed (or no answer), 2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_lfn_arguments(parser)
    parser.add_argument("-D", "--Dir", default="", metavar="DIR",
                        help="directory to download into (default: the current one)")
    parser.add_argument("--SE", default=None, help="read the replica at this SE only")
    args = parser.parse_args()
    lfns = collect_lfns(parser, args.lfns)
    setup(args)

    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    result = DataManager().getFile(lfns, destinationDir=args.Dir, sourceSE=args.SE)
    return report_bulk(result, args.json, lambda lfn, path: f"{lfn} -> {path}")


if __name__ == "__main__":
    main()
