"""Entrypoint of the transcoder container (ECS/Fargate task; a subprocess locally).

The task definition in ``infra/template.yaml`` sets its environment; it runs until SIGTERM.
"""
from __future__ import annotations

import sys

from chalicelib.domain.errors import ToolMissingError


def main() -> int:
    try:
        from chalicelib.tools.ffmpeg import binaries
        binaries()
    except ToolMissingError as e:
        print(f"vodpipe transcoder: {e}", file=sys.stderr)
        return 2
    from chalicelib.worker import main as run
    return run()


if __name__ == "__main__":
    sys.exit(main())
