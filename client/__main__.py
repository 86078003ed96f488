"""``python -m client --wav in.wav ...``: the command line of the Python library (parley/call_cli.py)."""

from parley.call_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
