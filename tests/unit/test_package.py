"""Packaging for AWS gives each function its own role from the template (not Chalice's
DefaultRole, which would allow almost nothing our code calls)."""
import copy

import pytest

from infra.local.provision import load_template
from infra.package import bind_function_roles, function_name


def packaged(functions):
    """What `chalice package --merge-template` produces, reduced to what matters here."""
    template = copy.deepcopy(load_template())
    template["Resources"]["DefaultRole"] = {"Type": "AWS::IAM::Role", "Properties": {}}
    for logical in functions:
        template["Resources"][logical] = {"Type": "AWS::Serverless::Function", "Properties": {
            "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]}, "Handler": "app.x"}}
    return template


def test_every_function_of_the_app_gets_its_own_role():
    import app
    names = sorted({src.name for src in app.app.event_sources} | {"api"})
    logical = {"ingest": "Ingest", "ingest_dead_letters": "IngestDeadLetters", "dead_letters": "DeadLetters",
               "dead_letter_gauge": "DeadLetterGauge", "webhooks": "Webhooks", "api": "APIHandler"}
    assert sorted(function_name(logical[n]) for n in names) == names
    template = bind_function_roles(packaged([logical[n] for n in names]))
    assert "DefaultRole" not in template["Resources"]
    roles = {template["Resources"][logical[n]]["Properties"]["Role"]["Fn::GetAtt"][0] for n in names}
    assert len(roles) == len(names), "one role per function"
    for n in names:
        role = template["Resources"][template["Resources"][logical[n]]["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert role["Metadata"]["VodpipePrincipal"] == f"function:{n}"
        statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert all(s["Resource"] != "*" for s in statements), f"{n}: no * resource"


def test_a_function_without_a_role_is_refused():
    with pytest.raises(ValueError, match="no role in the template for function transcode_everything"):
        bind_function_roles(packaged(["TranscodeEverything"]))
