"""What the platform stack deploys: logging (Filebeat, Elasticsearch, Kibana) and monitoring.

Shared, like the site plan, by `cdctl render --stack platform` and the Pulumi program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tomcat_cd.core import conventions
from tomcat_cd.core.builders import filebeat, logging, nginx, scope
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.hosts.plan import RemoteStep, remote_steps, step_order
from tomcat_cd.core.model import load_sites
from tomcat_cd.core.platform_settings import SECRET_KEYS, PlatformSettings, port_clashes
from tomcat_cd.core.yamltext import to_yaml


@dataclass(frozen=True)
class PlatformPlan:
    settings: PlatformSettings
    logging: list[dict[str, Any]]
    monitoring: list[dict[str, Any]]
    files: dict[str, str]
    """Files inside the ConfigMaps, written out by render for review (filebeat.yml, setup)."""
    domains: list[str]
    steps: list[RemoteStep]
    """What runs on the machines over SSH, in order (empty without an inventory)."""

    def objects(self) -> list[dict[str, Any]]:
        return self.logging + self.monitoring


def redacted(key: str) -> str:
    return f"<redacted: tomcat-cd:{key}>"


def build_platform_plan(settings: PlatformSettings, project_dir: Path,
                        secret: Callable[[str], Any] | None = None) -> PlatformPlan:
    """`secret(key)` gives a password (a Pulumi secret in the program, redacted in render)."""
    raise_if_any([Problem(f"Pulumi.{settings.stack}.yaml", f"tomcat-cd:{key}",
                          f"is required: pulumi config set --secret {key} -s {settings.stack}")
                  for key in sorted(settings.required_secrets() - settings.passwords_set)])
    secret = secret or redacted
    sites = load_sites(project_dir / settings.domains_dir, relative_to=project_dir)
    source = f"Pulumi.{settings.stack}.yaml"
    raise_if_any([Problem(source, key, f"{port} is also the {env} NodePort of {site.domain} ({site.source})")
                  for site, env, port, key in port_clashes(settings, sites)])
    domains = [site.domain for site in sites]
    app_multiline = {site.domain: site.app_log_multiline for site in sites if site.app_log_multiline}
    config_text = to_yaml(filebeat.filebeat_config(logging.ELASTIC_URL, app_multiline))
    setup = logging.setup_files(domains, settings)
    passwords = {key: (secret(key) if key in settings.passwords_set else redacted(key)) for key in SECRET_KEYS}
    objects = [
        logging.namespace(),
        logging.credentials(passwords["elasticPassword"], passwords["kibanaPassword"], passwords["filebeatPassword"]),
        *logging.elasticsearch(settings),
        *logging.kibana(settings),
        *logging.filebeat_objects(settings, config_text),
        *logging.setup_job(setup, settings),
    ]
    monitoring = scope.weave_scope(settings.weave_scope_node_port) if settings.weave_scope else []
    files = {"config/filebeat.yml": config_text}
    nginx_configs = {env: nginx.site_conf(sites, list(settings.nodes), env)
                     for env in conventions.ENVIRONMENTS} if settings.nodes else {}
    files.update({f"config/nginx/tomcat-cd-{env}.conf": text for env, text in nginx_configs.items()})
    files.update({f"config/logging-setup/{name}": text for name, text in setup.items()})
    steps = remote_steps(settings, domains, nginx_configs)
    for step in steps:
        files[step.path] = step.script
        if step.delete_script:
            files[step.path.replace(".sh", ".delete.sh")] = step.delete_script
    if steps:
        files["hosts/ORDER.txt"] = step_order(steps)
    return PlatformPlan(settings, objects, monitoring, files, domains, steps)
