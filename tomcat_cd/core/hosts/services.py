"""Scripts for the hosts outside Kubernetes: Harbor, Jenkins, GitLab's backup, the Nginx in front."""

from __future__ import annotations

from typing import Any

import json

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.builders import nginx, shell
from tomcat_cd.core.hosts.inventory import Harbor, Host
from tomcat_cd.core.hosts.script import heredoc, q, script

HARBOR_DATA = conventions.NODE_DATA_ROOT  # Harbor's data_volume: "data under /data"
HARBOR_CERT = "/data/cert/harbor.crt"
HARBOR_KEY = "/data/cert/harbor.key"
HARBOR_SECRETS = {"HARBOR_ADMIN_PASSWORD": "tomcat-cd:harborAdminPassword"}
HARBOR_INSTALL_SECRETS = {**HARBOR_SECRETS, "HARBOR_DATABASE_PASSWORD": "tomcat-cd:harborDatabasePassword"}
HARBOR_ROBOT_SECRETS = {**HARBOR_SECRETS, "HARBOR_ROBOT_SECRET": "tomcat-cd:harborRobotSecret"}

JENKINS_HOME = "/var/lib/jenkins"
JENKINS_BACKUP_DIR = "/data/jenkins-backup"
JENKINS_CASC_DIR = f"{JENKINS_HOME}/casc_configs"
JENKINS_VERSION = "2.516.3"
PLUGIN_MANAGER_VERSION = "2.13.2"
# What jenkins/Jenkinsfile and jenkins/jobs.groovy use, and the two that configure Jenkins itself.
JENKINS_PLUGINS = ("workflow-aggregator", "git", "lockable-resources", "ansicolor", "credentials-binding",
                   "ssh-agent", "job-dsl", "configuration-as-code", "thinBackup")

GITLAB_BACKUPS = "/var/opt/gitlab/backups"


def _harbor_dir(harbor: Harbor) -> str:
    return f"/opt/harbor-{harbor.version}"


def harbor_config(harbor: Harbor) -> dict[str, Any]:
    """harbor.yml (the installer's template fields); the passwords are `${VAR}`s filled on the host."""
    config: dict[str, Any] = {"hostname": harbor.hostname, "http": {"port": harbor.api_port if harbor.scheme == "http" else 80}}
    if harbor.scheme == "https":
        config["https"] = {"port": harbor.api_port, "certificate": HARBOR_CERT, "private_key": HARBOR_KEY}
    config.update({
        "harbor_admin_password": "${HARBOR_ADMIN_PASSWORD}",
        "database": {"password": "${HARBOR_DATABASE_PASSWORD}", "max_idle_conns": 100, "max_open_conns": 900,
                     "conn_max_lifetime": "5m", "conn_max_idle_time": 0},
        "data_volume": HARBOR_DATA,
        "trivy": {"ignore_unfixed": False, "skip_update": False, "skip_java_db_update": False,
                  "offline_scan": False, "security_check": "vuln", "insecure": False, "timeout": "5m0s"},
        "jobservice": {"max_job_workers": 10, "job_loggers": ["STD_OUTPUT", "FILE"], "logger_sweeper_duration": 1},
        "notification": {"webhook_job_max_retry": 3, "webhook_job_http_client_timeout": 3},
        "log": {"level": "info", "local": {"rotate_count": 50, "rotate_size": "200M", "location": "/var/log/harbor"}},
        "_version": harbor.version.lstrip("v").rsplit(".", 1)[0] + ".0",
        "upload_purging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
        "cache": {"enabled": False, "expire_hours": 24},
    })
    return config


