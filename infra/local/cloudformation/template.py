"""A CloudFormation template resolved for one stack: parameters, conditions and the
intrinsic functions the local cloud needs (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``,
``Fn::Not``, ``Fn::Equals``, ``Fn::If``...), each resource's physical id and attributes once
``provision.Provisioner`` has created it, and what the local cloud reads from it (the functions'
environment, the roles' policies, the task definition).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_SUB = re.compile(r"\$\{([^}!]+)\}")


def load_template(path: Path | str = TEMPLATE) -> dict:
    """The template as a dict (long-form intrinsics only, so ``yaml.safe_load`` reads it)."""
    with open(path) as fh:
        return yaml.safe_load(fh)


@dataclass
class Stack:
    """A resolved template: parameter values, conditions and each resource's physical id
    (``refs``) and attributes (``attrs``)."""

    template: dict
    params: dict[str, Any]
    region: str
    account: str
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    # --- intrinsic functions -----------------------------------------------------------
    def pseudo(self) -> dict[str, str]:
        return {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws",
                "AWS::StackName": f"{self.params.get('AppName', 'vodpipe')}-{self.params.get('Stage', 'dev')}",
                "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}

    def _ref(self, name: str) -> Any:
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"unresolved Ref {name}")

    def _getatt(self, logical: str, attr: str) -> Any:
        try:
            return self.attrs[logical][attr]
        except KeyError:
            raise KeyError(f"unresolved Fn::GetAtt {logical}.{attr}") from None

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions inside ``value`` (dicts, lists, scalars)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._getatt(logical, attr)
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

                def sub(m: re.Match) -> str:
                    key = m.group(1)
                    if key in extra:
                        return str(extra[key])
                    if "." in key and not key.startswith("AWS::"):
                        return str(self._getatt(*key.split(".", 1)))
                    return str(self._ref(key))
                return _SUB.sub(sub, text)
            if fn == "Fn::Join":
                sep, items = arg
                items = self.resolve(items)
                return sep.join(str(i) for i in (items if isinstance(items, list) else [items]))
            if fn == "Fn::Equals":
                a, b = self.resolve(arg)
                return a == b
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.conditions[cond] else no)
        return {k: self.resolve(v) for k, v in value.items()}

    def deps(self, logical: str) -> set[str]:
        """Logical ids a resource depends on (Ref, GetAtt, Sub and DependsOn)."""
        res = self.template["Resources"][logical]
        found: set[str] = set()
        names = set(self.template["Resources"])

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    if k == "Ref" and isinstance(x, str) and x in names:
                        found.add(x)
                    elif k == "Fn::GetAtt":
                        found.add(x[0] if isinstance(x, list) else x.split(".")[0])
                    elif k == "Fn::Sub":
                        text = x if isinstance(x, str) else x[0]
                        found.update(m.split(".")[0] for m in _SUB.findall(text) if m.split(".")[0] in names)
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(res.get("Properties", {}))
        dep = res.get("DependsOn", [])
        found.update([dep] if isinstance(dep, str) else dep)
        return found

    def order(self) -> list[str]:
        """Resources in dependency order. Raises ValueError on a cycle."""
        done: list[str] = []
        pending = list(self.template["Resources"])
        while pending:
            ready = [r for r in pending if self.deps(r) <= set(done)]
            if not ready:
                raise ValueError(f"dependency cycle among {pending}")
            done += ready
            pending = [r for r in pending if r not in ready]
        return done

    def app_env(self) -> dict[str, str]:
        """The application's ``VODPIPE_*`` environment for this stack: the functions'
        environment of ``Metadata.VodpipeFunctions`` (what packaging gives every function),
        resolved, plus app and stage."""
        spec = ((self.template.get("Metadata") or {}).get("VodpipeFunctions") or {}).get("Environment") or {}
        env = {k: "" if v is None else str(v) for k, v in self.resolve(spec).items()}
        env["VODPIPE_APP"], env["VODPIPE_STAGE"] = str(self.params["AppName"]), str(self.params["Stage"])
        return env

    def principals(self) -> dict[str, tuple[str, list[str]]]:
        """Roles that run our code: ``Metadata.VodpipePrincipal`` (``function:<name>`` or
        ``task:<name>``) -> (role ARN, inline policy documents as resolved JSON strings)."""
        import json as _json
        out = {}
        for logical, res in self.template["Resources"].items():
            name = (res.get("Metadata") or {}).get("VodpipePrincipal")
            if res["Type"] != "AWS::IAM::Role" or not name:
                continue
            documents = [_json.dumps(self.resolve(p["PolicyDocument"])) for p in res["Properties"].get("Policies", [])]
            out[name] = (f"arn:aws:iam::{self.account}:role/{logical}", documents)
        return out

    def task_definition(self, logical: str = "TranscoderTaskDefinition") -> dict:
        """The resolved properties of an ECS task definition (CloudFormation casing)."""
        return self.resolve(self.template["Resources"][logical]["Properties"])
