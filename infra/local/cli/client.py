"""The pipeline as a user's client sees it: signed API calls (SigV4 with the caller's AWS
credentials), uploads that carry job settings, live progress bars, job summaries and output
downloads. Used by the ``vodpipe`` commands (``infra.local.cli.main``)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.markup import escape

from chalicelib.config import ClientSettings
from chalicelib.domain.settings_metadata import metadata_for
from chalicelib.domain.jobs import TERMINAL, job_id_for

from infra.local.apigateway.auth import sign_request
from infra.local.network import DEFAULT_API_PORT, DEFAULT_PORT, LOCAL_CREDENTIALS

console = Console()


# --- clients ----------------------------------------------------------------------------
def endpoint() -> str:
    """The emulator's endpoint: ``AWS_ENDPOINT_URL``, else the local cloud's default port."""
    return ClientSettings.from_env().endpoint_url or f"http://127.0.0.1:{DEFAULT_PORT}"


def api_url() -> str:
    """The API's base URL: ``VODPIPE_API_URL``, else the local cloud's default port."""
    return ClientSettings.from_env().api_url or f"http://127.0.0.1:{DEFAULT_API_PORT}"


def _client(service: str, endpoint_url: str | None = None, identity: ClientSettings | None = None):
    """A boto3 client for the local cloud (credentials from ``identity``, default the shell's
    ``ClientSettings``, else the local test ones; endpoint ``endpoint_url``, else
    ``AWS_ENDPOINT_URL``, else 127.0.0.1:4566)."""
    settings = identity or ClientSettings.from_env()
    return boto3.session.Session(aws_access_key_id=settings.access_key_id or LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=settings.secret_access_key
                                 or LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                 region_name=settings.region or LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]).client(
        service, endpoint_url=endpoint_url or endpoint())


def _s3(endpoint_url: str, identity: ClientSettings | None = None):
    return _client("s3", endpoint_url, identity)


def signed_headers(method: str, url: str, body: bytes | None = None,
                   identity: ClientSettings | None = None) -> dict[str, str]:
    """SigV4 (execute-api) headers for a request to the API: with ``identity``'s keys when it
    names them (e.g. the local cloud ``vodpipe demo`` started), else the caller's AWS
    credentials (environment, profile...; the local cloud's when none are configured)."""
    settings = identity or ClientSettings.from_env()
    if identity is not None and identity.access_key_id and identity.secret_access_key:
        key, secret, token = identity.access_key_id, identity.secret_access_key, None
    else:
        creds = boto3.session.Session().get_credentials()
        key, secret, token = ((creds.access_key, creds.secret_key, creds.token) if creds else
                              (LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None))
    region = settings.region or LOCAL_CREDENTIALS["AWS_REGION"]
    return sign_request(method, url, body, key, secret, region, token)


def api_get(base: str, path: str, identity: ClientSettings | None = None) -> dict | None:
    """Signed GET ``base + path`` as JSON (signed as ``signed_headers`` says); None for 404.
    Raises ConnectionError when unreachable."""
    url = base.rstrip("/") + path
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=signed_headers("GET", url, None, identity)),
                                    timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise
    except urllib.error.URLError as e:
        raise ConnectionError(f"the vodpipe API at {base} is not reachable ({e.reason}); is `vodpipe up` running?") from e


def submit(path: Path, bucket: str, key: str | None, endpoint_url: str, settings: dict | None = None,
           identity: ClientSettings | None = None) -> str:
    """Upload ``path`` to ``s3://bucket/key`` (key defaults to the file name) with ``settings``
    (a job-settings document) in its metadata; returns the job id the upload will get
    (derived from bucket, key and ETag, like ingest does). The metadata always carries a
    document (``{}`` for the defaults), so ingest starts at once instead of waiting for a
    sidecar. Raises ``InvalidSettings`` before any upload when the document does not fit S3's
    2 KB of user metadata (``settings_metadata.metadata_for``)."""
    key = key or path.name
    meta = metadata_for(settings or {}) or {"settings": "{}"}
    s3 = _s3(endpoint_url, identity)
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": meta})
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    return job_id_for(bucket, key, etag)


def api_post(base: str, path: str, body: dict) -> tuple[int, dict]:
    """Signed POST of ``body`` as JSON; returns (HTTP status, JSON answer)."""
    url = base.rstrip("/") + path
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **signed_headers("POST", url, data)}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST", headers=headers),
                                    timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except urllib.error.URLError as e:
        raise ConnectionError(f"the vodpipe API at {base} is not reachable ({e.reason}); is `vodpipe up` running?") from e


def settings_from_args(args) -> dict:
    """The job-settings document the ``submit`` options describe (README: job settings)."""
    doc: dict = {}
    if args.preset and args.ladder:
        raise ValueError("--preset and --ladder are exclusive")
    if args.preset or args.ladder:
        doc["ladder"] = args.ladder or args.preset  # rung text or a preset name: the schema reads both
    outputs = {}
    if args.mp4:
        outputs["mp4"] = [n.strip() for n in args.mp4.split(",") if n.strip()]
    if args.audio:
        outputs["audio"] = True
    if args.no_thumbnails:
        outputs["thumbnails"] = False
    if outputs:
        doc["outputs"] = outputs
    for field in ("priority", "max_resolution", "segment_duration", "output_prefix", "source_after", "webhook_url"):
        if getattr(args, field, None) is not None:
            doc[field] = getattr(args, field)
    if getattr(args, "normalize_audio", None) is not None:
        value = args.normalize_audio
        doc["normalize_audio"] = True if value == "true" else float(value)
    if getattr(args, "audio_tracks", None):
        doc["audio_tracks"] = [int(t) if t.strip().isdigit() else t.strip() for t in args.audio_tracks.split(",") if t.strip()]
    if getattr(args, "caption", None):
        doc["captions"] = [caption_entry(text) for text in args.caption]
    if args.meta:
        doc["metadata"] = dict(pair.split("=", 1) for pair in args.meta)
    return doc


