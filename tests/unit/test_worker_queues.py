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


def worker(script):
    settings = Settings(tasks_queue="normal", tasks_high_queue="high", poll_wait_seconds=5)
    return Worker(SimpleNamespace(settings=settings, queues=Queues(script)), worker_id="w")


def message(receipt, receives=1):
    return {"ReceiptHandle": receipt, "Attributes": {"ApproximateReceiveCount": str(receives)}, "Body": "{}"}


def test_a_high_task_arriving_during_the_long_poll_is_taken_first():
    w = worker({"high": [[], [message("first-chunk")]], "normal": [[message("later-chunk")]]})
    assert [(q, m["ReceiptHandle"]) for q, m in w.receive()] == [("high", "first-chunk")]
    assert w.ctx.queues.released == [("normal", "later-chunk", 0)]  # back for the next worker
    assert w.ctx.queues.calls == [("high", 0), ("normal", 5), ("high", 0)]


def test_a_normal_message_is_kept_when_nothing_waits_or_it_was_released_before():
    w = worker({"high": [[], []], "normal": [[message("later-chunk")]]})
    assert [q for q, _ in w.receive()] == ["normal"] and w.ctx.queues.released == []
    w = worker({"high": [[], [message("first-chunk")]], "normal": [[message("later-chunk", receives=2)]]})
    assert [q for q, _ in w.receive()] == ["normal"] and w.ctx.queues.released == []  # gives up one receive at most
