"""Allows ``python -m lab ...`` as a synonym of the ``bplab`` command."""

from lab.ui.cli import main

if __name__ == "__main__":
    main()
