"""Tagging a pushed image again without pulling it: the registry's own API (Docker Registry
HTTP API v2, which Harbor serves), by the Python standard library. A promote gives develop's
digest master's tag this way."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from tomcat_cd.core.stack_file import PUSHED_IMAGE

TIMEOUT_SECONDS = 30
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"))


class RegistryError(Exception):
    """The registry refused or did not answer (one line, never the password)."""


def plain_http(host: str) -> bool:
    """Docker's own rule: a registry on the loopback is reached without TLS."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    return name in ("localhost", "[::1]") or name.startswith("127.")


@dataclass
class Registry:
    host: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def _url(self, path: str) -> str:
        return f"{'http' if plain_http(self.host) else 'https'}://{self.host}{path}"

    def _open(self, request: urllib.request.Request, repository: str) -> tuple[bytes, str]:
        for attempt in range(2):
            if self.token:
                request.add_header("Authorization", f"Bearer {self.token}")
            elif self.username:
                request.add_header("Authorization", "Basic " + base64.b64encode(
                    f"{self.username}:{self.password or ''}".encode()).decode())
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                    return answer.read(), answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as err:
                challenge = err.headers.get("WWW-Authenticate", "")
                if err.code == 401 and attempt == 0 and challenge.lower().startswith("bearer") and not self.token:
                    self.token = self._bearer(challenge, repository)
                    continue
                url = urllib.parse.urlsplit(request.full_url)  # the registry, or its token service
                raise RegistryError(f"{url.netloc} answered {err.code} to {request.get_method()} {url.path}") from None
            except OSError as err:
                raise RegistryError(f"{self.host}: {getattr(err, 'reason', err)}") from None
        raise RegistryError(f"{self.host} refused the credentials")

    def _bearer(self, challenge: str, repository: str) -> str:
        """Harbor's token service: a token for pull and push of the repository, asked for
        with the robot's basic credentials."""
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urllib.parse.urlencode({"service": params.get("service", ""),
                                        "scope": f"repository:{repository}:pull,push"})
        request = urllib.request.Request(f"{params.get('realm', '')}?{query}")
        saved, self.token = self.token, None
        body, _ = self._open(request, repository) if self.username else (b"{}", "")
        self.token = saved
        answer = json.loads(body or b"{}")
        token = answer.get("token") or answer.get("access_token")
        if not token:
            raise RegistryError(f"{self.host}'s token service gave no token")
        return str(token)

    def tag(self, pushed: str, new_tag: str) -> str:
        """Give the image `<host>/<repo>:<tag>@<digest>` the tag `new_tag` as well (its manifest
        fetched by digest and put under the new tag, byte for byte); `<host>/<repo>:<new_tag>@<digest>`."""
        if not PUSHED_IMAGE.fullmatch(pushed) or not pushed.startswith(f"{self.host}/"):
            raise RegistryError(f"{pushed} is no image of {self.host} pushed by digest")
        name, digest = pushed.split("@", 1)
        repository = name[len(self.host) + 1:].rsplit(":", 1)[0]
        manifest, media_type = self._open(urllib.request.Request(
            self._url(f"/v2/{repository}/manifests/{digest}"), headers={"Accept": MANIFEST_TYPES}), repository)
        self._open(urllib.request.Request(self._url(f"/v2/{repository}/manifests/{new_tag}"), data=manifest,
                                          method="PUT", headers={"Content-Type": media_type}), repository)
        return f"{self.host}/{repository}:{new_tag}@{digest}"
