"""Package for AWS: ``chalice package --merge-template infra/template.yaml out/``, then give every
function its own least-privilege role from the template instead of Chalice's ``DefaultRole``.

    python -m infra.package [OUT_DIR]        (make package)

Chalice derives ``DefaultRole`` from the boto3 calls it finds in ``app.py`` (none: they live in
``chalicelib/``), so it would allow CloudWatch Logs and SQS receive/delete only (DESIGN §10). The
template defines one role per function, marked ``Metadata.VodpipePrincipal: function:<name>`` —
the same roles the local cloud enforces — and ``bind_function_roles`` points each packaged
function at its role and removes ``DefaultRole``. Writes ``OUT_DIR/sam.yaml`` and the
deployment package ``OUT_DIR/deployment.zip``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Chalice's logical ids whose function name is not their snake_case form.
SPECIAL_FUNCTIONS = {"APIHandler": "api"}


def function_name(logical_id: str) -> str:
    """The Chalice function name of a packaged function's logical id (``IngestDeadLetters`` ->
    ``ingest_dead_letters``; the REST API handler -> ``api``)."""
    return SPECIAL_FUNCTIONS.get(logical_id) or re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()


def bind_function_roles(template: dict) -> dict:
    """Point every ``AWS::Serverless::Function`` at the role whose ``VodpipePrincipal`` is
    ``function:<its name>`` and drop ``DefaultRole``. Returns the template (changed in place).

    Raises ValueError naming a function without a role (deploying it would fail at its first
    AWS call), or when something still references ``DefaultRole``."""
    resources = template["Resources"]
    roles = {(r.get("Metadata") or {}).get("VodpipePrincipal"): logical for logical, r in resources.items()
             if r.get("Type") == "AWS::IAM::Role"}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        role = roles.get(f"function:{function_name(logical)}")
        if role is None:
            raise ValueError(f"no role in the template for function {function_name(logical)} ({logical})")
        res["Properties"]["Role"] = {"Fn::GetAtt": [role, "Arn"]}
    resources.pop("DefaultRole", None)
    if "DefaultRole" in yaml.safe_dump(template):
        raise ValueError("something still references DefaultRole")
    return template


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else ROOT / "out"
    # chalice wants a region even to package; the template itself is region-agnostic
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
           or "us-east-1"}
    subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--merge-template",
                    str(ROOT / "infra" / "template.yaml"), str(out)], cwd=ROOT, check=True, env=env)
    sam = out / "sam.yaml"
    template = bind_function_roles(yaml.safe_load(sam.read_text()))
    sam.write_text(yaml.safe_dump(template, sort_keys=False))
    print(f"wrote {sam} and {out / 'deployment.zip'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
