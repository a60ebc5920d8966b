"""Output-folder claims on the emulator's DynamoDB (``Records.claim_folder``): a folder that is,
contains or lies inside another job's is refused, atomically, whatever the order, and the same
job claiming again changes nothing (chalicelib/domain/ownership.py)."""
import threading
import uuid

from chalicelib.domain import ownership


def job() -> str:
    return uuid.uuid4().hex[:20]


def root() -> str:
    """A folder no other test uses (the emulator's table is shared by the session)."""
    return f"claims-{uuid.uuid4().hex[:8]}"


def claim_item(ctx, folder):
    found = ctx.records._ddb.get_item(TableName=ctx.records.table_name, Key=ctx.records._claim_key(folder),
                                      ConsistentRead=True).get("Item")
    return ctx.records._plain(found) if found else None


def test_a_folder_that_is_contains_or_lies_inside_another_jobs_is_refused(ctx):
    top, first, other = root(), job(), job()
    folder = f"{top}/shows/a"
    assert ctx.records.claim_folder(folder, first) is None
    assert ctx.records.claim_folder(folder, first) is None, "the same job again (a redelivered ingest)"
    assert ctx.records.claim_folder(folder, other) == {"job_id": first, "relation": "is", "folder": folder}
    assert ctx.records.claim_folder(f"{folder}/b", other) == {"job_id": first, "relation": "inside", "folder": folder}
    assert ctx.records.claim_folder(f"{top}/shows", other) == {"job_id": first, "relation": "contains",
                                                               "folder": f"{top}/shows"}
    assert ctx.records.claim_folder(top, other)["relation"] == "contains"
    # by whole parts: a sibling whose name starts the same is not inside
    assert ctx.records.claim_folder(f"{top}/shows/ab", other) is None
    # the read-only check of POST /jobs says the same without writing
    assert ctx.records.folder_conflict(f"{folder}/b/c", job()) == {"job_id": first, "relation": "inside",
                                                                   "folder": folder}
    assert ctx.records.folder_conflict(folder, first) is None
    assert ctx.records.folder_conflict(folder, "")["job_id"] == first, "an upload not made yet: any holder"


def test_a_refused_claim_writes_nothing(ctx):
    top, first, second, third = root(), job(), job(), job()
    assert ctx.records.claim_folder(f"{top}/x", first) is None
    # refused on its outer part: the transaction leaves no mark on the ancestors it passed
    assert ctx.records.claim_folder(f"{top}/x/y/z", second)["job_id"] == first
    assert claim_item(ctx, f"{top}/x/y/z") is None and claim_item(ctx, f"{top}/x/y") is None
    assert claim_item(ctx, top)["nested"] is True and claim_item(ctx, top)["first_nested"] == first
    # so a third job may still take the untouched sibling and the refused job's folder stays free
    assert ctx.records.claim_folder(f"{top}/w", third) is None
    assert claim_item(ctx, f"{top}/x/y/z") is None and claim_item(ctx, f"{top}/w")["job_id"] == third
    assert claim_item(ctx, top)["first_nested"] == first


def test_a_common_roots_item_does_not_grow_with_the_jobs_under_it(ctx):
    """Issue 22, B1. Before: every claim added its job id to a set on each ancestor's item, so
    ~20k jobs under ``customers/`` pushed that item past DynamoDB's 400 KB and every later job
    under it failed. After: a fixed-size mark (``nested``, ``first_nested``)."""
    top, jobs_under = root(), [job() for _ in range(3)]
    sizes = []
    for i, job_id in enumerate(jobs_under):
        assert ctx.records.claim_folder(f"{top}/customers/c{i}/show", job_id) is None
        found = ctx.records._ddb.get_item(TableName=ctx.records.table_name, Key=ctx.records._claim_key(top),
                                          ConsistentRead=True)["Item"]
        sizes.append(found)
    assert sizes[0] == sizes[1] == sizes[2], "the same attributes and values after each claim"
    assert set(sizes[0]) == {"pk", "sk", "nested", "first_nested"} and sizes[0]["nested"] == {"BOOL": True}
    assert claim_item(ctx, f"{top}/customers")["first_nested"] == jobs_under[0]
    # the mark still excludes a claim of the root itself, naming a job below
    assert ctx.records.claim_folder(top, job()) == {"job_id": jobs_under[0], "relation": "contains", "folder": top}


