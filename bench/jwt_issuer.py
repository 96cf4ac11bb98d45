"""A local OpenID Connect issuer for the benchmark's peers: an RSA key made with openssl, the
discovery document and JWKS served on 127.0.0.1, and one RS256 JWT (an hour long) printed on
stdout for the load generator to send as `Authorization: Bearer ...`.

    python3 bench/jwt_issuer.py PORT AUDIENCE WORKDIR

Only the standard library and the openssl command; serves until killed.
"""

import base64
import json
import os
import subprocess
import sys
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    port, audience, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    issuer = f"http://127.0.0.1:{port}"
    key = os.path.join(work, "issuer-key.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(
        ["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True, capture_output=True, text=True
    ).stdout.strip().split("=", 1)[1]
    jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "bench",
           "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}
    root = os.path.join(work, "issuer")
    os.makedirs(os.path.join(root, ".well-known"), exist_ok=True)
    with open(os.path.join(root, "jwks.json"), "w") as f:
        json.dump({"keys": [jwk]}, f)
    with open(os.path.join(root, ".well-known", "openid-configuration"), "w") as f:
        json.dump({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks.json",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }, f)
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
    claims = b64url(json.dumps({
        "iss": issuer, "aud": audience, "sub": "oBench", "email": "obench@example.com",
        "email_verified": True, "iat": now, "exp": now + 3600,
    }).encode())
    signed = f"{header}.{claims}".encode()
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key], input=signed, check=True, capture_output=True
    ).stdout
    print(f"{header}.{claims}.{b64url(signature)}", flush=True)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), partial(Quiet, directory=root)).serve_forever()


if __name__ == "__main__":
    main()
