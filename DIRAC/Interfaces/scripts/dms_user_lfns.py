"""``dirac-dms-user-lfns``: every file in your home directory of the catalogue."""

from __future__ import annotations

from pathlib import Path

from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    make_parser,
    print_json,
    run_command,
    setup,
    value_or_fail,
)

PROG = "dirac-dms-user-lfns"

DESCRIPTION = """\
Print the LFNs of every file under your home directory /<vo>/user/<initial>/<name>
(or under --BaseDir), one per line, then how many there are.  With --output the list
goes to a file instead (DIRAC writes <user>.lfns).

Example:
  dirac-dms-user-lfns
  dirac-dms-user-lfns --BaseDir /dirac/user/a/alice/data --output mine.lfns
"""

EPILOG = ("The VO is your group's VO option in the Registry, else DIRAC_VO, else 'dirac'.\n"
          "Exit status: 0 on an answer, 1 an error or no answer, 2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-b", "--BaseDir", default=None,
                        help="directory to list under (default: your home)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write the LFNs to FILE (one per line)")
    args = parser.parse_args()
    setup(args)

    from DIRAC.DataManagementSystem.Utilities.DMSUtilities import getVOForCredentials, userHome
    from DIRAC.Resources.Catalog.FileCatalog import FileCatalog

    catalog = FileCatalog()
    base = args.BaseDir
    if not base:
        me = value_or_fail(catalog.whoami(), "cannot learn who you are")
        base = userHome(me["username"], getVOForCredentials(me))
    lfns = value_or_fail(catalog.findFilesByMetadata({}, base),
                         f"cannot list the files under {base}")
    if args.json:
        print_json({"BaseDir": base, "LFNs": lfns})
    elif args.output:
        Path(args.output).write_text("".join(f"{lfn}\n" for lfn in lfns))
        print(f"{len(lfns)} matched files written to {args.output}")
    else:
        for lfn in lfns:
            print(lfn)
        print(f"{len(lfns)} files under {base}")
    return EXIT_OK


if __name__ == "__main__":
    main()