def test_an_item_marked_by_the_former_set_still_counts(ctx):
    """Items written when ``nested`` was a set of job ids keep excluding their folder's claim,
    and a new claim below turns the set into the fixed-size mark."""
    top, old, new = root(), job(), job()
    ctx.records._ddb.put_item(TableName=ctx.records.table_name,
                              Item={**ctx.records._claim_key(top), "nested": {"SS": [old]}})
    assert ctx.records.folder_conflict(top, new) == {"job_id": old, "relation": "contains", "folder": top}
    assert ctx.records.claim_folder(top, new) == {"job_id": old, "relation": "contains", "folder": top}
    assert ctx.records.claim_folder(f"{top}/b", new) is None
    assert claim_item(ctx, top)["nested"] is True and claim_item(ctx, top)["first_nested"] == new


def test_the_default_folder_is_claimed_like_any_other(ctx):
    """A job's default folder is its id: another job's output_prefix naming that id, or a
    folder inside it, is refused (the issue's case: POST /jobs {"output_prefix": <job id>})."""
    owner, other = job(), job()
    assert ctx.records.claim_folder(owner, owner) is None
    assert ctx.records.claim_folder(owner, other)["relation"] == "is"
    assert ctx.records.claim_folder(f"{owner}/360p", other)["relation"] == "inside"


def test_racing_claims_of_nested_folders_admit_exactly_one(ctx):
    """Eight rounds of two jobs claiming ``r`` and ``r/inner`` at the same instant: one wins,
    the other is told which job holds the overlapping folder."""
    for _ in range(8):
        top, outer_job, inner_job = root(), job(), job()
        results, start = {}, threading.Barrier(2)

        def claim(folder, job_id):
            start.wait()
            results[job_id] = ctx.records.claim_folder(folder, job_id)

        threads = [threading.Thread(target=claim, args=(top, outer_job)),
                   threading.Thread(target=claim, args=(f"{top}/inner", inner_job))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [j for j, conflict in results.items() if conflict is None]
        assert len(won) == 1, results
        lost = inner_job if won == [outer_job] else outer_job
        assert results[lost]["job_id"] == won[0]


def test_racing_sibling_claims_under_one_parent_all_succeed(ctx):
    """Issue 22, B2: siblings (``course/l1``, ``course/l2``...) claimed at the same instant
    mark the same parent; none overlaps, so every one holds its folder (a transaction the
    database cancels for the conflict is retried, not reported as an overlap)."""
    for _ in range(3):
        top = root()
        names = {job(): f"{top}/course/l{i}" for i in range(4)}
        results, start = {}, threading.Barrier(len(names))

        def claim(folder, job_id):
            start.wait()
            results[job_id] = ctx.records.claim_folder(folder, job_id)

        threads = [threading.Thread(target=claim, args=(folder, job_id)) for job_id, folder in names.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {job_id: None for job_id in names}
        assert claim_item(ctx, f"{top}/course")["first_nested"] in names


def test_a_folder_deeper_than_a_transaction_allows_is_invalid_settings(ctx):
    deep = "/".join(["d"] * (ownership.MAX_FOLDER_DEPTH + 1))
    try:
        ctx.records.claim_folder(deep, job())
    except ownership.InvalidSettings as e:
        assert e.field == "output_prefix" and str(ownership.MAX_FOLDER_DEPTH) in e.message
    else:
        raise AssertionError("a folder too deep to claim must be refused")
    assert ctx.records.claim_folder("/".join([root()] * ownership.MAX_FOLDER_DEPTH), job()) is None


def test_a_job_made_before_default_folders_were_claimed_still_holds_its_own(ctx):
    """Jobs created before this change hold no claim on their default folder: the job item
    itself answers for it (a folder whose first part is a job id whose outputs live there)."""
    from chalicelib.domain import jobs
    legacy, elsewhere, other = job(), job(), job()
    assert ctx.store.create_job({"job_id": legacy, "job_status": jobs.COMPLETE, "output_prefix": legacy}, [])
    assert ctx.store.create_job({"job_id": elsewhere, "job_status": jobs.COMPLETE, "output_prefix": "shows/x"}, [])
    assert ctx.records.claim_folder(legacy, other) == {"job_id": legacy, "relation": "is", "folder": legacy}
    assert ctx.records.claim_folder(f"{legacy}/240p", other)["relation"] == "inside"
    assert ctx.records.folder_conflict(f"{legacy}/240p", other)["job_id"] == legacy
    assert ctx.records.claim_folder(elsewhere, other) is None, "its outputs are under its output_prefix"
    assert ctx.records.claim_folder(job(), other) is None, "a job id no job has"
