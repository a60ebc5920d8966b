"""The Lambda deployment package, as the local Lambda runtime sees it.

``LambdaPackage.ensure()`` builds the package exactly as ``make package`` does for AWS
(``infra.package.ensure_package``: chalice package, roles, environment), unzips
``deployment.zip`` into a task directory (Lambda's ``/var/task``) and lays out a runtime
directory (Lambda's ``/var/runtime``): the boto3, botocore and their dependencies that the
python3.11 runtime ships, plus the bootstrap. ``functions(stack)`` reads each function from the
packaged template (``sam.yaml``): handler, timeout, memory, environment and event sources.

Nothing else reaches a function: not the host's site-packages, not its PATH (no ffmpeg or
ffprobe), not its environment. A module missing from ``requirements.txt``, a binary the runtime
lacks or a setting the template does not pass fails locally as it would on Lambda.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from infra.package import ROOT, ensure_package, function_name

if TYPE_CHECKING:
    from infra.local.cloudformation.template import Stack

#: What the python3.11 Lambda runtime provides besides the standard library (AWS documents
#: boto3 and botocore as included; these are them and their dependencies).
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")


@dataclass(frozen=True)
class FunctionSpec:
    """One packaged function. ``timeout`` in s, ``memory`` in MB; ``environment`` resolved;
    ``queue`` is the SQS queue name of its event source mapping (None if none), ``schedule``
    its schedule expression (e.g. ``rate(1 minute)``; None if none)."""

    name: str
    logical_id: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str] = field(default_factory=dict)
    queue: str | None = None
    batch_size: int = 10
    schedule: str | None = None


class LambdaPackage:
    """An unzipped deployment package (``task_dir``) and runtime directory (``runtime_dir``)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        fingerprint = (out_dir / ".fingerprint").read_text()[:16]
        self.task_dir = out_dir / "lambda" / fingerprint / "task"
        self.runtime_dir = out_dir / "lambda" / fingerprint / "runtime"
        self.bin_dir = out_dir / "lambda" / fingerprint / "bin"
        self.template = yaml.safe_load((out_dir / "sam.yaml").read_text())

    @classmethod
    def ensure(cls, out_dir: Path = ROOT / "out") -> "LambdaPackage":
        """Build the package if a source changed, then unzip it and lay out the runtime
        (once per package). Raises subprocess.CalledProcessError when packaging fails."""
        ensure_package(out_dir)
        package = cls(out_dir)
        package._unpack()
        return package

    def _unpack(self) -> None:
        root = self.task_dir.parent
        done = root / ".ready"
        if done.exists():
            return
        shutil.rmtree(root, ignore_errors=True)
        with zipfile.ZipFile(self.out_dir / "deployment.zip") as archive:
            archive.extractall(self.task_dir)
        self.runtime_dir.mkdir(parents=True)
        for module in RUNTIME_MODULES:
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise RuntimeError(f"the local Lambda runtime needs {module} installed (it ships with Lambda's)")
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            (self.runtime_dir / source.name).symlink_to(source)
        shutil.copy(BOOTSTRAP, self.runtime_dir / "bootstrap.py")
        # PATH of the execution environment: a python3 and nothing else (no ffmpeg, no ffprobe)
        self.bin_dir.mkdir(parents=True)
        (self.bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
        done.touch()

    def functions(self, stack: "Stack") -> dict[str, FunctionSpec]:
        """Every ``AWS::Serverless::Function`` of the packaged template, by function name,
        with intrinsic functions resolved against ``stack``."""
        out = {}
        for logical, res in self.template["Resources"].items():
            if res.get("Type") != "AWS::Serverless::Function":
                continue
            props: dict[str, Any] = res["Properties"]
            variables = stack.resolve((props.get("Environment") or {}).get("Variables") or {})
            queue, batch, schedule = None, 10, None
            for event in (props.get("Events") or {}).values():
                spec = stack.resolve(event.get("Properties") or {})
                if event["Type"] == "SQS":
                    queue, batch = spec["Queue"].rsplit(":", 1)[1], int(spec.get("BatchSize", 10))
                elif event["Type"] == "Schedule":
                    schedule = spec["Schedule"]
            name = function_name(logical)
            out[name] = FunctionSpec(name, logical, props["Handler"], int(props.get("Timeout", 3)),
                                     int(props.get("MemorySize", 128)),
                                     {k: "" if v is None else str(v) for k, v in variables.items()},
                                     queue, batch, schedule)
        return out
