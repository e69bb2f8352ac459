"""Kubernetes objects of the logging stack: Elasticsearch, Kibana, Filebeat and the setup job
that installs the lifecycle policy, the index template and one Kibana data view per domain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tomcat_cd.core import conventions
from tomcat_cd.core.builders import filebeat, shell
from tomcat_cd.core.platform_settings import PlatformSettings

NAMESPACE = "logging"
SETUP_DEADLINE_SECONDS = 3600
CREDENTIALS = "elastic-credentials"
ELASTIC_DATA_DIR = "/data/elasticsearch"
ELASTIC_NODE_LABEL = "tomcat-cd/elasticsearch"
ELASTIC_URL = f"http://elasticsearch.{NAMESPACE}.svc:9200"
KIBANA_URL = f"http://kibana.{NAMESPACE}.svc:5601"


def _meta(name: str, component: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": component,
                                                     "app.kubernetes.io/part-of": conventions.PROJECT}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": CREDENTIALS, "key": key}}}


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, "logging", None)}


def credentials(elastic_password: Any, kibana_password: Any, filebeat_password: Any) -> dict[str, Any]:
    """The passwords, each a Pulumi secret in the program (redacted in render)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(CREDENTIALS, "elasticsearch"),
            "type": "Opaque", "stringData": {"elastic-password": elastic_password, "kibana-password": kibana_password,
                                             "filebeat-password": filebeat_password}}


def elasticsearch(settings: PlatformSettings) -> list[dict[str, Any]]:
    elastic = settings.elastic
    labels = {"app.kubernetes.io/name": "elasticsearch"}
    multi = elastic.replicas > 1
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "node.name", "value": "$(POD_NAME)"},
        {"name": "cluster.name", "value": conventions.PROJECT},
        {"name": "ES_JAVA_OPTS", "value": f"-Xms{elastic.heap} -Xmx{elastic.heap}"},
        {"name": "xpack.security.enabled", "value": "true"},
        {"name": "xpack.security.http.ssl.enabled", "value": "false"},
        _secret_env("ELASTIC_PASSWORD", "elastic-password"),
    ]
    if multi:
        masters = ",".join(f"elasticsearch-{i}" for i in range(elastic.replicas))
        env += [{"name": "discovery.seed_hosts", "value": "elasticsearch-nodes"},
                {"name": "cluster.initial_master_nodes", "value": masters},
                # Security between nodes needs TLS: the operator provides the certificates
                # (elasticsearch-certutil) as Secret elasticsearch-transport, see README.
                {"name": "xpack.security.transport.ssl.enabled", "value": "true"},
                {"name": "xpack.security.transport.ssl.verification_mode", "value": "certificate"},
                {"name": "xpack.security.transport.ssl.keystore.path", "value": "certs/elastic-certificates.p12"},
                {"name": "xpack.security.transport.ssl.truststore.path", "value": "certs/elastic-certificates.p12"}]
    else:
        env.append({"name": "discovery.type", "value": "single-node"})
    mounts: list[dict[str, Any]] = [{"name": "data", "mountPath": "/usr/share/elasticsearch/data",
                                     "subPathExpr": "$(POD_NAME)"}]
    volumes: list[dict[str, Any]] = [{"name": "data", "hostPath": {"path": ELASTIC_DATA_DIR, "type": "DirectoryOrCreate"}}]
    if multi:
        mounts.append({"name": "transport", "mountPath": "/usr/share/elasticsearch/config/certs", "readOnly": True})
        volumes.append({"name": "transport", "secret": {"secretName": "elasticsearch-transport"}})
    image = f"docker.elastic.co/elasticsearch/elasticsearch:{elastic.version}"
    pod = {
        "nodeSelector": {ELASTIC_NODE_LABEL: "true"},
        # Neither Elasticsearch, Kibana nor the setup job calls the Kubernetes API.
        "automountServiceAccountToken": False,
        "initContainers": [{
            # Elasticsearch refuses to start below vm.max_map_count 262144, and runs as uid 1000
            # on a hostPath folder that kubelet creates as root.
            "name": "node-settings",
            "image": image,
            "command": ["sh", "-c", "sysctl -w vm.max_map_count=262144 && chown -R 1000:0 /usr/share/elasticsearch/data"],
            "securityContext": {"privileged": True, "runAsUser": 0},
            "volumeMounts": mounts[:1],
        }],
        "containers": [{
            "name": "elasticsearch",
            "image": image,
            "env": env,
            "ports": [{"name": "http", "containerPort": 9200}, {"name": "transport", "containerPort": 9300}],
            "resources": {"requests": {"cpu": elastic.cpu, "memory": elastic.memory},
                          "limits": {"memory": elastic.memory}},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "failureThreshold": 30},
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }
    if multi:
        pod["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("elasticsearch", "elasticsearch"),
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 9200, "targetPort": "http"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("elasticsearch-nodes", "elasticsearch"),
         "spec": {"clusterIP": "None", "selector": labels,
                  "ports": [{"name": "transport", "port": 9300, "targetPort": "transport"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("elasticsearch", "elasticsearch"),
         "spec": {"replicas": elastic.replicas, "serviceName": "elasticsearch-nodes",
                  "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}},
    ]


def kibana(settings: PlatformSettings) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "kibana"}
    container = {
        "name": "kibana",
        "image": f"docker.elastic.co/kibana/kibana:{settings.elastic.version}",
        "env": [{"name": "ELASTICSEARCH_HOSTS", "value": f'["{ELASTIC_URL}"]'},
                {"name": "ELASTICSEARCH_USERNAME", "value": "kibana_system"},
                _secret_env("ELASTICSEARCH_PASSWORD", "kibana-password")],
        "ports": [{"name": "http", "containerPort": 5601}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/api/status", "port": "http"}, "periodSeconds": 10,
                           "failureThreshold": 30},
    }
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("kibana", "kibana"),
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container], "automountServiceAccountToken": False}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("kibana", "kibana"),
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"name": "http", "port": 5601, "targetPort": "http", "nodePort": settings.kibana_node_port}]}},
    ]


