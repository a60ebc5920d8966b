"""Fixtures of the end-to-end modules."""
import pytest


@pytest.fixture(scope="module")
def faults_file(tmp_path_factory):
    """The fault-injection file of a module's local cloud (``VODPIPE_FAULTS_FILE``)."""
    return tmp_path_factory.mktemp("faults") / "faults.txt"
