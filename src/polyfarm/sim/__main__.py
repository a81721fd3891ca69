"""``python -m polyfarm.sim --markets 100``: the simulator as a standalone program.

Errors are reported as ``polyfarm sim`` reports them (``polyfarm.errors.one_line``): one line on
stderr and exit status 1, no traceback.
"""

import sys

from polyfarm.errors import one_line
from polyfarm.sim.command import sim_command


def main() -> None:
    try:
        sim_command.main(prog_name="python -m polyfarm.sim")
    except Exception as exc:  # click has already reported and exited on its own errors
        sys.exit(f"Error: {one_line(exc)}")


if __name__ == "__main__":
    main()
