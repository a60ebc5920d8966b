"""Where the local cloud listens and who it is by default: its ports on 127.0.0.1 and the
local administrator's credentials (the emulator's ``test``/``test``), shared by the cloud,
the ``vodpipe`` CLI and the drills."""
from __future__ import annotations

import socket

#: The emulator's port (LocalStack's edge port, so tools that know LocalStack find it).
DEFAULT_PORT = 4566
#: The HTTP API's (and the web console's) port.
DEFAULT_API_PORT = 8000
#: The local administrator: the emulator accepts any keys; these are the ones it documents.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_REGION": "us-east-1"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the kernel's choice; free when this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
