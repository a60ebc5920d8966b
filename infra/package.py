"""Package for AWS: ``chalice package --merge-template infra/template.yaml out/``, then give every
function its own least-privilege role from the template instead of Chalice's ``DefaultRole``.

    python -m infra.package [OUT_DIR]        (make package)

Chalice derives ``DefaultRole`` from the boto3 calls it finds in ``app.py`` (none: they live in
``chalicelib/``), so it would allow CloudWatch Logs and SQS receive/delete only (docs/measured-facts.md). The
template defines one role per function, marked ``Metadata.VodpipePrincipal: function:<name>`` —
the same roles the local cloud enforces — and ``bind_function_roles`` points each packaged
function at its role and removes ``DefaultRole``. ``bind_console_authorizer`` points the console routes' Cognito authorizer at the template's
user pool. ``apply_function_metadata`` then gives every
function the environment in ``Metadata.VodpipeFunctions.Environment`` (resource names by
reference), one function alone what ``Metadata.VodpipeFunctions.FunctionEnvironment`` names for
it (the webhook signing key: the webhooks function), and the scanner suppressions in ``Metadata.VodpipeFunctions.ScannerSuppressions``
(each with its reason) to the resources Chalice generates. Writes ``OUT_DIR/sam.yaml`` and the
deployment package ``OUT_DIR/deployment.zip``; ``ensure_package`` rebuilds them only when a
file they are built from changed (the local cloud runs the functions from this package).
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


def apply_function_metadata(template: dict) -> dict:
    """Merge ``Metadata.VodpipeFunctions.Environment`` into every ``AWS::Serverless::Function``'s
    ``Environment.Variables`` (the template's own values win over Chalice's config.json), then
    ``Metadata.VodpipeFunctions.FunctionEnvironment[<function name>]`` into that function's
    only (secrets such as the webhook signing key: no other function gets them, and a name
    set there is removed from every other function), and copy
    ``Metadata.VodpipeFunctions.ScannerSuppressions[<type>]`` into ``Metadata.checkov.skip`` of
    each generated resource of that type. Returns the template (changed in place)."""
    spec = (template.get("Metadata") or {}).get("VodpipeFunctions") or {}
    environment = spec.get("Environment") or {}
    own = spec.get("FunctionEnvironment") or {}
    restricted = {name for variables in own.values() for name in variables}
    suppressions = spec.get("ScannerSuppressions") or {}
    for logical, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            variables = res["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            variables.update(environment)
            for name in restricted:
                variables.pop(name, None)
            variables.update(own.get(function_name(logical)) or {})
        if res.get("Type") in suppressions:
            skip = res.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
            skip.extend(s for s in suppressions[res["Type"]] if s not in skip)
    return template


def bind_event_queues(template: dict) -> dict:
    """Point every SQS event of a packaged function at the template's queue resource
    (``Fn::GetAtt [Queue, Arn]``) instead of the literal ARN Chalice wrote from the queue name
    the app saw at packaging time (the default app and stage), so a stack deployed with any
    AppName/Stage subscribes to its own queues. Returns the template (changed in place).

    Raises ValueError naming an event whose queue is not one of the template's queues."""
    resources = template["Resources"]
    defaults = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}

    def default_name(props: dict) -> str:
        name = props.get("QueueName")
        text = name.get("Fn::Sub") if isinstance(name, dict) else name
        return re.sub(r"\$\{([^}]+)\}", lambda m: defaults.get(m.group(1), m.group(0)), str(text))
    queues = {default_name(r["Properties"]): logical for logical, r in resources.items()
              if r.get("Type") == "AWS::SQS::Queue"}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event["Properties"]["Queue"]
            arn = queue.get("Fn::Sub", "") if isinstance(queue, dict) else str(queue)
            name = arn.rsplit(":", 1)[-1]
            if name not in queues:
                raise ValueError(f"function {function_name(logical)} listens to {name}, not a queue of the template")
            event["Properties"]["Queue"] = {"Fn::GetAtt": [queues[name], "Arn"]}
    return template