def filebeat_objects(settings: PlatformSettings, config_text: str) -> list[dict[str, Any]]:
    """Filebeat on every node. It reads files only, so its account gets no API access at all."""
    labels = {"app.kubernetes.io/name": "filebeat"}
    version = settings.filebeat_version or settings.elastic.version
    container = {
        "name": "filebeat",
        "image": f"docker.elastic.co/beats/filebeat:{version}",
        "args": ["-c", "/etc/filebeat/filebeat.yml", "-e"],
        "env": [_secret_env("ELASTICSEARCH_PASSWORD", "filebeat-password")],
        # Site logs on the node belong to root.
        "securityContext": {"runAsUser": 0},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/filebeat", "readOnly": True},
            # Same path inside as on the node, so log.file.path is the convention's path.
            {"name": "nodelogs", "mountPath": conventions.NODE_LOG_ROOT, "readOnly": True},
            # The registry survives restarts: no line lost, none sent twice.
            {"name": "data", "mountPath": filebeat.CONTAINER_DATA_DIR},
        ],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("filebeat", "filebeat"),
         "automountServiceAccountToken": False},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("filebeat-config", "filebeat"),
         "data": {"filebeat.yml": config_text}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta("filebeat", "filebeat"),
         "spec": {"selector": {"matchLabels": labels},
                  "template": {
                      "metadata": {"labels": labels,
                                   "annotations": {"tomcat-cd/config-sha": _digest(config_text)}},
                      "spec": {
                          "serviceAccountName": "filebeat",
                          "automountServiceAccountToken": False,
                          "tolerations": [{"operator": "Exists"}],
                          "containers": [container],
                          "volumes": [
                              {"name": "config", "configMap": {"name": "filebeat-config"}},
                              {"name": "nodelogs", "hostPath": {"path": conventions.NODE_LOG_ROOT, "type": "DirectoryOrCreate"}},
                              {"name": "data", "hostPath": {"path": conventions.FILEBEAT_DATA_DIR, "type": "DirectoryOrCreate"}},
                          ]}}}},
    ]


def setup_files(domains: list[str], settings: PlatformSettings) -> dict[str, str]:
    """What the setup job installs: lifecycle policy, index template, one data view per domain."""
    files = {
        "setup.sh": setup_script(),
        "ilm-policy.json": _json(filebeat.ilm_policy(settings.elastic.retention_days)),
        "filebeat-writer-role.json": _json(filebeat.writer_role(domains)),
        "index-template.json": _json(filebeat.index_template(domains, settings.elastic.replicas)),
        "domains.txt": "".join(f"{d}\n" for d in domains),
    }
    files.update({f"data-view-{d}.json": _json(filebeat.data_view(d)) for d in domains})
    return files


