"""The record of what runs: the versions and builds maps of the stack's newest successful
update, kept in the backend. The checkout's stack file only carries them into an update.

Two Jenkins workspaces deploy one environment from two checkouts; whichever deploys first
reads what the other deployed from the backend, so neither checkout's stack file can bring
back an old version of a site it did not touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, Problems
from tomcat_cd.core.history import site_maps_of
from tomcat_cd.core.stack_file import PUSHED_IMAGE
from tomcat_cd.core.urns import SITE_CHILD_TYPES, SITE_TYPE
from tomcat_cd.core.settings import MAP_KEYS as SITE_MAP_KEYS, Build, SiteMaps, read_site_maps
from tomcat_cd.driver.pulumi_cli import PulumiCli

MAP_KEYS = tuple(f"{conventions.PROJECT}:{key}" for key in SITE_MAP_KEYS)


def checkout_maps(cli: PulumiCli, problems: Problems) -> SiteMaps:
    return read_site_maps(cli.config(), problems)


def write_checkout(cli: PulumiCli, maps: SiteMaps) -> None:
    """Make the checkout's stack file hold exactly these maps (an empty map is removed)."""
    values = maps.config_values()
    present = {f"{conventions.PROJECT}:{key}" for key in cli.config()}
    cli.set_config(values, [key for key in MAP_KEYS if key not in values and key in present])


def _changes(checkout: SiteMaps, running: SiteMaps) -> list[str]:
    lines = []
    for domain in sorted(set(checkout.versions) | set(running.versions)):
        had, runs = checkout.site(domain), running.site(domain)
        if had != runs:
            lines.append(f"  {domain}: {_shown(*had)} in the checkout, {_shown(*runs)} in what runs")
    return lines


def _shown(version: str | None, build: Build | None) -> str:
    if version is None:
        return "absent"
    return f"{version} (git {build.git_id})" if build else version


@dataclass(frozen=True)
class Running:
    """What runs: the maps of the newest successful update (None: the stack has had none, and
    the maps are the checkout's)."""

    maps: SiteMaps
    update: Mapping[str, Any] | None

    def had_config(self, *keys: str) -> bool:
        """Whether that update ran with every one of these `tomcat-cd:` keys set."""
        config = (self.update or {}).get("config") or {}
        return all(f"{conventions.PROJECT}:{key}" in config for key in keys)


def running_images(state: Mapping[str, Any]) -> dict[str, str]:
    """domain -> the image each site of the state runs (`<tag>@<digest>` once pushed, else the
    tag), from its Deployment's outputs (`pulumi stack export`); the site's component names
    the domain."""
    resources = (state.get("deployment") or {}).get("resources") or []
    domains = {resource.get("urn"): (resource.get("outputs") or {}).get("domain")
               for resource in resources if resource.get("type") == SITE_TYPE}
    images = {}
    for resource in resources:
        domain = domains.get(resource.get("parent"))
        if resource.get("type") == SITE_CHILD_TYPES["deployment"] and isinstance(domain, str):
            image = _site_container_image(resource.get("outputs") or {})
            if image is not None:
                images[domain] = image
    return images


def _site_container_image(deployment: Mapping[str, Any]) -> str | None:
    """The image of a site Deployment's tomcat container."""
    pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod_spec.get("containers") or []:
        if container.get("name") == conventions.SITE_CONTAINER:
            image = container.get("image")
            return image if isinstance(image, str) else None
    return None


def pushed_in_state(state: Mapping[str, Any]) -> dict[str, str]:
    """domain -> `<tag>@<digest>` that each site of the state runs: the images builds pushed
    that the record may not hold yet."""
    return {domain: image for domain, image in running_images(state).items() if PUSHED_IMAGE.fullmatch(image)}


def sync_checkout(cli: PulumiCli, out: Callable[[str], None], pushed: Mapping[str, str] | None = None) -> Running:
    """Bring the checkout's stack file in step with what runs, saying what differed; with
    `pushed` (pushed_in_state), the record also takes the digests the last builds pushed."""
    problems: list[Problem] = []
    checkout = checkout_maps(cli, Problems(f"Pulumi.{cli.stack}.yaml", problems))
    update = cli.newest_succeeded()
    if update is None:
        return Running(checkout, None)
    running = site_maps_of(update)
    if pushed:
        running = running.with_pushed(pushed)
    changes = _changes(checkout, running)
    if changes:
        out(f"the checkout's Pulumi.{cli.stack}.yaml differed from what runs (the stack's last successful update); "
            "taking what runs:")
        for line in changes:
            out(line)
    if changes or running.images != checkout.images:
        write_checkout(cli, running)
    return Running(running, update)