def install_harbor(host: Host, harbor: Harbor) -> str:
    folder = _harbor_dir(harbor)
    installer = f"harbor-offline-installer-{harbor.version}.tgz"
    url = f"https://github.com/goharbor/harbor/releases/download/{harbor.version}/{installer}"
    config = yaml.safe_dump(harbor_config(harbor), sort_keys=False, default_style=None)
    # Quoted, so that a password with `#`, `: ` or a leading `'` stays one YAML string.
    for name in HARBOR_INSTALL_SECRETS:
        config = config.replace(f"${{{name}}}", f'"${{{name}}}"')
    certificate_check = ""
    if harbor.scheme == "https":
        certificate_check = (
            f'if [ ! -f "$root{HARBOR_CERT}" ] || [ ! -f "$root{HARBOR_KEY}" ]; then\n'
            f'  echo "Harbor serves https: put its certificate in {HARBOR_CERT} and key in {HARBOR_KEY}'
            ' (or set tomcat-cd:harbor.scheme: http)" >&2\n'
            "  exit 1\n"
            "fi\n")
    body = (
        "for secret in \"$HARBOR_ADMIN_PASSWORD\" \"$HARBOR_DATABASE_PASSWORD\"; do\n"
        "  case \"$secret\" in *'\"'* | *\\\\* | *[[:cntrl:]]*)\n"
        "    echo 'Harbor passwords may not hold a double quote, a backslash or a control character (harbor.yml quotes them)' >&2\n"
        "    exit 1 ;;\n"
        "  esac\n"
        "done\n"
        "ensure_packages docker.io docker-compose curl jq\n"
        f"ensure_dir {HARBOR_DATA} 755\n"
        + certificate_check
        + f"fetch {q(url)} /opt/tomcat-cd/{installer}\n"
        f'if [ ! -x "$root{folder}/install.sh" ]; then\n'
        f"  ensure_dir {folder} 755\n"
        f'  system tar -xzf "$root/opt/tomcat-cd/{installer}" -C "$root{folder}" --strip-components=1\n'
        "fi\n"
        "# harbor.yml holds the passwords: filled in here from the environment, readable by root only.\n"
        + heredoc(f"{folder}/harbor.yml", "600", config, expand=True,
                  then=[f'(cd "$root{folder}" && system ./install.sh)'])
    )
    return script(f"Harbor {harbor.version} with docker-compose on {host.name}, data under {HARBOR_DATA}",
                  host, body, HARBOR_INSTALL_SECRETS)


def _local(harbor: Harbor) -> str:
    """curl's --resolve: Harbor's own name (its certificate's) reached on this host."""
    return q(f"{harbor.hostname}:{harbor.api_port}:127.0.0.1")


def _harbor_api(harbor: Harbor) -> str:
    """A shell function calling Harbor's API on this host as admin; the password reaches curl
    through a file descriptor, never its arguments."""
    return (
        shell.REQUEST_HELPERS
        + f"base={q(f'{harbor.url}/api/v2.0')}\n"
        'body="$(mktemp)"\n'
        "trap 'rm -f \"$body\"' EXIT\n"
        "# api METHOD PATH [JSON on stdin]: prints the HTTP status, leaves the answer in $body.\n"
        "api() {\n"
        "  local method=(-X \"$1\")\n"
        "  if [ \"$1\" = HEAD ]; then method=(--head); fi\n"
        f"  curl -sS -o \"$body\" -w '%{{http_code}}' \"${{method[@]}}\" --resolve {_local(harbor)} \\\n"
        "    -H @<(basic_auth admin \"$HARBOR_ADMIN_PASSWORD\") \\\n"
        "    -H 'Content-Type: application/json' ${3:+--data @-} \"$base$2\"\n"
        "}\n"
    )


def harbor_project(host: Host, harbor: Harbor, project: str) -> str:
    payload = json.dumps({"project_name": project, "metadata": {"public": "false"}})
    body = (
        _harbor_api(harbor)
        + f'status="$(api HEAD {q("/projects?project_name=" + project)})"\n'
        'case "$status" in\n'
        f"  200) say ok {q('project ' + project + ' exists')} ;;\n"
        f"  404)\n"
        f"    status=\"$(printf '%s' {q(payload)} | api POST /projects json)\"\n"
        f'    [ "$status" = 201 ] || {{ echo "creating project {project}: HTTP $status $(cat "$body")" >&2; exit 1; }}\n'
        f"    changed {q('project ' + project)} ;;\n"
        f'  *) echo "asking for project {project}: HTTP $status" >&2; exit 1 ;;\n'
        "esac\n"
    )
    return script(f"Harbor project {project} (private), through Harbor's API", host, body, HARBOR_SECRETS)


def robot_permissions() -> list[dict[str, Any]]:
    return [{"kind": "project", "namespace": "*",
             "access": [{"resource": "repository", "action": "push"}, {"resource": "repository", "action": "pull"}]}]


