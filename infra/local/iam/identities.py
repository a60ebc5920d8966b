"""The stack's principals as the local IAM knows them: each role of the template that runs our
code (``Metadata.VodpipePrincipal``: ``function:<name>`` or ``task:<name>``) with its own
access keys, and the decisions for calls the local cloud makes on a principal's behalf (the ECS
agent's ``ecs:UpdateTaskProtection``). The rules are in ``docs/local-cloud.md``."""
from __future__ import annotations

from typing import Any

from infra.local.iam.enforcement import Principal, access_key_for
from infra.local.network import LOCAL_CREDENTIALS


class Identities:
    """Principals of ``stack`` (an ``infra.local.cloudformation.template.Stack``), registered
    with ``enforcer`` (the emulator's ``IamEnforcingApp``; None when the IAM check is off, e.g.
    an external emulator)."""

    def __init__(self, stack: Any, enforcer: Any = None):
        self.enforcer = enforcer
        self.principals = {name: Principal(name, arn, access_key_for(name), "local-" + access_key_for(name).lower(),
                                           documents)
                           for name, (arn, documents) in stack.principals().items()}
        if enforcer is not None:
            enforcer.account = stack.account
            enforcer.set_principals(self.principals.values())

    def credentials(self, principal: str | None) -> dict[str, str]:
        """``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` of ``principal`` (the local
        administrator's for None or an unknown name)."""
        known = self.principals.get(principal or "")
        return known.credentials() if known else {k: LOCAL_CREDENTIALS[k] for k in
                                                  ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    def authorize(self, principal: str, action: str, resource: str) -> bool:
        """Whether ``principal``'s role allows ``action`` (e.g. ``ecs:UpdateTaskProtection``) on
        ``resource`` (an ARN). Records a denial with the emulator's others. Everything is
        allowed when the IAM check is off or the principal is not one of the stack's."""
        known = self.principals.get(principal)
        if known is None or self.enforcer is None:
            return True
        allowed = known.decide(action, resource)
        if not allowed:
            self.enforcer.denials.append({"principal": principal, "action": action, "resource": resource})
        return allowed

    @property
    def denials(self) -> list[dict[str, str]]:
        """Calls the local IAM refused so far: {principal, action, resource}."""
        return list(self.enforcer.denials) if self.enforcer is not None else []