def setup_job(files: dict[str, str], settings: PlatformSettings) -> list[dict[str, Any]]:
    """A ConfigMap and a Job named after their content: a new domain list is a new run."""
    name = f"logging-setup-{_digest(json.dumps(files, sort_keys=True))}"
    container = {
        "name": "setup",
        "image": f"docker.elastic.co/elasticsearch/elasticsearch:{settings.elastic.version}",
        "command": ["bash", "/setup/setup.sh"],
        "env": [{"name": "ELASTIC_URL", "value": ELASTIC_URL}, {"name": "KIBANA_URL", "value": KIBANA_URL},
                _secret_env("ELASTIC_PASSWORD", "elastic-password"),
                _secret_env("KIBANA_PASSWORD", "kibana-password"),
                _secret_env("FILEBEAT_PASSWORD", "filebeat-password")],
        "volumeMounts": [{"name": "setup", "mountPath": "/setup", "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, "logging-setup"), "data": files},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(name, "logging-setup"),
         "spec": {"backoffLimit": 20, "ttlSecondsAfterFinished": 86400,
                  # A cluster whose Elasticsearch never comes up must not retry for ever.
                  "activeDeadlineSeconds": SETUP_DEADLINE_SECONDS,
                  "template": {"metadata": {"labels": {"app.kubernetes.io/name": "logging-setup"}},
                               "spec": {"restartPolicy": "OnFailure", "containers": [container],
                                        "automountServiceAccountToken": False,
                                        "volumes": [{"name": "setup", "configMap": {"name": name}}]}}}},
    ]


def setup_script() -> str:
    prefix = filebeat.data_view_id("")
    return f"""#!/usr/bin/env bash
# Generated by tomcat-cd: install the lifecycle policy and index template, set Kibana's
# password, and make Kibana's data views exactly one per domain in domains.txt.
# Idempotent: every request creates or overwrites; stale tomcat-cd data views are removed.
set -euo pipefail
setup=${{SETUP_DIR:-/setup}}

{_request_helpers()}
# Credentials reach curl as a header through a pipe, never on its command line; standard
# input stays free for request bodies. Every wait has a deadline, and so has the Job.
es() {{
  curl --fail --silent --show-error --max-time 30 -H @<(basic_auth elastic "$ELASTIC_PASSWORD") \\
    -H 'Content-Type: application/json' "$@"
}}
kb() {{
  es -H 'kbn-xsrf: {conventions.PROJECT}' "$@"
}}
# wait_for WHAT URL CLIENT: until CLIENT (es or kb) gets an answer from URL, for at most
# WAIT_SECONDS (default 600).
wait_for() {{
  local deadline=$((SECONDS + ${{WAIT_SECONDS:-600}}))
  until "${{@:3}}" "$2" >/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "gave up: $1 at $2 did not answer in ${{WAIT_SECONDS:-600}} s" >&2
      exit 1
    fi
    echo "waiting for $1 at $2"
    sleep "${{WAIT_INTERVAL:-5}}"
  done
}}

wait_for Elasticsearch "$ELASTIC_URL/_cluster/health?wait_for_status=yellow&timeout=10s" es
es -X PUT "$ELASTIC_URL/_ilm/policy/{filebeat.ILM_POLICY}" --data-binary "@$setup/ilm-policy.json"
es -X PUT "$ELASTIC_URL/_index_template/{filebeat.INDEX_TEMPLATE}" --data-binary "@$setup/index-template.json"
printf '{{"password": %s}}' "$(json_string "$KIBANA_PASSWORD")" |
  es -X POST "$ELASTIC_URL/_security/user/kibana_system/_password" --data-binary @-
es -X PUT "$ELASTIC_URL/_security/role/{filebeat.WRITER_ROLE}" --data-binary "@$setup/filebeat-writer-role.json"
printf '{{"password": %s, "roles": ["{filebeat.WRITER_ROLE}"]}}' "$(json_string "$FILEBEAT_PASSWORD")" |
  es -X PUT "$ELASTIC_URL/_security/user/{filebeat.WRITER_USER}" --data-binary @-

wait_for Kibana "$KIBANA_URL/api/status" kb
while read -r domain; do
  kb -X POST "$KIBANA_URL/api/data_views/data_view" --data-binary "@$setup/data-view-$domain.json" >/dev/null
  echo "data view $domain-* ready"
done <"$setup/domains.txt"
for id in $(kb "$KIBANA_URL/api/data_views" | grep -o '"id": *"{prefix}[^"]*"' | cut -d'"' -f4); do
  if ! grep -qxF "${{id#{prefix}}}" "$setup/domains.txt"; then
    kb -X DELETE "$KIBANA_URL/api/data_views/data_view/$id" >/dev/null
    echo "data view of removed domain ${{id#{prefix}}} deleted"
  fi
done
"""


def _request_helpers() -> str:
    # Inserted as a value, so the shell functions' braces need no doubling in the f-string.
    return shell.REQUEST_HELPERS.rstrip("\n")


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]
