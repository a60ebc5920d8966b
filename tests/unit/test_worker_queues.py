"""The worker's choice of queue (``chalicelib/worker.py``): a high-priority task before a
normal one, even when an idle worker was waiting in the normal queue's long poll when both
arrived."""
from types import SimpleNamespace

from chalicelib.config import Settings
from chalicelib.worker import Worker


class Queues:
    """Answers receives from a script: ``{queue: [answers in order]}``; records releases."""

    def __init__(self, script):
        self.script, self.calls, self.released = script, [], []

    def receive(self, queue, max_messages=1, wait_seconds=5, visibility_timeout=None):
        self.calls.append((queue, wait_seconds))
        answers = self.script.get(queue) or []
        return answers.pop(0) if answers else []

    def change_visibility(self, queue, receipt, seconds):
        self.released.append((queue, receipt, seconds))


def worker(script, first=True):
    settings = Settings(tasks_queue="normal", tasks_high_queue="high", tasks_first_queue="first" if first else "",
                        poll_wait_seconds=5)
    return Worker(SimpleNamespace(settings=settings, queues=Queues(script)), worker_id="w")


def message(receipt, receives=1):
    return {"ReceiptHandle": receipt, "Attributes": {"ApproximateReceiveCount": str(receives)}, "Body": "{}"}


def test_high_then_the_tasks_that_make_jobs_playable_then_the_rest_without_waiting():
    w = worker({"high": [[]], "first": [[]], "normal": [[message("later-chunk")]]})
    assert [q for q, _ in w.receive()] == ["normal"]
    assert w.ctx.queues.calls == [("high", 0), ("first", 0), ("normal", 0)]  # no wait while work is queued
    w = worker({"high": [[]], "first": [[message("new-upload-chunk-000", receives=3)]], "normal": [[message("later")]]})
    assert [(q, m["ReceiptHandle"]) for q, m in w.receive()] == [("first", "new-upload-chunk-000")]
    w = worker({"high": [[message("urgent")]], "first": [[message("x")]]})
    assert [q for q, _ in w.receive()] == ["high"] and w.ctx.queues.calls == [("high", 0)]


def test_an_idle_worker_waits_in_the_first_queue_and_starts_over_at_high():
    w = worker({})
    assert w.receive() == []
    assert w.ctx.queues.calls == [("high", 0), ("first", 0), ("normal", 0), ("first", 5)]
    # a high job that arrived during the wait is the next receive's first answer, before a backlog
    w = worker({"high": [[], [message("urgent")]], "first": [[], []], "normal": [[], [message("later")]]})
    assert w.receive() == [] and [q for q, _ in w.receive()] == ["high"]


def test_a_high_task_arriving_during_the_long_poll_is_taken_first():
    w = worker({"high": [[], [message("high-chunk")]], "first": [[], [message("first-chunk")]]})
    assert [(q, m["ReceiptHandle"]) for q, m in w.receive()] == [("high", "high-chunk")]
    assert w.ctx.queues.released == [("first", "first-chunk", 0)]  # back for the next worker
    assert w.ctx.queues.calls == [("high", 0), ("first", 0), ("normal", 0), ("first", 5), ("high", 0)]


def test_a_parked_message_is_kept_when_nothing_waits_or_it_was_released_before():
    w = worker({"high": [[], []], "first": [[], [message("first-chunk")]]})
    assert [q for q, _ in w.receive()] == ["first"] and w.ctx.queues.released == []
    w = worker({"high": [[], [message("high-chunk")]], "first": [[], [message("first-chunk", receives=2)]]})
    assert [q for q, _ in w.receive()] == ["first"] and w.ctx.queues.released == []  # gives up one receive at most


def test_without_a_first_queue_the_worker_waits_in_the_normal_one():
    w = worker({"high": [[]], "normal": [[]]}, first=False)
    assert w.receive() == [] and w.ctx.queues.calls == [("high", 0), ("normal", 0), ("normal", 5)]
    assert worker({}).receive(burst=True) == []  # burst: no wait at all


def test_the_tasks_that_make_a_job_playable_as_items_and_as_messages():
    from chalicelib.domain.task_messages import makes_playable
    assert makes_playable({"kind": "chunk", "index": 0}) and not makes_playable({"kind": "chunk", "index": 3})
    assert makes_playable({"kind": "audio"}) and makes_playable({"kind": "text"})
    assert makes_playable({"kind": "chunk", "spec": {"index": 0}})  # a message: the index is in its spec
    assert not makes_playable({"kind": "chunk", "spec": {"index": 5}})
    assert not makes_playable({"kind": "chunk"}), "a chunk without an index is not taken for the first"
