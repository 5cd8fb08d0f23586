"""``python -m masssim`` is the same as the ``masssim`` command."""

from masssim.cli import main

if __name__ == "__main__":
    main()
