"""Elasticsearch with basic auth, by the Python standard library: the health gate's searches
and the deploy markers' writes."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_SECONDS = 10


class ElasticError(Exception):
    """Elasticsearch did not answer, or refused (told in one line)."""


@dataclass
class ElasticClient:
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = TIMEOUT_SECONDS

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/{urllib.parse.quote(index, safe='*,-')}/_search?ignore_unavailable=true&allow_no_indices=true"
        return self._post(path, body)

    def index(self, index: str, document: dict[str, Any]) -> str:
        """Write one document (refreshed at once, so a search right after finds it); its id."""
        answer = self._post(f"/{urllib.parse.quote(index, safe='-')}/_doc?refresh=true", document)
        return str(answer.get("_id", ""))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.url.rstrip("/") + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                result: dict[str, Any] = json.load(answer)
                return result
        except urllib.error.HTTPError as err:
            reason = err.read(300).decode(errors="replace").replace("\n", " ")
            raise ElasticError(f"{self.url} answered {err.code}: {reason}") from None
        except (OSError, ValueError) as err:
            raise ElasticError(f"{self.url}: {getattr(err, 'reason', err)}") from None
