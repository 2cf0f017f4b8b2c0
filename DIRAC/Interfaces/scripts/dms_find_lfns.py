"""``dirac-dms-find-lfns --Path=/dir "meta=value" "Size>1000"``: query the catalogue."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    make_parser,
    print_json,
    run_command,
    setup,
    value_or_fail,
)

PROG = "dirac-dms-find-lfns"

DESCRIPTION = """\
Print the LFNs under a directory whose metadata match every condition
(findFilesByMetadata).  A condition is NAME OP VALUE with OP one of = != < > <= >=;
NAME=V1,V2 means any of the values.  NAME is a metadata field (directory fields are
inherited by everything below) or a file attribute: Size, Owner, OwnerGroup, Status,
GUID, Checksum, CreationDate, ModificationDate.  Without conditions: every file below
the path.

Example:
  dirac-dms-find-lfns --Path=/dirac/user/a/alice "Particle=muon" "Energy>100"
  dirac-dms-find-lfns --Path=/dirac "Size>1000000"
"""

EPILOG = ("Prints one LFN per line (--json: a list).\n"
          "Exit status: 0 on an answer (even an empty one), 1 an error or no answer, "
          "2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--Path", default="/", help="directory to search under (default /)")
    parser.add_argument("conditions", nargs="*", metavar="CONDITION")
    args = parser.parse_args()

    from DIRAC.DataManagementSystem.Utilities.DMSUtilities import parseMetaConditions

    try:
        query = parseMetaConditions(args.conditions)
    except ValueError as exc:
        parser.error(str(exc))
    setup(args)

    from DIRAC.Resources.Catalog.FileCatalog import FileCatalog

    lfns = value_or_fail(FileCatalog().findFilesByMetadata(query, args.Path),
                         "cannot query the catalogue")
    if args.json:
        print_json(lfns)
    else:
        for lfn in lfns:
            print(lfn)
    return EXIT_OK


if __name__ == "__main__":
    main()
