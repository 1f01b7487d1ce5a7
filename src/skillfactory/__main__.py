"""``python -m skillfactory ...`` = the ``skillfactory`` command (handy where the venv's bin/ is not on PATH)."""

from skillfactory.cli import main

if __name__ == "__main__":
    main()
