"""``dirac-dms-lfn-replicas LFN...``: the replicas of files."""

from __future__ import annotations

from typing import Any

from DIRAC.Interfaces.scripts.common import make_parser, run_command, setup
from DIRAC.Interfaces.scripts.dms_common import add_lfn_arguments, collect_lfns, report_bulk

PROG = "dirac-dms-lfn-replicas"

DESCRIPTION = """\
Print the replicas of files, as the catalogue has them (getReplicas):

  /dirac/user/a/alice/data/run1.dat :
      SE-USER : diracmq://SE-USER/dirac/user/a/alice/data/run1.dat

Example:
  dirac-dms-lfn-replicas /dirac/user/a/alice/data/run1.dat
"""

EPILOG = ("--json prints {\"Successful\": {lfn: {SE: PFN}}, \"Failed\": {lfn: reason}}.\n"
          "Exit status: 0 all found, 1 any unknown (or no answer), 2 usage error.")


def _lines(lfn: str, replicas: dict[str, Any]) -> str:
    if not replicas:
        return f"{lfn} :\n    (no replicas)"
    return f"{lfn} :\n" + "\n".join(f"    {se} : {pfn}" for se, pfn in sorted(replicas.items()))


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_lfn_arguments(parser)
    parser.add_argument("-a", "--All", action="store_true",
                        help="also replicas that are not active")
    args = parser.parse_args()
    lfns = collect_lfns(parser, args.lfns)
    setup(args)

    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    manager = DataManager()
    result = manager.getReplicas(lfns) if args.All else manager.getActiveReplicas(lfns)
    return report_bulk(result, args.json, _lines)


if __name__ == "__main__":
    main()