def harbor_robot(host: Host, harbor: Harbor) -> str:
    """The system robot Jenkins and the site stacks push with; its secret is the stack's
    `harborRobotSecret` (Harbor keeps only a hash, so a login tells whether it already is)."""
    create = json.dumps({"name": harbor.robot, "description": "tomcat-cd image pushes", "level": "system",
                         "duration": -1, "disable": False, "permissions": robot_permissions()})
    token_url = (f"{harbor.url}/service/token?service=harbor-registry"
                 f"&scope=repository:{conventions.HARBOR_TEMPLATE_PROJECT}/probe:pull")
    body = (
        _harbor_api(harbor)
        + f'status="$(api GET {q("/robots?q=name%3D~" + harbor.robot + "&page_size=100")})"\n'
        '[ "$status" = 200 ] || { echo "listing robots: HTTP $status" >&2; exit 1; }\n'
        f"id=\"$(jq -r --arg n {q(harbor.robot)} '.[] | select(.name == $n or (.name | endswith(\"$\" + $n))) | .id' \"$body\" | head -n 1)\"\n"
        'if [ -z "$id" ]; then\n'
        f"  status=\"$(printf '%s' {q(create)} | api POST /robots json)\"\n"
        '  [ "$status" = 201 ] || { echo "creating the robot: HTTP $status" >&2; exit 1; }\n'
        "  id=\"$(jq -r .id \"$body\")\"\n"
        f"  changed {q('robot ' + harbor.robot)}\n"
        "fi\n"
        'status="$(api GET "/robots/$id")"\n'
        '[ "$status" = 200 ] || { echo "reading robot $id: HTTP $status" >&2; exit 1; }\n'
        "name=\"$(jq -r .name \"$body\")\"\n"
        f"login=\"$(curl -sS -o /dev/null -w '%{{http_code}}' --resolve {_local(harbor)} \\\n"
        "  -H @<(basic_auth \"$name\" \"$HARBOR_ROBOT_SECRET\") "
        f"{q(token_url)})\"\n"
        'if [ "$login" != 200 ]; then\n'
        "  status=\"$(printf '{\"secret\": %s}' \"$(json_string \"$HARBOR_ROBOT_SECRET\")\" | api PATCH \"/robots/$id\" json)\"\n"
        '  [ "$status" = 200 ] || { echo "setting the robot secret: HTTP $status" >&2; exit 1; }\n'
        f"  changed {q('robot ' + harbor.robot + ' secret')}\n"
        "fi\n"
    )
    return script(f"Harbor robot {harbor.robot}: push and pull on every project, secret from the stack",
                  host, body, HARBOR_ROBOT_SECRETS)


def thin_backup_casc() -> dict[str, Any]:
    """ThinBackup (>= 2.0) through Configuration as Code: hourly full backups, 10 kept."""
    return {"unclassified": {"thinBackup": {
        "backupPath": JENKINS_BACKUP_DIR,
        "fullBackupSchedule": "H * * * *",
        "diffBackupSchedule": "",
        "nrMaxStoredFull": 10,
        "cleanupDiff": True,
        "moveOldBackupsToZipFile": False,
        "backupBuildResults": True,
        "backupBuildArchive": False,
        "backupUserContents": True,
        "backupNextBuildNumber": True,
        "backupPluginArchives": False,
        "excludedFilesRegex": r"^.*\.(log)$",
        "waitForIdle": True,
        "forceQuietModeTimeout": 120,
        "failFast": True,
    }}}


def _offsite_copy(source: str, offsite: str | None, into: str) -> str:
    if not offsite:
        return "echo 'no off-site target (tomcat-cd:backups.offsite): backups stay on this host' >&2\n"
    return f"rsync -a --delete {q(source)} {q(offsite.rstrip('/') + '/' + into)}\n"


def install_jenkins(host: Host, offsite: str | None, domains: list[str], version: str = JENKINS_VERSION) -> str:
    """`domains`: a folder each in the war tree, `/data/jks-cd-config/<domain>/`, where the
    developers drop `<version>/ROOT.war` and builds keep their inputs."""
    jar = f"/opt/tomcat-cd/jenkins-plugin-manager-{PLUGIN_MANAGER_VERSION}.jar"
    jar_url = ("https://github.com/jenkinsci/plugin-installation-manager-tool/releases/download/"
               f"{PLUGIN_MANAGER_VERSION}/jenkins-plugin-manager-{PLUGIN_MANAGER_VERSION}.jar")
    offsite_script = ("#!/bin/sh\n# Hourly, after ThinBackup: the backups off this host (tomcat-cd).\nset -eu\n"
                      + _offsite_copy(f"{JENKINS_BACKUP_DIR}/", offsite, "jenkins/"))
    body = (
        "restart=0\n"
        "ensure_packages openjdk-17-jre-headless fontconfig ca-certificates curl rsync\n"
        "fetch https://pkg.jenkins.io/debian-stable/jenkins.io-2023.key /etc/apt/keyrings/jenkins.asc\n"
        + heredoc("/etc/apt/sources.list.d/jenkins.list", "644",
                  "deb [signed-by=/etc/apt/keyrings/jenkins.asc] https://pkg.jenkins.io/debian-stable binary/\n",
                  then=["system apt-get update -qq"])
        + f"if ! installed jenkins {version}; then\n"
        f"  DEBIAN_FRONTEND=noninteractive system apt-get install -y -qq --allow-change-held-packages jenkins={version}\n"
        "  system apt-mark hold jenkins\n"
        f"  changed 'jenkins {version}'\n"
        "  restart=1\n"
        "fi\n"
        + "".join(f"ensure_dir {folder} 755\nensure_owner {folder} jenkins\n"
                  for folder in [conventions.WAR_ROOT_DEFAULT,
                                 *(f"{conventions.WAR_ROOT_DEFAULT}/{domain}" for domain in domains)])
        + f"ensure_dir {JENKINS_BACKUP_DIR} 750\n"
        f"ensure_owner {JENKINS_BACKUP_DIR} jenkins\n"
        f"fetch {q(jar_url)} {jar}\n"
        + heredoc(f"{JENKINS_HOME}/tomcat-cd-plugins.txt", "644", "\n".join(JENKINS_PLUGINS) + "\n",
                  then=[f'system java -jar "$root{jar}" --war /usr/share/java/jenkins.war '
                        f"--plugin-download-directory {JENKINS_HOME}/plugins --plugin-file {JENKINS_HOME}/tomcat-cd-plugins.txt",
                        f"system chown -R jenkins:jenkins {JENKINS_HOME}/plugins", "restart=1"])
        + f"ensure_dir {JENKINS_CASC_DIR} 755\n"
        + heredoc(f"{JENKINS_CASC_DIR}/tomcat-cd.yaml", "644", yaml.safe_dump(thin_backup_casc(), sort_keys=False),
                  then=["restart=1"])
        + heredoc("/etc/systemd/system/jenkins.service.d/tomcat-cd.conf", "644",
                  f'[Service]\nEnvironment="CASC_JENKINS_CONFIG={JENKINS_CASC_DIR}"\n',
                  then=["system systemctl daemon-reload", "restart=1"])
        + heredoc("/usr/local/sbin/tomcat-cd-jenkins-offsite", "755", offsite_script)
        + heredoc("/etc/cron.d/tomcat-cd-jenkins-offsite", "644",
                  "# Copy Jenkins' ThinBackup sets off this host, every hour at :40 (tomcat-cd).\n"
                  "40 * * * * root /usr/local/sbin/tomcat-cd-jenkins-offsite\n")
        + 'if [ "$restart" = 1 ]; then\n'
        "  system systemctl restart jenkins\n"
        "fi\n"
    )
    return script(f"Jenkins {version} on {host.name}: plugins, ThinBackup hourly keeping 10, off-site copy, "
                  f"{conventions.WAR_ROOT_DEFAULT}", host, body)


