"""Ownership: the output folder a job holds, and the source a job may delete or archive. Pure:
the rules and the decisions; the writes are ``chalicelib.aws.records.Records.claim_folder``.

**Output folders.** A job writes only under its output folder: its ``output_prefix`` setting
or, by default, its job id (``jobs.output_prefix``). A folder is a path of ``/``-separated
parts. Two folders *overlap* when one is the other, contains it or lies inside it, by whole
parts (``shows/a`` contains ``shows/a/b`` but not ``shows/ab``). No two jobs hold overlapping
folders, so no job can write over, or list as its own, another job's outputs.

How the rule holds with DynamoDB's per-item conditions (docs/state.md, "Output-folder
claims"): a job claims folder ``F`` in one ``TransactWriteItems`` of one update per part of ``F``
(``claim_updates``):

* the item of ``F`` itself (``PREFIX#F``): ``SET job_id = <job>`` on condition that no other
  job holds ``F`` (``attribute_not_exists(job_id) OR job_id = <job>``) and that no job's
  folder lies inside ``F`` (``attribute_not_exists(nested)``);
* the item of every ancestor ``A`` of ``F`` (``PREFIX#A``): ``SET nested = true,
  first_nested = if_not_exists(first_nested, <job>)`` on condition that no job holds ``A``
  itself (``attribute_not_exists(job_id)``). The mark is fixed-size: ``first_nested`` names
  one job below (for the conflict message), never a growing set of them, so a common root
  under which any number of jobs claim stays far under DynamoDB's 400 KB item limit. (Items
  written when ``nested`` was a set of job ids are read the same way.)

Every overlap of two folders meets on one item: equal folders on ``F``'s (two ``job_id``
writes), nested folders on the outer one's (its ``job_id`` against the inner job's
``nested`` mark), so whichever transaction comes second fails its condition, whatever the
order and however they interleave. The same job claiming again (a redelivered ingest event)
passes every condition and changes nothing (``SET`` to the same values). Sibling claims under
one parent never fail a condition, but DynamoDB may cancel one of two concurrent
transactions on the same item (``TransactionConflict``): the claim retries that itself
(``Records.claim_folder``). Claims are never released: a job's outputs stay where they are.

**The job-id form is reserved.** Job ids are predictable (``jobs.job_id_for``: a hash of the
source and settings), so an explicit ``output_prefix`` whose first part looks like a job id (20
hex digits) could take a future job's default folder before that job exists. Such a prefix
is refused (``reserved_folder_message``; ``OUTPUT_PREFIX_IN_USE``), except the job's own
default folder.

**Sources.** A job may delete or archive (``source_after``) only a source it owns
(``source_owner``): the upload whose own S3 event made the job (a plain upload or one through
``POST /uploads``, settings in its metadata or sidecar), or the object a URL import wrote for
it. A ``POST /jobs`` naming an object already in the ingest bucket reads someone's upload,
which other jobs may be reading or resume from: it may only ``keep`` it.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import InvalidSettings

#: Most parts an output folder may have: its claim writes one item per part in one
#: transaction (DynamoDB allows 100 actions per transaction).
MAX_FOLDER_DEPTH = 32
#: Key prefix of the claim items (``pk = PREFIX#<folder>``, ``sk = PREFIX``).
CLAIM_PK = "PREFIX#"

#: What a job id looks like (``jobs.job_id_for``).
JOB_ID = re.compile(r"[0-9a-f]{20}")
#: ``source_owner`` values: how a job owns its source (None: it does not).
UPLOAD, IMPORT = "upload", "import"


def folder_parts(folder: str) -> list[str]:
    """The parts of ``folder`` (``"a/b/c"`` -> ``["a", "b", "c"]``; empty parts dropped).
    Raises ``InvalidSettings`` (field ``output_prefix``) for more than ``MAX_FOLDER_DEPTH``
    parts or none."""
    parts = [p for p in str(folder).split("/") if p]
    if not parts:
        raise InvalidSettings("output_prefix", "an output folder needs at least one part")
    if len(parts) > MAX_FOLDER_DEPTH:
        raise InvalidSettings("output_prefix", f"{len(parts)} levels; at most {MAX_FOLDER_DEPTH} (each level is "
                                               f"claimed for the job)")
    return parts


def ancestors(folder: str) -> list[str]:
    """Every folder that contains ``folder``, outermost first (``"a/b/c"`` -> ``["a",
    "a/b"]``). Raises as ``folder_parts``."""
    parts = folder_parts(folder)
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def claim_updates(folder: str, job_id: str) -> list[dict[str, Any]]:
    """The updates that claim ``folder`` for ``job_id`` (see the module docstring), as
    ``{"folder", "set_owner": bool}``: the folder itself (``set_owner``), then each ancestor
    (a ``nested`` mark). Raises as ``folder_parts``."""
    exact = "/".join(folder_parts(folder))
    return [{"folder": exact, "set_owner": True}, *({"folder": a, "set_owner": False} for a in ancestors(exact))]


def conflict_of(folder: str, job_id: str, items: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str] | None:
    """Which other job's folder overlaps ``folder``, from the claim items read back
    (``items``: folder -> its item's ``job_id``/``nested``, or None when there is none; the
    folder itself and its ancestors). Returns ``{"job_id", "relation", "folder"}`` with
    ``relation`` ``is`` (the same folder), ``contains`` (``folder`` contains the other job's)
    or ``inside`` (``folder`` lies inside ``folder`` of the other job), or None when no other
    job's folder overlaps (``job_id`` itself never conflicts)."""
    exact = "/".join(folder_parts(folder))
    own = items.get(exact) or {}
    if own.get("job_id") and own["job_id"] != job_id:
        return {"job_id": str(own["job_id"]), "relation": "is", "folder": exact}
    inner = _nested_job(own, job_id)
    if inner:
        return {"job_id": inner, "relation": "contains", "folder": exact}
    for outer in ancestors(exact):
        owner = (items.get(outer) or {}).get("job_id")
        if owner and owner != job_id:
            return {"job_id": str(owner), "relation": "inside", "folder": outer}
    return None


def _nested_job(item: Mapping[str, Any], job_id: str) -> str | None:
    """A job other than ``job_id`` whose folder lies inside the claim ``item``'s: its
    ``first_nested`` when ``nested`` is the (fixed-size) mark, or the first of an older
    item's set of job ids. None when there is none (only ``job_id`` itself, or no mark)."""
    nested = item.get("nested")
    if not nested:
        return None
    if isinstance(nested, (list, tuple, set, frozenset)):
        inner = sorted(str(j) for j in nested if j != job_id)
        return inner[0] if inner else None
    first = item.get("first_nested")
    return str(first) if first and first != job_id else None


def default_folder_candidate(folder: str, job_id: str) -> str | None:
    """The job whose *default* folder ``folder`` would be or lie inside, when its first part
    looks like a job id (``jobs.job_id_for``: 20 hex digits) other than ``job_id``; None
    otherwise. Default folders are claimed like any other, but jobs created before claims
    covered them hold none: the caller looks that job up (it holds the folder when its own
    ``output_prefix`` is the default). Only the first part can be one: default folders are
    top level, so nothing but the bucket contains them."""
    first = folder_parts(folder)[0]
    return first if JOB_ID.fullmatch(first) and first != job_id else None


def reserved_folder_message(folder: str, job_id: str) -> str | None:
    """Why ``folder`` may not be claimed by ``job_id`` though no job holds it yet: its first
    part has the form of a job id (``JOB_ID``) other than ``job_id``'s, the form reserved for
    the jobs' own default folders (ids are predictable, so such a folder could be a future
    job's). None for any other folder, and for the job's own default folder (or one inside
    it). ``job_id`` "" (not known yet): any job-id form is reserved. Raises as
    ``folder_parts``."""
    if default_folder_candidate(folder, job_id) is None:
        return None
    return (f"output folder {folder!r} starts with {folder_parts(folder)[0]!r}, which has the form of a job id "
            f"(20 hex digits): that form is reserved for the jobs' own default folders; choose another "
            f"output_prefix")


def conflict_message(folder: str, conflict: Mapping[str, str]) -> str:
    """The ``OUTPUT_PREFIX_IN_USE`` message for a ``conflict_of`` answer (names the other job,
    never its settings)."""
    other = conflict["job_id"]
    if conflict["relation"] == "is":
        what = f"is the output folder of job {other}"
    elif conflict["relation"] == "contains":
        what = f"contains the output folder of job {other}"
    else:
        what = f"lies inside {conflict['folder']!r}, the output folder of job {other}"
    return f"output folder {folder!r} {what}; choose an output_prefix that neither contains nor lies inside another job's"


def source_owner(from_request: bool, imported: bool) -> str | None:
    """How a job owns its source: ``IMPORT`` (a URL import made for it), ``UPLOAD`` (made by
    the upload's own S3 event), or None (``from_request``: a ``POST /jobs`` naming an object
    already in the bucket)."""
    if imported:
        return IMPORT
    return None if from_request else UPLOAD


def check_source_after(action: str | None, owner: str | None, source: str = "the source") -> None:
    """Refuse ``source_after`` ``delete``/``archive`` of a source the job does not own
    (``owner`` from ``source_owner``). Raises ``InvalidSettings`` (field ``source_after``)."""
    if action in (None, "keep") or owner in (UPLOAD, IMPORT):
        return
    raise InvalidSettings("source_after", f"{action!r} applies only to a source the job owns (its own upload or URL "
                                          f"import); {source} was uploaded on its own and other jobs may read it. "
                                          f"Upload the file with the job's settings (POST /uploads or S3 metadata) "
                                          f"to have it {action}d")
