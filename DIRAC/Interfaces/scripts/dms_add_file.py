"""``dirac-dms-add-file LFN PATH SE [GUID]``: upload a file to an SE and register it."""

from __future__ import annotations

import os
from pathlib import Path

from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    error,
    make_parser,
    print_json,
    run_command,
    setup,
)

PROG = "dirac-dms-add-file"

DESCRIPTION = """\
Upload a local file to a storage element and register it in the file catalogue
(DataManager.putAndRegister): as DIRAC's command, either

  dirac-dms-add-file LFN PATH SE [GUID]
  dirac-dms-add-file FILE SE          (FILE: lines "LFN PATH SE [GUID]"; SE is the default)

Example:
  dirac-dms-add-file /dirac/user/a/alice/data/run1.dat ./run1.dat SE-USER
"""

EPILOG = ("Prints 'Successfully uploaded <LFN> to <SE>' per file.\n"
          "Exit status: 0 all uploaded, 1 a local file is missing (or no answer), 2 a path "
          "is not a regular file or a usage error, 3 an upload or registration failed.")

EXIT_MISSING, EXIT_NOT_FILE, EXIT_UPLOAD = 1, 2, 3


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("args", nargs="+", metavar="ARG", help="LFN PATH SE [GUID], or FILE SE")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an LFN that already exists")
    args = parser.parse_args()
    jobs: list[tuple[str, str, str, str | None]] = []
    if len(args.args) in (3, 4):
        lfn, path, se = args.args[:3]
        jobs.append((lfn, path, se, args.args[3] if len(args.args) == 4 else None))
    elif len(args.args) in (1, 2) and os.path.isfile(args.args[0]):
        default_se = args.args[1] if len(args.args) == 2 else None
        for number, line in enumerate(Path(args.args[0]).read_text().splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) == 2 and default_se:
                fields.append(default_se)
            if len(fields) not in (3, 4):
                parser.error(f"{args.args[0]}:{number}: expected 'LFN PATH SE [GUID]'")
            jobs.append((fields[0], fields[1], fields[2],
                         fields[3] if len(fields) == 4 else None))
    else:
        parser.error("expected LFN PATH SE [GUID], or a file of such lines")
    for _lfn, path, _se, _guid in jobs:
        if not os.path.exists(path):
            error(f"File {path} must exist locally")
            return EXIT_MISSING
        if not os.path.isfile(path):
            error(f"{path} is not a file")
            return EXIT_NOT_FILE
    setup(args)

    from DIRAC.DataManagementSystem.Client.DataManager import DataManager

    manager = DataManager()
    status = EXIT_OK
    done: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for lfn, path, se, guid in jobs:
        if not args.json:
            print(f"Uploading {path} as {lfn} to {se}", flush=True)
        result = manager.putAndRegister(lfn, path, se, guid=guid, overwrite=args.overwrite)
        reason = result.get("Message") if not result["OK"] else \
            next(iter(result["Value"]["Failed"].values()), None)
        if reason:
            failed[lfn] = reason
            error(f"{lfn}: {reason}")
            status = EXIT_UPLOAD
        else:
            done[lfn] = result["Value"]["Successful"][next(iter(result["Value"]["Successful"]))]
            if not args.json:
                print(f"Successfully uploaded {lfn} to {se}")
    if args.json:
        print_json({"Successful": done, "Failed": failed})
    return status


if __name__ == "__main__":
    main()
