"""Application Auto Scaling of the transcoder service, played locally from the template's own
policies (``TranscoderScalableTarget``, ``TranscoderBacklogScaling``, ``TranscoderScaleOutFromZero``).

* Target tracking on backlog per task: metric = visible task messages / running tasks; the new
  capacity is proportional, ceil(running × metric / target) (Application Auto Scaling user
  guide, "How target tracking scaling works"), which for this metric is ceil(visible / target).
  Scale-out happens as soon as the computed capacity exceeds the current one; scale-in only
  after the metric has stayed below the target for the scale-in cooldown, and no sooner than
  the cooldown after the last scaling activity ("scales out as fast as it can, scales in more
  gradually").
* Proportional scaling cannot leave zero: when messages wait and no task runs, the step policy
  (``backlog-without-tasks`` alarm, whose metric is then the waiting messages) adds the
  adjustment of the step the backlog falls in (bounds relative to the alarm's threshold; the
  template's steps start one task per waiting message, up to four).
* Always within [MinCapacity, MaxCapacity].

AWS evaluates these alarms every minute; locally every ``interval`` seconds (the same rule on
a shorter clock, as the local alarms do).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingPolicy:
    """The service's scaling settings. ``target``: backlog per task; cooldowns in s;
    ``first_steps``: the step policy out of zero as (lower, upper or None, tasks added), bounds
    relative to ``first_threshold`` waiting messages (Application Auto Scaling
    ``StepAdjustment``)."""

    min_tasks: int
    max_tasks: int
    target: float
    scale_in_cooldown: float
    scale_out_cooldown: float
    first_steps: tuple[tuple[float, float | None, int], ...] = ((0.0, None, 1),)
    first_threshold: float = 1.0

    @classmethod
    def from_stack(cls, stack, target_logical: str = "TranscoderScalableTarget",
                   policy_logical: str = "TranscoderBacklogScaling",
                   first_logical: str = "TranscoderScaleOutFromZero",
                   first_alarm_logical: str = "TranscoderBacklogWithoutTasksAlarm") -> "ScalingPolicy":
        """Read the resolved scalable target, target-tracking policy, and the step policy out
        of zero with its alarm's threshold, from ``stack``."""
        resources = stack.template["Resources"]
        target = stack.resolve(resources[target_logical]["Properties"])
        tracking = stack.resolve(resources[policy_logical]["Properties"])["TargetTrackingScalingPolicyConfiguration"]
        steps = stack.resolve(resources[first_logical]["Properties"])["StepScalingPolicyConfiguration"]
        if steps.get("AdjustmentType") != "ChangeInCapacity":
            raise ValueError(f"{first_logical}: only ChangeInCapacity steps are played locally")
        threshold = float(stack.resolve(resources[first_alarm_logical]["Properties"]["Threshold"]))
        # an absent bound is infinite (Application Auto Scaling API reference, StepAdjustment)
        first = tuple((float(a.get("MetricIntervalLowerBound", "-inf")),
                       float(a["MetricIntervalUpperBound"]) if "MetricIntervalUpperBound" in a else None,
                       int(a["ScalingAdjustment"])) for a in steps["StepAdjustments"])
        return cls(int(target["MinCapacity"]), int(target["MaxCapacity"]), float(tracking["TargetValue"]),
                   float(tracking.get("ScaleInCooldown", 300)), float(tracking.get("ScaleOutCooldown", 300)),
                   first, threshold)

    def first_tasks(self, visible: int) -> int:
        """Tasks the step policy starts when ``visible`` messages wait and none runs: the
        adjustment of the step ``visible - first_threshold`` falls in (lower bound inclusive,
        upper exclusive); 0 below the threshold."""
        if visible < self.first_threshold:
            return 0
        over = visible - self.first_threshold
        return next((n for lower, upper, n in self.first_steps if lower <= over and (upper is None or over < upper)), 0)

    def capacity(self, visible: int, running: int) -> int:
        """The capacity the policies ask for given ``visible`` task messages and ``running``
        tasks, clamped to [min_tasks, max_tasks]."""
        if running == 0:
            wanted = self.first_tasks(visible)  # the step policy out of zero
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
