"""``dirac-dms-filecatalog-cli``: an interactive shell over the file catalogue."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import EXIT_OK, make_parser, run_command, setup

PROG = "dirac-dms-filecatalog-cli"

DESCRIPTION = """\
An interactive shell over the file catalogue and the storage elements, with a current
directory (relative paths start from it):

  ls [-l] [path]          list a directory          cd [path] / pwd
  mkdir path...           create directories        rmdir path...
  add lfn file SE [GUID]  upload and register       get lfn [localdir]
  rm lfn...               remove files              replicas lfn
  replicate lfn SE [src]  copy to another SE        size [path]
  chmod mode path         set a mode (octal)        find [path] cond...
  meta index [-d|-f] name type    meta set path name value
  meta get path           meta remove path name     meta show
  help [command]          exit (or Ctrl-D)

Example:
  dirac-dms-filecatalog-cli
  dirac-dms-filecatalog-cli -c "ls -l /dirac/user"
  echo "ls /" | dirac-dms-filecatalog-cli        (commands from stdin)
"""

EPILOG = "Exit status: 0 when the shell ends, 1 if the broker cannot be reached, 2 usage error."


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG, json_output=False)
    parser.add_argument("-c", "--command", default=None,
                        help="run this one command line and exit")
    args = parser.parse_args()
    setup(args)

    from DIRAC.DataManagementSystem.Client.FileCatalogClientCLI import FileCatalogClientCLI

    shell = FileCatalogClientCLI()
    if args.command:
        shell.onecmd(args.command)
    else:
        shell.cmdloop()
    return EXIT_OK


if __name__ == "__main__":
    main()
