"""The console's static files in the local cloud (``infra.local.apigateway.console.ConsoleSite``)."""
import json

import pytest

from infra.local.apigateway.console import ConsoleSite


@pytest.fixture
def site(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "js" / "app.js").write_text("export {}")
    (tmp_path.parent / "secret.txt").write_text("not for the web")
    return ConsoleSite(lambda origin: {"api_url": origin + "/console/api"}, tmp_path)


def test_root_redirects_to_the_console_and_the_api_twin_is_not_a_file(site):
    assert site.respond("/", "http://h")[:2] == (302, {"Location": "/console/"})
    assert site.handles("/") and site.handles("/console/js/app.js") and site.handles("/console")
    assert not site.handles("/console/api/jobs") and not site.handles("/jobs")


def test_files_are_served_with_their_type_and_config_for_the_origin(site):
    status, headers, body = site.respond("/console/", "http://h")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and body == b"<!doctype html>"
    status, headers, body = site.respond("/console/js/app.js?v=1", "http://h")
    assert status == 200 and "javascript" in headers["Content-Type"]
    status, headers, body = site.respond("/console/config.json", "http://127.0.0.1:8000", "127.0.0.1:8000")
    assert json.loads(body) == {"api_url": "http://127.0.0.1:8000/console/api"}
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000"])
def test_config_is_served_to_the_gateway_s_own_host(site, host):
    assert site.respond("/console/config.json", "http://127.0.0.1:8000", host)[0] == 200


@pytest.mark.parametrize("host", ["attacker.example:8000", "attacker.example", "127.0.0.1:9999", "localhost",
                                  "127.0.0.1.nip.io:8000", "", None])
def test_config_is_refused_to_any_other_host_dns_rebinding(site, host):
    """GIVEN a page of another site whose name now resolves to 127.0.0.1 (DNS rebinding) WHEN it
    reads config.json (the local operator's password) THEN 421, nothing of the config."""
    status, _headers, body = site.respond("/console/config.json", "http://127.0.0.1:8000", host)
    assert status == 421 and b"api_url" not in body and b"password" not in body
    assert site.respond("/console/index.html", "http://127.0.0.1:8000", host)[0] == 200  # the files are public


@pytest.mark.parametrize("path", ["/console/../secret.txt", "/console/js/../../secret.txt", "/console/missing.js",
                                  "/console/%2e%2e/secret.txt"])
def test_nothing_outside_the_console_folder_is_served(site, path):
    assert site.respond(path, "http://h")[0] == 404
