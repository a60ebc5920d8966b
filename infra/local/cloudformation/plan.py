"""The provisioning plan: what the local cloud will do with each resource of the template,
decided before anything is created (the planner half of a planner/executor deployer, as
Chalice's deployer splits them).

``plan_stack(template, params, region, account)`` resolves the parameters and conditions and
orders the resources by their dependencies (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``DependsOn``); each ``Step`` says whether the resource is created on the endpoint, played by
the local cloud itself (a placeholder id: IAM roles by the local IAM, the ECS service by
``infra/local/ecs``, CloudFront by the emulator's bucket URLs...), skipped because its
``Condition`` is false, or unsupported. The plan is data: ``describe()`` prints it
(``vodpipe plan``), ``Provisioner.execute`` (``provision.py``) carries it out. The rules are
described in ``docs/local-cloud.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.local.cloudformation.template import Stack

#: Types the emulator needs nothing for: the local cloud plays their part, and what plays it.
PLAYED_LOCALLY = {
    "AWS::IAM::Role": "the local IAM (infra/local/iam)",
    "AWS::ECS::Service": "the local ECS service (infra/local/ecs)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "the local ECS service's scaler (infra/local/ecs)",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "the local ECS service's scaler (infra/local/ecs)",
    "AWS::ECR::Repository": "the worker runs from this checkout",
    "AWS::ECR::PullThroughCacheRule": "the worker runs from this checkout",
    "AWS::CloudFront::Distribution": "the emulator's bucket URLs",
    "AWS::CloudFront::OriginAccessControl": "the emulator's bucket URLs",
    "AWS::CloudFront::CachePolicy": "the emulator's bucket URLs",
    "AWS::CloudFront::ResponseHeadersPolicy": "the emulator's bucket URLs",
    "AWS::EC2::VPC": "one machine's network",
    "AWS::EC2::Subnet": "one machine's network",
    "AWS::EC2::RouteTable": "one machine's network",
    "AWS::EC2::SubnetRouteTableAssociation": "one machine's network",
    "AWS::EC2::SecurityGroup": "one machine's network",
    "AWS::EC2::VPCEndpoint": "one machine's network",
    "AWS::EC2::FlowLog": "one machine's network",
}

CREATE, PLAY, SKIP, UNSUPPORTED = "create", "play locally", "skip", "unsupported"


@dataclass(frozen=True)
class Step:
    """One resource's fate: ``action`` is ``create`` (through the endpoint's API), ``play
    locally`` (``reason`` names what plays it), ``skip`` (its ``Condition`` is false) or
    ``unsupported`` (the executor refuses the plan)."""

    logical: str
    type: str
    action: str
    reason: str = ""


@dataclass
class ProvisioningPlan:
    """Steps in dependency order, over a ``Stack`` whose parameters and conditions are
    resolved and whose resources are not created yet."""

    stack: Stack
    steps: list[Step] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One printable line per step, then one per parameter value."""
        width = max((len(s.logical) for s in self.steps), default=0)
        lines = [f"{s.action:<13} {s.logical:<{width}}  {s.type}" + (f"  ({s.reason})" if s.reason else "")
                 for s in self.steps]
        lines += [f"parameter     {k} = {v}" for k, v in sorted(self.stack.params.items())]
        return lines

    @property
    def unsupported(self) -> list[Step]:
        """Steps no executor can carry out (an empty list for a plan that can be executed)."""
        return [s for s in self.steps if s.action == UNSUPPORTED]


def plan_stack(template: dict, params: dict[str, Any] | None, region: str, account: str,
               creatable: set[str]) -> ProvisioningPlan:
    """Plan ``template`` with ``params`` (template parameter -> value, over the defaults;
    ``CommaDelimitedList`` values may be given as text) for ``account`` in ``region``.
    ``creatable``: the resource types the executor creates. Raises ``ValueError`` on a
    dependency cycle, ``KeyError`` for a condition naming an unknown parameter."""
    values = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
    values.update(params or {})
    for k, spec in template.get("Parameters", {}).items():
        if spec.get("Type") == "CommaDelimitedList" and isinstance(values[k], str):
            values[k] = [x for x in values[k].split(",") if x]
    stack = Stack(template, values, region, account)
    for name, expr in template.get("Conditions", {}).items():
        stack.conditions[name] = bool(stack.resolve(expr))
    plan = ProvisioningPlan(stack)
    for logical in stack.order():
        res = template["Resources"][logical]
        kind = res["Type"]
        if "Condition" in res and not stack.conditions[res["Condition"]]:
            plan.steps.append(Step(logical, kind, SKIP, f"condition {res['Condition']} is false"))
        elif kind in creatable:
            plan.steps.append(Step(logical, kind, CREATE))
        elif kind in PLAYED_LOCALLY:
            plan.steps.append(Step(logical, kind, PLAY, PLAYED_LOCALLY[kind]))
        else:
            plan.steps.append(Step(logical, kind, UNSUPPORTED, "the local provisioner cannot create it"))
    return plan
