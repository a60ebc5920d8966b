"""Reading a settings document from text, bounded: at most ``MAX_DOCUMENT_BYTES``, nesting at
most ``MAX_DEPTH`` (checked in linear time before ``json`` recurses), and names fit to echo in
an error message. Pure; ``job_settings`` validates what this reads.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from .errors import InvalidSettings

#: How deeply a settings document may nest objects and arrays (the document itself is level 1).
#: A valid one needs 3 (``{"ladder": [{"name": ...}]}``); 8 leaves a mistaken one room to get
#: the schema's message naming its field. Checked in linear time before ``json`` recurses
#: (CPython's decoder raises ``RecursionError`` near 1,000 levels) and before pydantic sees it.
MAX_DEPTH = 8
#: Largest settings document read from text (bytes, UTF-8): 64 KiB, the sidecar's limit
#: (``services/ingest.SIDECAR_MAX_BYTES``) and the HTTP API's body limit (``app.MAX_BODY_BYTES``).
MAX_DOCUMENT_BYTES = 64 * 1024
#: Characters refused in every settings string that is stored, echoed or used as a name: C0
#: and C1 controls (newline, carriage return, NUL, escape ...), DEL, U+2028/U+2029 (line breaks
#: in JavaScript and many log viewers) and lone surrogates (no UTF-8 encoding exists).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

#: One token of the depth scan: a JSON string (escapes skipped; an unterminated one runs to
#: the end) or a bracket. Each character is consumed once: linear time.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def load_json(text: str | bytes, field: str) -> Any:
    """Parse a settings document from text (an API body, ``x-amz-meta-settings``, a sidecar),
    bounded: at most ``MAX_DOCUMENT_BYTES``, nesting at most ``MAX_DEPTH`` (checked by one
    linear scan before ``json`` recurses), strict JSON (no ``NaN``/``Infinity``; integers of at
    most 4,300 digits, CPython's own limit). ``field`` names the source in errors.

    Raises ``InvalidSettings`` (field ``field``, or the top-level key that nests too deeply
    when ``field`` is ``"body"``, whose keys are the settings fields) and nothing else."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise InvalidSettings(field, f"{len(text)} bytes; at most {MAX_DOCUMENT_BYTES}")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidSettings(field, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    elif len(text) > MAX_DOCUMENT_BYTES:  # characters: at least as many bytes
        raise InvalidSettings(field, f"{len(text)} characters; at most {MAX_DOCUMENT_BYTES} bytes")
    depth, branch, last_string = 0, None, None
    for token in _JSON_TOKEN.finditer(text):
        t = token.group()
        if t[0] == '"':
            if depth == 1:
                last_string = t
        elif t in "[{":
            depth += 1
            if depth == 2:
                branch = last_string
            if depth > MAX_DEPTH:
                key = _key_name(branch)
                if field == "body" and key:
                    raise InvalidSettings(key, f"nested deeper than {MAX_DEPTH} levels of objects and arrays")
                raise InvalidSettings(field, f"{key + ' is ' if key else ''}nested deeper than {MAX_DEPTH} levels "
                                             "of objects and arrays")
        else:
            depth -= 1

    def no_constant(name: str):
        raise ValueError(f"{name} is not JSON")
    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise InvalidSettings(field, f"not JSON ({e.msg}: line {e.lineno} column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # 4,300-digit integers; RecursionError cannot happen after the scan
        raise InvalidSettings(field, f"not JSON ({printable_name(str(e))})") from None


def _key_name(token: str | None) -> str | None:
    """The top-level key a depth-scan string token spells, printable, or None."""
    if token is None:
        return None
    try:
        key = json.loads(token)
    except ValueError:
        return None
    return printable_name(key) if isinstance(key, str) and key else None


def check_depth(document: Mapping[str, Any]) -> None:
    """Refuse a settings document (already parsed) that nests objects and arrays deeper than
    ``MAX_DEPTH``: an iterative walk, linear in the document's size, that stops at the first
    value too deep. Raises ``InvalidSettings`` naming the top-level field holding it."""
    for key, value in document.items():
        stack = [(value, 2)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (Mapping, list, tuple)):
                if depth > MAX_DEPTH:
                    raise InvalidSettings(printable_name(str(key)), f"nested deeper than {MAX_DEPTH} levels of objects and arrays")
                stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, Mapping) else node))


def printable_name(name: str, limit: int = 64) -> str:
    """``name`` fit for an error message: control characters escaped, at most ``limit``
    characters (``...`` marks a cut)."""
    if CONTROL_CHARACTERS.search(name):
        name = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return name if len(name) <= limit else name[:limit] + "..."
