"""Promote's tagging through Harbor's kind of auth: a token service, and a registry that checks
its tokens. The registry is the real one (Debian's docker-registry, Harbor's registry code),
started here with `auth: token`; the token service is a stand-in for Harbor's (Harbor's server
cannot be had here): it checks a robot's basic credentials and signs RS256 JWTs with a key made
by openssl, which the registry verifies against its certificate (signature, issuer, audience,
expiry and the access granted)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import free_port
from pipeline.harness import TOOLS, require_pipeline, wait_for
from tomcat_cd.driver.registry import Registry, RegistryError

pytestmark = pytest.mark.pipeline

ROBOT, ROBOT_PASSWORD = "robot$tomcat-cd", "s3cret-robot"
ISSUER, SERVICE = "harbor-token-stand-in", "harbor-registry"
TEMPLATE = "template/tomcat"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService(BaseHTTPRequestHandler):
    """GET /service/token?service=&scope=repository:NAME:pull,push with basic credentials."""

    key: Path
    cert_der: bytes
    realm: str
    asked: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        type(self).asked.append(query)
        expected = "Basic " + base64.b64encode(f"{ROBOT}:{ROBOT_PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        kind, name, actions = query["scope"].split(":")
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": ISSUER, "sub": ROBOT, "aud": query["service"], "exp": now + 300, "nbf": now - 5,
                  "iat": now, "jti": str(now), "access": [{"type": kind, "name": name, "actions": actions.split(",")}]}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                                   capture_output=True, check=True).stdout
        body = json.dumps({"token": f"{signing_input}.{b64url(signature)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def token_registry(tmp_path):
    """(registry host, its storage): the base image's template copied in, tokens required."""
    require_pipeline()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={ISSUER}",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    TokenService.key = tmp_path / "key.pem"
    TokenService.cert_der = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-outform", "DER"],
                                           check=True, capture_output=True).stdout
    TokenService.asked = []
    tokens = ThreadingHTTPServer(("127.0.0.1", 0), TokenService)
    TokenService.realm = f"http://127.0.0.1:{tokens.server_port}/service/token"
    threading.Thread(target=tokens.serve_forever, daemon=True).start()
    storage = tmp_path / "data"
    shutil.copytree(TOOLS.parent / "template-registry", storage, symlinks=True)
    host = f"127.0.0.1:{free_port()}"
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: {host}\n  secret: test-only\n"
        f"auth:\n  token:\n    realm: {TokenService.realm}\n"
        f"    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {tmp_path / 'cert.pem'}\n")
    with open(tmp_path / "registry.log", "w") as log:
        registry = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for("the registry", lambda: _status(f"http://{host}/v2/") == 401, 30)
        yield host, storage
    finally:
        registry.terminate()
        registry.wait(timeout=30)
        tokens.shutdown()
        tokens.server_close()


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def template_digest(storage: Path) -> tuple[str, str]:
    tags = storage / "docker/registry/v2/repositories" / TEMPLATE / "_manifests/tags"
    tag = next(p.name for p in tags.iterdir())
    return tag, (tags / tag / "current/link").read_text().strip()


def test_promote_tags_by_digest_with_a_token_the_robot_asked_for(token_registry):
    host, storage = token_registry
    tag, digest = template_digest(storage)
    registry = Registry(host, ROBOT, ROBOT_PASSWORD)
    tagged = registry.tag(f"{host}/{TEMPLATE}:{tag}@{digest}", "v1.2.0-master-abc1234")
    assert tagged == f"{host}/{TEMPLATE}:v1.2.0-master-abc1234@{digest}"
    link = storage / "docker/registry/v2/repositories" / TEMPLATE / "_manifests/tags/v1.2.0-master-abc1234/current/link"
    assert link.read_text().strip() == digest, "the registry holds the new tag for the same manifest"
    # One token, for pull and push of that repository, served both the GET and the PUT.
    assert TokenService.asked == [{"service": SERVICE, "scope": f"repository:{TEMPLATE}:pull,push"}]


def test_a_wrong_robot_password_is_one_line_without_it(token_registry):
    host, storage = token_registry
    tag, digest = template_digest(storage)
    with pytest.raises(RegistryError) as refused:
        Registry(host, ROBOT, "wrong-password").tag(f"{host}/{TEMPLATE}:{tag}@{digest}", "v9-master-abc1234")
    message = str(refused.value)
    assert "\n" not in message and "wrong-password" not in message, message
    realm = urllib.parse.urlsplit(TokenService.realm)
    assert message == f"{realm.netloc} answered 401 to GET {realm.path}", "the token service refused the robot"
