"""The emulator's Cognito user pools sign with a key made for this process.

moto 5.2.5 signs every user pool's tokens with the RSA key in its package
(``moto/cognitoidp/resources/jwks-private.json``, read by ``CognitoIdpUserPool.__init__``) and
serves the matching public key at ``/<pool id>/.well-known/jwks.json``
(``CognitoIdpJsonWebKeyResponse.json_web_key``). That private key is public: anyone could mint
an ID token the local API gateway would accept (``infra/local/apigateway/auth.py`` verifies
against the pool's JWKS). On AWS each pool has its own secret keys.

``install`` (idempotent, at emulator start) makes a 2048-bit RSA key for this process, has every
pool created from then on sign with it, and serves its public half as the pools' JWKS, so a
token signed with moto's published key no longer verifies. The key id stays ``dummy``: moto
writes that ``kid`` into every token header (``create_jwt``).
"""
from __future__ import annotations

import json
from typing import Any

KEY_ID = "dummy"  # the kid moto's create_jwt puts in every token
_KEY: Any = None


def run_key() -> Any:
    """This process's signing key (a joserfc ``RSAKey``), made on first use."""
    global _KEY
    if _KEY is None:
        from joserfc.jwk import RSAKey
        _KEY = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "alg": "RS256", "use": "sig"})
    return _KEY


def public_jwks() -> dict:
    """The JWKS the pools serve: this process's public key."""
    from joserfc.jwk import KeySet
    return KeySet([run_key()]).as_dict(private=False)


def install() -> None:
    """Patch moto's Cognito user pools and JWKS response (idempotent)."""
    from moto.cognitoidp import models, responses

    if getattr(models.CognitoIdpUserPool, "_vodpipe_run_key", False):
        return
    original = models.CognitoIdpUserPool.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.json_web_key = run_key()

    models.CognitoIdpUserPool.__init__ = __init__
    models.CognitoIdpUserPool._vodpipe_run_key = True
    responses.CognitoIdpJsonWebKeyResponse.json_web_key = json.dumps(public_jwks()).encode("utf-8")
