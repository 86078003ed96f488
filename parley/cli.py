"""``parley``: one command for the server, the headless client and the model files.

    parley serve [--host H] [--port P] ...     the media server (what ``python -m server`` runs)
    parley call --wav question.wav [...]       a call from a WAV file (what ``python -m client`` runs)
    parley models [--remote-only]              download, join and check the embedded models' weights

Each subcommand's module is imported only when it runs, so ``parley models`` works before anything else is set
up and ``parley serve`` on remote providers needs none of the embedded runtimes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = __doc__.split("\n\n")[1].rstrip() if __doc__ else ""


def _serve(argv: list[str]) -> int:
    from server.__main__ import main as serve_main

    return serve_main(argv)


def _call(argv: list[str]) -> int:
    from parley.call_cli import main as call_main

    return call_main(argv, prog="parley call")


def _models(argv: list[str]) -> int:
    from server.providers.local.fetch import main as models_main

    return models_main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "serve": (_serve, "start the media server and the call page"),
    "call": (_call, "place a call from a WAV file and print its events"),
    "models": (_models, "download and verify the embedded models' weights"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: parley {{{','.join(COMMANDS)}}} [options]\n\n{USAGE}\n\n'parley COMMAND --help' for more.")
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"parley: unknown command {args[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command[0](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