def caption_entry(text: str) -> dict:
    """A ``--caption`` value, ``LANG[:captions]=SOURCE`` (``fr=ep1.fr.srt``,
    ``en:captions=s3://bucket/ep1.en.srt``), as a ``captions`` entry. Raises ValueError."""
    head, sep, source = text.partition("=")
    language, _, kind = head.partition(":")
    if not sep or not language.strip() or not source.strip():
        raise ValueError(f"--caption {text!r} is not LANG[:captions]=FILE or URL (e.g. fr=ep1.fr.srt)")
    return {"source": source.strip(), "language": language.strip(), **({"kind": kind.strip()} if kind else {})}


def caption_uploads(settings: dict, bucket: str, video_key: str) -> list[tuple[Path, str]]:
    """Point every ``captions`` entry naming a local file at the ingest bucket
    (``<video key>.<n>.<language>.<ext>``, which makes no job: ``ingest.CAPTION_SUFFIXES``) and
    return the (file, key) pairs to upload. Raises ValueError for a file that does not exist."""
    uploads = []
    for n, entry in enumerate(settings.get("captions") or []):
        if "://" in entry["source"]:
            continue
        path = Path(entry["source"])
        if not path.is_file():
            raise ValueError(f"no such caption file: {path}")
        if path.suffix.lower() not in (".srt", ".vtt"):
            raise ValueError(f"{path}: a caption file is .srt (SubRip) or .vtt (WebVTT)")
        key = f"{video_key}.{n}.{entry['language']}{path.suffix.lower()}"
        entry["source"] = f"s3://{bucket}/{key}"
        uploads.append((path, key))
    return uploads


def upload_captions(uploads: list[tuple[Path, str]], bucket: str, endpoint_url: str,
                    identity: ClientSettings | None = None) -> None:
    """Upload the caption files ``caption_uploads`` chose, before their video."""
    s3 = _s3(endpoint_url, identity)
    for path, key in uploads:
        s3.upload_file(str(path), bucket, key)


def follow(base: str, job_id: str, timeout: float = 3600.0, identity: ClientSettings | None = None) -> dict:
    """Show live progress bars (job and each rendition) until the job is terminal; returns
    the final job resource (reads signed as ``identity``, see ``signed_headers``). Raises
    TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as bars:
        overall = bars.add_task("job", total=100, status="waiting for ingest")
        rows: dict[str, int] = {}
        while time.monotonic() < deadline:
            job = api_get(base, f"/jobs/{job_id}", identity)
            if job:
                bars.update(overall, completed=job["progress"], status=job["status"])
                for r in job["renditions"]:
                    if r["name"] not in rows:
                        rows[r["name"]] = bars.add_task(f"  {r['name']}", total=100, status="")
                    bars.update(rows[r["name"]], completed=r["progress"], status=r["status"])
                if job["status"] in TERMINAL:
                    return job
            time.sleep(0.5)
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f} s")


def print_job(job: dict) -> None:
    """Human summary of a job resource."""
    colour = {"complete": "green", "failed": "red"}.get(job["status"], "yellow")
    console.print(f"[bold]job[/] {job['job_id']}  [{colour}]{job['status']}[/]  {job['progress']:.0f}%")
    src, probe = job.get("source") or {}, job.get("probe") or {}
    console.print(f"source  s3://{src.get('bucket')}/{src.get('key')} ({src.get('size')} bytes)")
    if probe:
        console.print(f"probe   {probe['display_width']}x{probe['display_height']} (coded {probe['width']}x{probe['height']}, "
                      f"rotation {probe['rotation']}) {probe['video_codec']}/{probe.get('audio_codec') or 'no audio'} "
                      f"{probe['frame_rate']:.3f} fps {probe['duration']:.2f} s")
    if job.get("error"):
        console.print(f"[red]error[/]   {job['error']['code']}: {job['error']['message']}")
    table = Table("rendition", "size", "bitrate (bit/s)", "peak (bit/s)", "codecs", "segments", "status")
    for r in job["renditions"]:
        size = f"{r['width']}x{r['height']}" if r.get("kind") == "video" else ""
        rate = r.get("video_bitrate") or r.get("bitrate") or ""
        codecs = r.get("codecs", "")
        if r.get("kind") == "text":  # a subtitle rendition: its language and cue count instead
            size, codecs = escape(f"{r.get('language') or 'und'}: {r.get('label') or ''}"), f"WebVTT, {r.get('cues', '?')} cues"
        table.add_row(r["name"], size, str(rate), str(r.get("peak_bandwidth", "")), codecs,
                      str(r.get("segments", "")), r["status"])
    console.print(table)
    master = (job.get("outputs") or {}).get("master_playlist")
    if master:
        console.print(f"[bold]master playlist[/] {master.get('url') or master['uri']}")


def download_outputs(job: dict, bucket: str, endpoint_url: str, dest: Path,
                     identity: ClientSettings | None = None) -> Path:
    """Copy every output object of the job to ``dest/<output prefix>/``; returns that folder."""
    s3 = _s3(endpoint_url, identity)
    prefix = (job.get("settings") or {}).get("output_prefix") or job["job_id"]
    root = dest / prefix
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for obj in page.get("Contents", []):
            target = dest / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
    return root
