"""Application Auto Scaling of the transcoder service, played locally from the template's own
policies (``TranscoderScalableTarget``, ``TranscoderBacklogScaling``, ``TranscoderScaleOutFromZero``).

* Target tracking on backlog per task: metric = visible task messages / running tasks; the new
  capacity is proportional, ceil(running × metric / target) (Application Auto Scaling user
  guide, "How target tracking scaling works"), which for this metric is ceil(visible / target).
  Scale-out happens as soon as the computed capacity exceeds the current one; scale-in only
  after the metric has stayed below the target for the scale-in cooldown, and no sooner than
  the cooldown after the last scaling activity ("scales out as fast as it can, scales in more
  gradually").
* Proportional scaling cannot leave zero: the step policy adds one task when messages wait and
  no task runs (the ``backlog-without-tasks`` alarm on AWS).
* Always within [MinCapacity, MaxCapacity].

AWS evaluates these alarms every minute; locally every ``interval`` seconds (the same rule on
a shorter clock, as the local alarms do).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingPolicy:
    """The service's scaling settings. ``target``: backlog per task; cooldowns in s."""

    min_tasks: int
    max_tasks: int
    target: float
    scale_in_cooldown: float
    scale_out_cooldown: float

    @classmethod
    def from_stack(cls, stack, target_logical: str = "TranscoderScalableTarget",
                   policy_logical: str = "TranscoderBacklogScaling") -> "ScalingPolicy":
        """Read the resolved scalable target and target-tracking policy of ``stack``."""
        target = stack.resolve(stack.template["Resources"][target_logical]["Properties"])
        policy = stack.resolve(stack.template["Resources"][policy_logical]["Properties"])
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        return cls(int(target["MinCapacity"]), int(target["MaxCapacity"]), float(tracking["TargetValue"]),
                   float(tracking.get("ScaleInCooldown", 300)), float(tracking.get("ScaleOutCooldown", 300)))

    def capacity(self, visible: int, running: int) -> int:
        """The capacity the policies ask for given ``visible`` task messages and ``running``
        tasks, clamped to [min_tasks, max_tasks]."""
        if running == 0:
            wanted = 1 if visible > 0 else 0  # the step policy: first task out of zero
        else:
            backlog_per_task = visible / running
            wanted = math.ceil(running * backlog_per_task / self.target - 1e-9)
        return max(self.min_tasks, min(self.max_tasks, wanted))


class Scaler:
    """Decides the desired count over time (see the module docstring). ``decide(now, visible,
    running, desired)`` returns the new desired count."""

    def __init__(self, policy: ScalingPolicy):
        self.policy = policy
        self.last_activity = -math.inf
        self.low_since: float | None = None

    def decide(self, now: float, visible: int, running: int, desired: int) -> int:
        wanted = self.policy.capacity(visible, running)
        if wanted > desired:
            self.low_since = None
            self.last_activity = now
            return wanted
        if wanted < desired:
            self.low_since = self.low_since if self.low_since is not None else now
            cooldown = self.policy.scale_in_cooldown
            if now - self.low_since >= cooldown and now - self.last_activity >= cooldown:
                self.last_activity = now
                self.low_since = None
                return wanted
            return desired
        self.low_since = None
        return desired
