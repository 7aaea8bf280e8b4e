"""`python -m aicf`: the `aicf` command (aicf/bootstrap/cli.py)."""

from aicf.bootstrap.cli import main

if __name__ == "__main__":  # importing this module (a walk over the package does) runs nothing
    main()
