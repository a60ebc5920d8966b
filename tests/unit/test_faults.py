import pytest

from chalicelib import faults
from chalicelib.domain.errors import TransientError


def test_no_file_no_fault(monkeypatch, tmp_path):
    monkeypatch.setenv("VODPIPE_FAULTS_FILE", str(tmp_path / "absent"))
    faults.check("s3_upload", "job/360p/seg_00000.ts")


def test_counted_fault_fires_the_given_number_of_times_for_matching_details(monkeypatch, tmp_path):
    f = tmp_path / "faults"
    f.write_text("s3_upload 2 /360p/seg_00001.ts\n")
    monkeypatch.setenv("VODPIPE_FAULTS_FILE", str(f))
    faults.check("s3_upload", "job/360p/seg_00000.ts")  # no match
    faults.check("task_start", "job/360p/seg_00001.ts")  # other point
    for _ in range(2):
        with pytest.raises(TransientError):
            faults.check("s3_upload", "job/360p/seg_00001.ts")
    faults.check("s3_upload", "job/360p/seg_00001.ts")  # spent
    f.write_text("task_start always /240p\n")
    for _ in range(3):
        with pytest.raises(TransientError):
            faults.check("task_start", "job/240p")
    f.unlink()
    faults.check("task_start", "job/240p")  # removed: the fault is over