def bind_console_authorizer(template: dict, pool: str = "ConsoleUserPool") -> dict:
    """Point the REST API's Cognito authorizer (``app.CONSOLE_USERS``) at the template's user
    pool ``pool`` (``Fn::GetAtt [pool, Arn]``) instead of the placeholder ARN the app holds at
    packaging time, and give API Gateway's default 4XX/5XX responses CORS headers (API Gateway
    developer guide, "Gateway responses"). Returns the template (changed in place).

    Raises ValueError when the API has a Cognito authorizer but the template no such pool."""
    for res in template["Resources"].values():
        if res.get("Type") != "AWS::Serverless::Api":
            continue
        definitions = (res["Properties"].get("DefinitionBody") or {}).get("securityDefinitions") or {}
        for definition in definitions.values():
            authorizer = definition.get("x-amazon-apigateway-authorizer") or {}
            if authorizer.get("type") != "cognito_user_pools":
                continue
            if template["Resources"].get(pool, {}).get("Type") != "AWS::Cognito::UserPool":
                raise ValueError(f"the API has a Cognito authorizer but the template has no user pool {pool}")
            authorizer["providerARNs"] = [{"Fn::GetAtt": [pool, "Arn"]}]
            # API Gateway's own 4XX/5XX answers (401 for a missing or expired token) carry CORS
            # headers too, or the console on the CDN's origin could not read them and sign in again
            cors = {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                    "gatewayresponse.header.Access-Control-Allow-Headers": "'Authorization,Content-Type'"}
            res["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"] = {
                kind: {"responseParameters": cors} for kind in ("DEFAULT_4XX", "DEFAULT_5XX")}
    return template


FINGERPRINTED = ("app.py", "requirements.txt", ".chalice/config.json", "infra/template.yaml", "infra/package.py")


def source_fingerprint(root: Path = ROOT) -> str:
    """SHA-256 over every file the package is built from (``FINGERPRINTED`` and
    ``chalicelib/**/*.py``): names and bytes."""
    import hashlib
    digest = hashlib.sha256()
    files = [root / f for f in FINGERPRINTED] + sorted((root / "chalicelib").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build(out: Path) -> None:
    """``chalice package --merge-template`` into ``out``, then roles, environment and scanner
    suppressions. Raises subprocess.CalledProcessError when chalice fails, ValueError as
    ``bind_function_roles``."""
    # chalice wants a region even to package; the template itself is region-agnostic
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
           or "us-east-1"}
    subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--merge-template",
                    str(ROOT / "infra" / "template.yaml"), str(out)], cwd=ROOT, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    sam = out / "sam.yaml"
    template = apply_function_metadata(bind_console_authorizer(bind_event_queues(bind_function_roles(
        yaml.safe_load(sam.read_text())))))
    sam.write_text(yaml.safe_dump(template, sort_keys=False))


def ensure_package(out: Path = ROOT / "out") -> Path:
    """``out`` holding a package built from the current sources: rebuilt (``build``) when the
    fingerprint recorded next to it differs from ``source_fingerprint()``. Serialised across
    processes by a lock file. Returns ``out``."""
    import fcntl
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / ".fingerprint"
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fingerprint = source_fingerprint()
        if not (stamp.exists() and stamp.read_text() == fingerprint and (out / "deployment.zip").exists()):
            print(f"packaging the Lambda functions into {out} (chalice package; the first build downloads "
                  f"the wheels, a few minutes)", file=sys.stderr, flush=True)
            stamp.unlink(missing_ok=True)
            build(out)
            stamp.write_text(fingerprint)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else ROOT / "out"
    ensure_package(out.resolve())
    print(f"wrote {out / 'sam.yaml'} and {out / 'deployment.zip'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
