"""``vodpipe``: run the local cloud and use the pipeline like a user would.

    vodpipe up [--port 4566] [--api-port 8000] [--workers N]   the local cloud, foreground
               [--data-dir .vodpipe/data] [--fresh]            its state kept there (or discarded first)
    vodpipe env                                                export lines for another shell
    vodpipe plan [--param KEY=VALUE ...]                       what provisioning would do
    vodpipe submit FILE [--key KEY] [--follow]                 upload to the ingest bucket
    vodpipe status [JOB]                                       the job; without one, the data directory's size
    vodpipe jobs [--status S] [--limit N]                      list jobs
    vodpipe logs [--job JOB] [--follow]                        CloudWatch logs of the pipeline
    vodpipe alarms                                             alarm states and transitions
    vodpipe demo [INPUT]                                       all of it, on a real clip

Clients (``submit``, ``status``, ``jobs``) use ``AWS_ENDPOINT_URL`` (default
http://127.0.0.1:4566) and ``VODPIPE_API_URL`` (default http://127.0.0.1:8000), like any S3
client would.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from chalicelib.config import DEFAULT_ACCOUNT, ClientSettings, Settings, resource_names
from chalicelib.domain.errors import ToolMissingError
from chalicelib.domain.job_settings import InvalidSettings
from chalicelib.domain.settings_metadata import metadata_for
from chalicelib.domain.job_settings import parse as parse_settings
from chalicelib.domain.presets import MAX_RESOLUTIONS

from infra.local.cli.client import (_client, api_get, api_post, api_url, caption_uploads, console,
                                    endpoint, follow, print_job, settings_from_args, submit, upload_captions)
from infra.local.cli.running import cmd_demo, cmd_up, print_data_dir, template_params
from infra.local.cloud import DEFAULT_DATA_DIR
from infra.local.network import DEFAULT_API_PORT, LOCAL_CREDENTIALS


# --- commands ---------------------------------------------------------------------------
def cmd_env(args) -> int:
    """``vodpipe env``: export lines (endpoint, local credentials, the template's resource names,
    API URL) for another shell. Returns 0."""
    names = resource_names()
    env = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint(), "VODPIPE_API_URL": api_url(),
           "LOCALSTACK_HOST": endpoint().split("//", 1)[1], **names}
    print("\n".join(f"export {k}={v}" for k, v in sorted(env.items())))
    return 0


def cmd_plan(args) -> int:
    """Print the provisioning plan of ``infra/template.yaml`` (``--param KEY=VALUE`` over the
    defaults and the local cloud's own): one line per resource, in the order it is created."""
    from infra.local.cloudformation.plan import plan_stack
    from infra.local.cloudformation.provision import Provisioner
    from infra.local.cloudformation.template import load_template
    try:
        params = template_params(args.param, {"PublicOutputs": "true", "TranscoderMaxTasks": os.cpu_count() or 2})
    except ValueError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        return 2
    template = load_template()
    region = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
    plan = plan_stack(template, params, region, DEFAULT_ACCOUNT, Provisioner(None, None, region).creatable(template))
    print("\n".join(plan.describe()))
    return 1 if plan.unsupported else 0


def cmd_submit(args) -> int:
    """``vodpipe submit``: upload a file with job settings (or ask ``POST /jobs`` for an
    ``s3://``/https source), optionally following the job. Returns 0, 1 (job failed) or 2
    (invalid settings, refused request)."""
    bucket, captions = Settings.from_env().ingest_bucket, []
    try:
        settings = settings_from_args(args)
        # local caption files go to the ingest bucket, beside the upload (or the named object)
        captions = caption_uploads(settings, bucket, args.key or (args.source.split("/", 3)[-1] if "://" in args.source
                                                                  else Path(args.source).name))
        parse_settings(settings)  # the service validates again; this names a mistake before any upload
        if "://" not in args.source:
            metadata_for(settings)  # an upload carries them as S3 metadata: at most 2 KB
    except (ValueError, InvalidSettings) as e:
        console.print(f"[red]invalid settings[/]: {e}")
        return 2
    if "://" not in args.source and not Path(args.source).is_file():
        console.print(f"[red]no such file[/]: {args.source}")
        return 2
    upload_captions(captions, bucket, endpoint())
    if "://" in args.source:  # s3://bucket/key (or a URL): a POST /jobs request
        status, answer = api_post(api_url(), "/jobs", {"source": args.source, **settings})
        if status != 202:
            console.print(f"[red]refused ({status})[/]: {answer.get('Message') or answer}")
            return 2
        job_id = answer["job_id"]
        console.print(f"submitted {args.source}; job {job_id}")
    else:
        path = Path(args.source)
        job_id = submit(path, bucket, args.key, endpoint(), settings)
        console.print(f"uploaded to s3://{bucket}/{args.key or path.name}; job {job_id}")
    if args.follow:
        job = follow(api_url(), job_id)
        print_job(job)
        return 0 if job["status"] == "complete" else 1
    return 0


def cmd_status(args) -> int:
    """``vodpipe status [JOB]``: one job resource (summary or ``--json``); without a job, the
    local cloud: its endpoints and the size of its data directory (``--data-dir``). Returns 0,
    or 1 for an unknown job."""
    if args.job_id is None:
        console.print(f"emulator {endpoint()}  API {api_url()}")
        print_data_dir(Path(args.data_dir))
        return 0
    job = api_get(api_url(), f"/jobs/{args.job_id}")
    if job is None:
        console.print(f"[red]job {args.job_id} not found[/]")
        return 1
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        print_job(job)
    return 0


def cmd_jobs(args) -> int:
    """``vodpipe jobs``: recent jobs as a table (``--status``, ``--limit``). Returns 0."""
    query = f"?limit={args.limit}" + (f"&status={args.status}" if args.status else "")
    res = api_get(api_url(), f"/jobs{query}") or {"jobs": []}
    table = Table("job", "status", "source", "created")
    for j in res["jobs"]:
        table.add_row(j["job_id"], j["status"], j["source"]["key"] or "", j["created_at"] or "")
    console.print(table)
    return 0


def log_groups(logs, app: str, stage: str) -> list[str]:
    """The pipeline's log groups: its Lambda functions' and the transcoder task's."""
    groups = []
    for prefix in (f"/aws/lambda/{app}-{stage}", f"/ecs/{app}-{stage}-"):
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            groups += [g["logGroupName"] for g in page["logGroups"]]
    return sorted(set(groups))


def cmd_logs(args) -> int:
    """``vodpipe logs``: the pipeline's CloudWatch log events (``--job`` filters by job id,
    ``--since`` minutes, ``--follow`` polls every 2 s). Returns 0."""
    logs = _client("logs")
    settings = ClientSettings.from_env()
    app, stage = settings.app, settings.stage
    groups = log_groups(logs, app, stage)
    start = int((time.time() - args.since * 60) * 1000)
    seen: set[str] = set()
    while True:
        events = []
        for group in groups:
            kwargs = {"logGroupName": group, "startTime": start}
            if args.job:
                kwargs["filterPattern"] = f'"{args.job}"'
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                events += [(e["timestamp"], group, e) for e in page["events"] if e["eventId"] not in seen]
        for ts, group, e in sorted(events, key=lambda x: x[0]):
            seen.add(e["eventId"])
            when = time.strftime("%H:%M:%S", time.localtime(ts / 1000))
            print(f"{when} {group.rsplit('/', 1)[-1]:<28} {e['message']}", flush=True)
            start = max(start, ts)
        if not args.follow:
            return 0
        time.sleep(2)


def cmd_alarms(args) -> int:
    """``vodpipe alarms``: each alarm's state and its recent transitions. Returns 0."""
    settings = ClientSettings.from_env()
    app, stage = settings.app, settings.stage
    cw, logs = _client("cloudwatch"), _client("logs")
    table = Table("alarm", "state", "since", "reason")
    colour = {"OK": "green", "ALARM": "red"}
    for a in cw.describe_alarms(AlarmNamePrefix=f"{app}-{stage}-")["MetricAlarms"]:
        st = a["StateValue"]
        table.add_row(a["AlarmName"], f"[{colour.get(st, 'yellow')}]{st}[/]",
                      a["StateUpdatedTimestamp"].strftime("%H:%M:%S"), escape(a.get("StateReason", "")))
    console.print(table)
    try:
        events = logs.filter_log_events(logGroupName=f"/vodpipe/{app}-{stage}/alarm-history",
                                        limit=args.history)["events"]
    except logs.exceptions.ResourceNotFoundException:
        events = []
    if events:
        console.print("[bold]recent transitions[/]")
    for e in events[-args.history:]:
        t = json.loads(e["message"])
        console.print(f"{t['StateChangeTime']}  {t['AlarmName']}: {t['OldStateValue']} -> {t['NewStateValue']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``vodpipe`` command: parse ``argv`` (default ``sys.argv[1:]``) and run the
    subcommand; returns its exit status."""
    parser = argparse.ArgumentParser(prog="vodpipe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="run the local cloud in the foreground")
    p.add_argument("--port", type=int, default=None, help="emulator port (default 4566, 0 = free; "
                                                           "without it AWS_ENDPOINT_URL, if set, is used instead)")
    p.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU cores)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                   help=f"where the emulator's state is kept across restarts (default {DEFAULT_DATA_DIR})")
    p.add_argument("--fresh", action="store_true", help="discard the data directory's state first")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a template parameter, e.g. TaskVisibilityTimeout=30 (as `vodpipe plan --param`)")
    p.set_defaults(fn=cmd_up)
    sub.add_parser("env", help="print export lines for the local cloud").set_defaults(fn=cmd_env)
    p = sub.add_parser("plan", help="print what provisioning the template would do, resource by resource")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a template parameter")
    p.set_defaults(fn=cmd_plan)
    p = sub.add_parser("submit", help="upload a video (or submit s3://... by the API) with job settings")
    p.add_argument("source", help="a video file (uploaded to the ingest bucket) or s3://<ingest bucket>/<key>")
    p.add_argument("--key", help="object key of an uploaded file (default: the file name)")
    p.add_argument("--preset", help="a named ladder (GET /presets): web (default), roku-hls")
    p.add_argument("--ladder", help="explicit rungs <height>:<bitrate>, e.g. 720:3000k,480:1500k")
    p.add_argument("--mp4", help="rungs that also get a progressive MP4, e.g. 720p,480p")
    p.add_argument("--audio", action="store_true", help="also an .m4a of the audio")
    p.add_argument("--no-thumbnails", action="store_true", help="no poster, no sprite sheets")
    p.add_argument("--priority", choices=["normal", "high"])
    p.add_argument("--max-resolution", dest="max_resolution", choices=list(MAX_RESOLUTIONS),
                   help="the tallest rung: 1080p (default), 1440p or 2160p (web adds rungs above 1080p)")
    p.add_argument("--normalize-audio", dest="normalize_audio", nargs="?", const="true", metavar="LUFS",
                   help="normalize loudness: alone -16 LUFS (AES TD1004), or a target from -31 to -5")
    p.add_argument("--audio-tracks", dest="audio_tracks", metavar="LIST",
                   help="audio tracks to keep, by language or position, e.g. en,es or 0,2 (default: all)")
    p.add_argument("--caption", action="append", metavar="LANG[:captions]=FILE",
                   help="a caption file (SRT or WebVTT: a local file, s3://<ingest bucket>/<key> or https URL) "
                        "published as subtitles in LANG, e.g. fr=ep1.fr.srt; ':captions' marks captions for the "
                        "deaf and hard of hearing; repeat for more")
    p.add_argument("--segment-duration", type=int, dest="segment_duration", help="seconds: 2, 4, 6 (default), 8, 10")
    p.add_argument("--prefix", dest="output_prefix", help="output key prefix (default: the job id)")
    p.add_argument("--source-after", dest="source_after", choices=["keep", "delete", "archive"])
    p.add_argument("--webhook", dest="webhook_url", help="this job's webhook URL")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="free-form metadata echoed in the job and events")
    p.add_argument("--follow", action="store_true", help="show progress until the job ends")
    p.set_defaults(fn=cmd_submit)
    p = sub.add_parser("status", help="show one job; without one, the local cloud and its data directory's size")
    p.add_argument("job_id", nargs="?")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--status", choices=["queued", "processing", "complete", "failed"])
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(fn=cmd_jobs)
    p = sub.add_parser("logs", help="the pipeline's CloudWatch logs (functions and worker tasks)")
    p.add_argument("--job", help="only lines of this job")
    p.add_argument("--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--since", type=float, default=60, help="minutes back (default 60)")
    p.set_defaults(fn=cmd_logs)
    p = sub.add_parser("alarms", help="alarm states and recent transitions")
    p.add_argument("--history", type=int, default=20, help="how many transitions (default 20)")
    p.set_defaults(fn=cmd_alarms)
    p = sub.add_parser("demo", help="run the whole pipeline on a real clip")
    p.add_argument("input", nargs="?", help="a video file (default: the Big Buck Bunny sample clip)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--port", type=int, default=None, help="emulator port (default 4566 if free, else any)")
    p.add_argument("--api-port", type=int, default=None, help="API port (default 8000 if free, else any)")
    p.add_argument("--output", default="output", help="where to copy the HLS output (default ./output)")
    p.add_argument("--no-wait", action="store_true", help="exit when the job ends, even on a terminal")
    p.set_defaults(fn=cmd_demo)
    args = parser.parse_args(argv)
    try:
        from chalicelib.tools.ffmpeg import binaries
        if args.cmd in ("up", "demo"):
            binaries()
        return args.fn(args)
    except ToolMissingError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    except ConnectionError as e:
        console.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
