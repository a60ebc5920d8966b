"""The local API gateway's Cognito user pool authorizer (``auth.UserPoolTokens``): GIVEN an
ID token WHEN a console route is called THEN it passes only if the pool signed it for its own
app client, as an ID token, and it has not expired (Cognito developer guide, "Verifying a JSON
Web Token")."""
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from infra.local.apigateway.auth import TokenRejected, UserPoolTokens

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
POOL_KEY = RSAKey.generate_key(2048, parameters={"kid": "pool", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "pool", "alg": "RS256", "use": "sig"})


def token(key=POOL_KEY, **claims) -> str:
    base = {"iss": ISSUER, "aud": "console-client", "token_use": "id", "sub": "u-1", "email": "op@example.com",
            "exp": int(time.time()) + 600}
    return jwt.encode({"alg": "RS256", "kid": "pool"}, {**base, **claims}, key)


@pytest.fixture
def tokens():
    return UserPoolTokens(ISSUER, ["console-client"], KeySet([POOL_KEY]).as_dict(private=False))


def test_an_id_token_of_the_pool_passes_with_its_claims(tokens):
    assert tokens.verify(token())["email"] == "op@example.com"


@pytest.mark.parametrize("bad, why", [
    (lambda: token(key=OTHER_KEY), "not a valid token"),
    (lambda: token(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"), "issuer"),
    (lambda: token(token_use="access"), "not an ID token"),
    (lambda: token(aud="another-client"), "another app client"),
    (lambda: token(exp=int(time.time()) - 1), "expired"),
    (lambda: "not-a-token", "not a valid token"),
    (lambda: "", "not a valid token"),
])
def test_anything_else_is_refused(tokens, bad, why):
    with pytest.raises(TokenRejected, match=why):
        tokens.verify(bad())


def test_a_token_whose_claims_were_edited_fails_its_signature(tokens):
    header, _payload, signature = token().split(".")
    _h, edited, _s = token(email="intruder@example.com").split(".")
    with pytest.raises(TokenRejected):
        tokens.verify(f"{header}.{edited}.{signature}")
