"""How the programs a task runs share the host's CPUs with other tasks' programs (Linux).

A ``nice`` value only ranks threads inside one scheduling group. Linux puts every session in
a group of its own when the kernel schedules by session (``CONFIG_SCHED_AUTOGROUP``,
``/proc/sys/kernel/sched_autogroup_enabled``; sched(7) "The autogroup feature"), and then
shares the CPUs equally between the groups, whatever their threads' nice values: two worker
tasks on one host (each its own session, as an ECS task is its own container) split the CPUs
half and half, and a later chunk at nice 10 slows a job's first chunk exactly as much as one
at nice 0 (measured here: a 2 s first chunk beside a later chunk took 9.5 s of wall time and
one core; docs/chunking-and-resume.md, "Which encode gets the CPU").

So a program whose priority matters runs in a session of its own (``setsid``) and has that
session's group niceness set (``/proc/<pid>/autogroup``, sched(7)): between groups the CFS
weights then follow the niceness (1024 at 0, 110 at 10: ~90 % of a contended CPU to the
first). It is tied to the thread that started it (``PR_SET_PDEATHSIG``, prctl(2)): leaving
its parent's process group, it must still end with it. Where the kernel has no autogroups
(a container's own cgroup) the threads' nice values rank it among the task's programs, as
``nice`` always did.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import time
from functools import lru_cache
from typing import Callable

log = logging.getLogger("vodpipe.tools")

#: ``PR_SET_PDEATHSIG`` (<linux/prctl.h>).
_SET_PARENT_DEATH_SIGNAL = 1
#: Without CAP_SYS_ADMIN the kernel accepts one autogroup niceness change per 100 ms on the
#: whole host (``EAGAIN`` otherwise, sched/autogroup.c): tries, and the pause between them (s).
_AUTOGROUP_TRIES = 4
_AUTOGROUP_RETRY_SECONDS = 0.11


@lru_cache(maxsize=1)
def _libc():
    """The C library, loaded once per process (every ffmpeg run arms its child with it)."""
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def tied_to_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when the thread that started it ends
    (``prctl(PR_SET_PDEATHSIG)``) and ends the child at once when ``parent`` (a pid) has
    already gone: a program started in a session of its own, or a worker task of a local
    cloud, never outlives what started it. None off Linux (no such call)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = _libc()

    def arm() -> None:
        libc.prctl(_SET_PARENT_DEATH_SIGNAL, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call: nobody would send it
            os._exit(1)
    return arm


def set_group_niceness(pid: int, niceness: int) -> bool:
    """Set the niceness (0..19) of the scheduling group of session leader ``pid``
    (``/proc/<pid>/autogroup``, sched(7)). Raising it needs no privilege. Returns True when it
    was set or there is nothing to set (a kernel without autogroups, a process that ended),
    False when the kernel refused it (after ``_AUTOGROUP_TRIES`` tries of its rate limit);
    never raises (a priority is never worth a task)."""
    path = f"/proc/{pid}/autogroup"
    for attempt in range(_AUTOGROUP_TRIES):
        try:
            with open(path, "w") as fh:
                fh.write(str(niceness))
            return True
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ESRCH):
                return True
            if e.errno != errno.EAGAIN or attempt == _AUTOGROUP_TRIES - 1:
                log.debug("could not set the group niceness of %d: %s", pid, e)
                return False
            time.sleep(_AUTOGROUP_RETRY_SECONDS)  # the host-wide rate limit, not a synchronisation
    return False
