"""``dirac-dms-replicate-lfn LFN DEST_SE [SOURCE_SE]``: copy a file to another SE."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import make_parser, run_command, setup
from DIRAC.Interfaces.scripts.dms_common import collect_lfns, report_bulk

PROG = "dirac-dms-replicate-lfn"

DESCRIPTION = """\
Copy files to another storage element and register the new replicas
(DataManager.replicateAndRegister).  LFN may be a file of LFNs.

Example:
  dirac-dms-replicate-lfn /dirac/user/a/alice/data/run1.dat SE-B
  dirac-dms-replicate-lfn /dirac/user/a/alice/data/run1.dat SE-B SE-A
"""

EPILOG = ("Prints 'Replicated <LFN> to <SE>' per file (already there counts as done).\n"
          "Exit status: 0 all replicated, 1 any failed (or no answer), 2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("lfn", metavar="LFN", help="an LFN, or a local file of LFNs")
    parser.add_argument("dest", metavar="DEST_SE", help="the storage element to copy to")
    parser.add_argument("source", metavar="SOURCE_SE", nargs="?", default="",
                        help="the replica to copy from (default: any active one)")
    args = parser.parse_args()
    lfns = collect_lfns(parser, [args.lfn])
    setup(args)

    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    result = DataManager().replicateAndRegister(lfns, args.dest, args.source)
    return report_bulk(result, args.json, lambda lfn, _v: f"Replicated {lfn} to {args.dest}")


if __name__ == "__main__":
    main()
