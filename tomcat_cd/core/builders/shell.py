"""Shell shared by every generated script that sends a secret over HTTP (requests.sh)."""

from __future__ import annotations

from pathlib import Path

REQUEST_HELPERS = (Path(__file__).parent / "requests.sh").read_text()
