"""The Lambda Python runtime's side of a local execution environment (stands in for Lambda's
``bootstrap`` and runtime interface client).

Started by ``runtime.FunctionContainer`` as ``python3 -S -E bootstrap.py HANDLER`` in the
function's task directory (the unzipped deployment package, Lambda's ``/var/task``), with the
environment Lambda would give the function and nothing of the host's. ``-S`` leaves out every
site-packages directory: the code sees the package's files, then the runtime directory
(``LAMBDA_RUNTIME_DIR``: the boto3/botocore the python3.11 runtime ships), then the standard
library — so an import that would fail on Lambda fails here too.

Protocol: one JSON request per line on stdin ``{"event", "request_id", "deadline_ms"}``, one JSON
response per line on the result pipe (file descriptor ``VODPIPE_RUNTIME_FD``)
``{"ok": true, "result"}`` or ``{"ok": false, "error_type", "message"}``. stdout/stderr are the
function's log (CloudWatch Logs on AWS).

This file imports nothing from the project: it runs before any of it is importable.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The context object handed to a handler (the attributes Lambda's Python runtime documents)."""

    def __init__(self, request_id: str, deadline_ms: int):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("VODPIPE_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return None


def main(handler_name: str) -> int:
    sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"], os.environ["LAMBDA_RUNTIME_DIR"]]
    results = os.fdopen(int(os.environ.pop("VODPIPE_RUNTIME_FD")), "w", buffering=1)
    module_name, _, attribute = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
        init_error = None
    except Exception as e:  # noqa: BLE001 - Runtime.ImportModuleError, reported per invocation
        traceback.print_exc()
        init_error = {"ok": False, "error_type": "Runtime.ImportModuleError",
                      "message": f"Unable to import module '{module_name}': {e}"}
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if init_error:
            results.write(json.dumps(init_error) + "\n")
            continue
        print(f"START RequestId: {request['request_id']} Version: $LATEST", flush=True)
        try:
            result = handler(request["event"], LambdaContext(request["request_id"], int(request["deadline_ms"])))
            response = {"ok": True, "result": _jsonable(result)}
        except Exception as e:  # noqa: BLE001 - reported to the caller, as Lambda reports errors
            traceback.print_exc()
            response = {"ok": False, "error_type": type(e).__name__, "message": str(e)[:2000]}
        print(f"END RequestId: {request['request_id']}", flush=True)
        sys.stderr.flush()
        results.write(json.dumps(response) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
