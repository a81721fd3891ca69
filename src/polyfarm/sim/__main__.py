"""``python -m polyfarm.sim --markets 100``: the simulator as a standalone program."""

from polyfarm.sim.command import sim_command

if __name__ == "__main__":
    sim_command()
