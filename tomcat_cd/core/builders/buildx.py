"""The buildx builder instance that reaches a BuildKit daemon by its endpoint.

What `docker buildx create --name NAME --driver remote ENDPOINT` stores in
`$DOCKER_CONFIG/buildx/instances/NAME` (buildx's `store.NodeGroup`), so the Docker Build
provider can use a builder the stack names by endpoint alone, with no buildx CLI plugin.
"""

from __future__ import annotations

import json
from typing import Any


def remote_instance(name: str, endpoint: str) -> dict[str, Any]:
    node: dict[str, Any] = {"Name": f"{name}0", "Endpoint": endpoint, "Platforms": None, "DriverOpts": {}, "Flags": None,
            "Files": None}
    return {"Name": name, "Driver": "remote", "Nodes": [node], "Dynamic": False}


def instance_text(name: str, endpoint: str) -> str:
    return json.dumps(remote_instance(name, endpoint), sort_keys=True)
