"""Ownership rules (chalicelib/domain/ownership.py): which claim items a folder's claim writes,
which overlap the items read back show, and which sources a job may delete or archive."""
import pytest

from chalicelib.domain import ownership
from chalicelib.domain.job_settings import InvalidSettings
from chalicelib.services import source_after


def test_a_claim_sets_the_folder_and_marks_every_ancestor():
    assert ownership.claim_updates("shows/s1/e2", "J") == [
        {"folder": "shows/s1/e2", "set_owner": True}, {"folder": "shows", "set_owner": False},
        {"folder": "shows/s1", "set_owner": False}]
    assert ownership.claim_updates("0123456789abcdef0123", "J") == [{"folder": "0123456789abcdef0123",
                                                                      "set_owner": True}]
    assert ownership.ancestors("/a//b/") == ["a"]


@pytest.mark.parametrize("items, expected", [
    ({}, None),
    ({"a/b": {"job_id": "J"}}, None),  # its own claim: a redelivered ingest
    ({"a/b": {"job_id": "K"}}, {"job_id": "K", "relation": "is", "folder": "a/b"}),
    ({"a/b": {"nested": ["K"]}}, {"job_id": "K", "relation": "contains", "folder": "a/b"}),
    ({"a": {"job_id": "K", "nested": ["J"]}}, {"job_id": "K", "relation": "inside", "folder": "a"}),
    ({"a": {"nested": ["J", "K"]}}, None),  # siblings under a common parent do not overlap
    # the fixed-size mark (issue 22, B1): first_nested names a job below
    ({"a/b": {"nested": True, "first_nested": "K"}}, {"job_id": "K", "relation": "contains", "folder": "a/b"}),
    ({"a/b": {"nested": True, "first_nested": "J"}}, None),
    ({"a": {"nested": True, "first_nested": "K"}}, None),  # siblings
    ({"a": {"job_id": "K", "nested": True, "first_nested": "J"}}, {"job_id": "K", "relation": "inside", "folder": "a"}),
])
def test_which_job_overlaps_from_the_items_read_back(items, expected):
    assert ownership.conflict_of("a/b", "J", {"a": None, "a/b": None, **items}) == expected


def test_the_job_id_form_is_reserved_for_the_jobs_own_default_folders():
    """Issue 22, B4: ids are predictable, so an explicit folder whose first part looks like a
    job id could take a future job's default folder: refused, but not the job's own."""
    from chalicelib.domain import jobs
    future = jobs.job_id_for("ingest", "not/uploaded/yet.mp4", "0" * 32)
    assert ownership.JOB_ID.fullmatch(future)
    for folder in (future, f"{future}/x"):
        for job_id in ("", "0123456789abcdef0123"):
            message = ownership.reserved_folder_message(folder, job_id)
            assert message and "reserved for the jobs' own default folders" in message and future in message
    assert ownership.reserved_folder_message(future, future) is None, "its own default folder"
    assert ownership.reserved_folder_message(f"shows/{future}", "") is None, "the job-id form not first"
    assert ownership.reserved_folder_message("shows/a", "") is None
    assert ownership.reserved_folder_message(future.upper(), "") is None, "not the form of an id"


def test_the_message_names_the_other_job_and_how_they_overlap():
    inside = ownership.conflict_message("abc/360p", {"job_id": "abc", "relation": "inside", "folder": "abc"})
    assert "lies inside 'abc', the output folder of job abc" in inside
    assert "contains the output folder of job K" in ownership.conflict_message(
        "shows", {"job_id": "K", "relation": "contains", "folder": "shows"})


def test_a_folder_too_deep_to_claim_in_one_transaction_is_invalid():
    with pytest.raises(InvalidSettings) as e:
        ownership.folder_parts("/".join("p" * (ownership.MAX_FOLDER_DEPTH + 1)))
    assert e.value.field == "output_prefix"
    assert len(ownership.claim_updates("/".join("p" * ownership.MAX_FOLDER_DEPTH), "J")) == ownership.MAX_FOLDER_DEPTH


def test_a_job_owns_its_upload_or_its_import_never_an_object_it_was_pointed_at():
    assert ownership.source_owner(from_request=False, imported=False) == ownership.UPLOAD
    assert ownership.source_owner(from_request=True, imported=True) == ownership.IMPORT
    assert ownership.source_owner(from_request=True, imported=False) is None
    ownership.check_source_after("keep", None)
    ownership.check_source_after("delete", ownership.UPLOAD)
    for action in ("delete", "archive"):
        with pytest.raises(InvalidSettings) as e:
            ownership.check_source_after(action, None, "s3://bucket/theirs.mp4")
        assert e.value.field == "source_after" and "s3://bucket/theirs.mp4" in e.value.message


class NoObjects:
    """Any call on it fails the test: an unowned source must not be touched."""

    def __getattr__(self, name):
        raise AssertionError(f"objects.{name} called for a source the job does not own")


class Ctx:
    objects = NoObjects()


@pytest.mark.parametrize("owner", [None, "someone"])
def test_source_after_never_touches_a_source_the_job_does_not_own(owner):
    job = {"job_id": "J", "source_after": "delete", "source_bucket": "b", "source_key": "k",
           "source_version_id": "v1", **({"source_owner": owner} if owner else {})}
    assert source_after.apply(Ctx(), job) == "kept: not the job's own upload"
    assert source_after.apply(Ctx(), {**job, "source_after": "archive"}) == "kept: not the job's own upload"


def test_only_a_first_part_shaped_like_another_jobs_id_may_be_its_default_folder():
    job_id = "0123456789abcdef0123"
    assert ownership.default_folder_candidate(f"{job_id}/360p", "ffffffffffffffffffff") == job_id
    assert ownership.default_folder_candidate(job_id, job_id) is None
    assert ownership.default_folder_candidate(f"shows/{job_id}", "x") is None
    assert ownership.default_folder_candidate("0123456789ABCDEF0123", "x") is None