def gitlab_backup(host: Host, offsite: str | None) -> str:
    job = ("#!/bin/sh\n# Daily GitLab backup and its off-site copy (tomcat-cd).\nset -eu\n"
           "gitlab-rake gitlab:backup:create CRON=1\n"
           "# The backup leaves out the secrets and settings a restore needs: they are copied as well.\n"
           + _offsite_copy(f"{GITLAB_BACKUPS}/", offsite, "gitlab/backups/")
           + (f"rsync -a /etc/gitlab/gitlab-secrets.json /etc/gitlab/gitlab.rb "
              f"{q(offsite.rstrip('/') + '/gitlab/config/')}\n" if offsite else ""))
    body = (
        "ensure_packages rsync\n"
        + heredoc("/usr/local/sbin/tomcat-cd-gitlab-backup", "755", job)
        + heredoc("/etc/cron.d/tomcat-cd-gitlab-backup", "644",
                  "# GitLab (the CD files' repository), every day at 02:00 (tomcat-cd).\n"
                  "0 2 * * * root /usr/local/sbin/tomcat-cd-gitlab-backup\n")
    )
    return script(f"GitLab on {host.name}: daily gitlab-rake gitlab:backup:create and an off-site copy", host, body)


def nginx_front(host: Host, configs: dict[str, str]) -> str:
    """`configs`: environment -> its conf.d file. A new config is live only if `nginx -t`
    accepts it; otherwise the previous files are put back and the step fails."""
    writes = "".join(
        f"ensure_dir {nginx.ACCESS_LOG_DIR}/{environment} 755\n"
        + heredoc(nginx.conf_path(environment), "644", text, then=["reload=1"])
        for environment, text in configs.items())
    body = (
        "ensure_packages nginx\n"
        'previous="$(mktemp -d)"\n'
        "trap 'rm -rf \"$previous\"' EXIT\n"
        'cp -a "$root"/etc/nginx/conf.d/tomcat-cd-*.conf "$previous"/ 2>/dev/null || true\n'
        "reload=0\n"
        + writes
        + 'if [ "$reload" = 1 ]; then\n'
        "  if system nginx -t -q; then\n"
        "    system systemctl reload-or-restart nginx\n"
        "  else\n"
        '    rm -f "$root"/etc/nginx/conf.d/tomcat-cd-*.conf\n'
        '    cp -a "$previous"/. "$root/etc/nginx/conf.d/"\n'
        "    echo 'nginx -t refused the new config: the previous one is back and nginx was not reloaded' >&2\n"
        "    exit 1\n"
        "  fi\n"
        "fi\n"
    )
    return script(f"Nginx on {host.name}: one upstream per site over every node, per environment; "
                  "reloaded only after nginx -t passes", host, body)
