"""Scripts that build the Kubernetes cluster with kubeadm: highly available, stacked etcd.

Order (the platform stack wires it): prepare every node -> `kubeadm init` on the first control
plane -> join the other control planes -> join the workers -> the pod network -> pre-pull the
dashboard images on every node.
"""

from __future__ import annotations

from typing import Any

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.hosts.inventory import Cluster, Harbor, Host, Inventory, node_folders
from tomcat_cd.core.hosts.script import heredoc, q, script

CRI_SOCKET = "unix:///run/containerd/containerd.sock"
KUBEADM_DIR = "/etc/kubernetes/tomcat-cd"
INIT_CONFIG = f"{KUBEADM_DIR}/kubeadm-init.yaml"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf"
API_PORT = 6443
KUBEADM_API = "kubeadm.k8s.io/v1beta4"
CRICTL = f"crictl --runtime-endpoint {CRI_SOCKET}"
KUBECTL = f"kubectl --kubeconfig {ADMIN_KUBECONFIG}"

JOIN_SECRETS = {
    "KUBEADM_TOKEN": "a bootstrap token from the first control plane",
    "KUBEADM_CA_CERT_HASH": "the cluster CA's public key hash",
}
CONTROL_PLANE_JOIN_SECRETS = {**JOIN_SECRETS, "KUBEADM_CERTIFICATE_KEY": "the key of the uploaded certificates"}
# Which field of the join-credentials output feeds which variable.
CREDENTIAL_FIELDS = {"KUBEADM_TOKEN": "token", "KUBEADM_CA_CERT_HASH": "caCertHash",
                     "KUBEADM_CERTIFICATE_KEY": "certificateKey"}


class ShellVariable(str):
    """`${NAME}` expanded on the host; always double-quoted so the value stays a string."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(ShellVariable, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", str(value), style='"'))


def _yaml_documents(*documents: dict[str, Any]) -> str:
    return "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False) for doc in documents)


def init_config(cluster: Cluster, inventory: Inventory) -> str:
    """kubeadm's InitConfiguration + ClusterConfiguration + KubeletConfiguration for the first
    control plane; etcd is local (stacked) on every control plane, kubeadm's default."""
    first = inventory.control_planes[0]
    return _yaml_documents(
        {"apiVersion": KUBEADM_API, "kind": "InitConfiguration",
         "localAPIEndpoint": {"advertiseAddress": first.address, "bindPort": API_PORT},
         "nodeRegistration": {"name": first.name, "criSocket": CRI_SOCKET}},
        {"apiVersion": KUBEADM_API, "kind": "ClusterConfiguration",
         "kubernetesVersion": cluster.kubernetes_version,
         "controlPlaneEndpoint": inventory.control_plane_endpoint,
         "networking": {"podSubnet": cluster.pod_subnet, "serviceSubnet": cluster.service_subnet},
         "etcd": {"local": {"dataDir": "/var/lib/etcd"}}},
        {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
         "cgroupDriver": "systemd"},
    )


def join_config(inventory: Inventory, host: Host, control_plane: bool) -> str:
    """A JoinConfiguration whose secrets are shell variables, expanded on the node only."""
    config = {
        "apiVersion": KUBEADM_API, "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": inventory.control_plane_endpoint,
                                         "token": ShellVariable("${KUBEADM_TOKEN}"),
                                         "caCertHashes": [ShellVariable("${KUBEADM_CA_CERT_HASH}")]}},
        "nodeRegistration": {"name": host.name, "criSocket": CRI_SOCKET},
    }
    if control_plane:
        config["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": host.address, "bindPort": API_PORT},
                                  "certificateKey": ShellVariable("${KUBEADM_CERTIFICATE_KEY}")}
    return _yaml_documents(config)


def containerd_config() -> str:
    lines = [
        "# containerd for the kubelet (tomcat-cd): systemd cgroups, data in /data/dockerlibs.",
        "version = 2",
        f'root = "{conventions.CONTAINER_RUNTIME_DIR}"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        "  SystemdCgroup = true",
        '[plugins."io.containerd.grpc.v1.cri".registry]',
        '  config_path = "/etc/containerd/certs.d"',
    ]
    return "\n".join(lines) + "\n"


def _harbor_hosts_toml(harbor: Harbor) -> str:
    lines = [f'server = "{harbor.url}"', f'[host."{harbor.url}"]', '  capabilities = ["pull", "resolve"]']
    if harbor.scheme == "http":
        lines.append("  skip_verify = true")
    return "\n".join(lines) + "\n"


def prepare_node(host: Host, cluster: Cluster, harbor: Harbor | None) -> str:
    """Container runtime, kubelet/kubeadm/kubectl at the pinned version, swap off, sysctls,
    the node folders and the daily image cleanup."""
    repo = f"https://pkgs.k8s.io/core:/stable:/{cluster.minor}/deb/"
    keyring = f"/etc/apt/keyrings/kubernetes-{cluster.minor}.asc"
    version = cluster.package_version
    kube = ("kubelet", "kubeadm", "kubectl")
    folders = "".join(f"ensure_dir {folder} {'711' if folder == conventions.CONTAINER_RUNTIME_DIR else '755'}\n"
                      for folder in node_folders())
    registry = ""
    if harbor:
        registry = heredoc(f"/etc/containerd/certs.d/{harbor.registry}/hosts.toml", "644", _harbor_hosts_toml(harbor))
    body = (
        "# The kubelet will not start with swap on.\n"
        'if [ -n "$(swapon --noheadings --show)" ]; then\n'
        "  system swapoff -a\n"
        "fi\n"
        'if [ -f "$root/etc/fstab" ] && grep -Eq \'^[^#]\\S*\\s+\\S+\\s+swap\\s\' "$root/etc/fstab"; then\n'
        '  sed -i -E \'s/^([^#]\\S*\\s+\\S+\\s+swap\\s.*)$/# \\1 # off for the kubelet (tomcat-cd)/\' "$root/etc/fstab"\n'
        "  changed /etc/fstab\n"
        "fi\n"
        + heredoc("/etc/modules-load.d/tomcat-cd-kubernetes.conf", "644", "overlay\nbr_netfilter\n",
                  then=["system modprobe overlay", "system modprobe br_netfilter"])
        + heredoc("/etc/sysctl.d/90-tomcat-cd-kubernetes.conf", "644",
                  "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
                  "net.ipv4.ip_forward = 1\n", then=["system sysctl --system"])
        + "ensure_packages containerd ca-certificates curl conntrack\n"
        + folders
        + registry
        + heredoc("/etc/containerd/config.toml", "644", containerd_config(),
                  then=["system systemctl restart containerd"])
        + f"fetch {q(repo + 'Release.key')} {keyring}\n"
        + heredoc("/etc/apt/sources.list.d/kubernetes.list", "644", f"deb [signed-by={keyring}] {repo} /\n",
                  then=["system apt-get update -qq"])
        + f"if ! installed kubelet {version} || ! installed kubeadm {version} || ! installed kubectl {version}; then\n"
        f'  if [ -f "$root{KUBELET_KUBECONFIG}" ]; then\n'
        f'    echo "kubelet/kubeadm differ from the pinned {version} on a node already in the cluster:'
        ' upgrade it with kubeadm upgrade, not by reinstalling" >&2\n'
        "    exit 1\n"
        "  fi\n"
        f"  DEBIAN_FRONTEND=noninteractive system apt-get install -y -qq --allow-change-held-packages "
        + " ".join(f"{name}={version}" for name in kube) + "\n"
        f"  system apt-mark hold {' '.join(kube)}\n"
        "  changed 'kubelet kubeadm kubectl " + version + "'\n"
        "fi\n"
        + heredoc("/etc/cron.daily/tomcat-cd-image-cleanup", "755",
                  "#!/bin/sh\n# Daily: remove the images no container uses (tomcat-cd).\n"
                  f"exec {CRICTL} rmi --prune >/dev/null\n")
    )
    return script(f"Prepare Kubernetes node {host.name}: containerd, kubelet {cluster.kubernetes_version}, "
                  "swap off, sysctls, node folders, daily image cleanup", host, body)


def init_first_control_plane(inventory: Inventory, cluster: Cluster) -> str:
    host = inventory.control_planes[0]
    body = (
        f"ensure_dir {KUBEADM_DIR} 700\n"
        + heredoc(INIT_CONFIG, "600", init_config(cluster, inventory))
        + f'if [ -f "$root{ADMIN_KUBECONFIG}" ]; then\n'
        "  say ok 'cluster already initialised here'\n"
        "else\n"
        "  # The token and certificate key stay out of the output: joins get fresh ones as secrets.\n"
        f"  system kubeadm init --config {INIT_CONFIG} --upload-certs --skip-token-print --skip-certificate-key-print\n"
        "  changed 'kubeadm init'\n"
        "fi\n"
    )
    return script(f"kubeadm init on the first control plane {host.name} (endpoint "
                  f"{inventory.control_plane_endpoint}, stacked etcd)", host, body)


def join_credentials(inventory: Inventory) -> str:
    """Prints, as the last line of standard output, what a node needs to join: the stack keeps
    it as a secret and hands it to the joins on their standard input."""
    host = inventory.control_planes[0]
    body = (
        f"export KUBECONFIG={ADMIN_KUBECONFIG}\n"
        'token="$(kubeadm token create --ttl 24h --description "tomcat-cd join")"\n'
        f'key="$(kubeadm init phase upload-certs --upload-certs --config {INIT_CONFIG} | tail -n 1)"\n'
        'hash="$(openssl x509 -pubkey -noout -in "$root/etc/kubernetes/pki/ca.crt"'
        " | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* //')\"\n"
        "printf '{\"token\": \"%s\", \"caCertHash\": \"sha256:%s\", \"certificateKey\": \"%s\"}\\n' "
        '"$token" "$hash" "$key"\n'
    )
    return script("Join credentials: a bootstrap token (24 h), the CA hash and the certificate key "
                  "(kubeadm deletes uploaded certificates after 2 h)", host, body)


def join_node(inventory: Inventory, host: Host, control_plane: bool) -> str:
    role = "control plane (stacked etcd member)" if control_plane else "worker"
    config = join_config(inventory, host, control_plane)
    body = (
        f'if [ -f "$root{KUBELET_KUBECONFIG}" ]; then\n'
        "  say ok 'already in the cluster'\n"
        "else\n"
        '  config="$(mktemp)"\n'
        "  trap 'rm -f \"$config\"' EXIT\n"
        "  # Unquoted heredoc: the secrets expand here, into a file only root can read.\n"
        "  cat >\"$config\" <<JOIN\n"
        f"{config}"
        "JOIN\n"
        '  system kubeadm join --config "$config"\n'
        "  changed 'kubeadm join'\n"
        "fi\n"
    )
    needs = CONTROL_PLANE_JOIN_SECRETS if control_plane else JOIN_SECRETS
    return script(f"kubeadm join {host.name} as a {role} through {inventory.control_plane_endpoint}",
                  host, body, needs)


def pod_network(inventory: Inventory, cluster: Cluster) -> str:
    host = inventory.control_planes[0]
    body = heredoc(f"{KUBEADM_DIR}/cni-manifest.url", "644", cluster.cni_manifest + "\n",
                   then=[f"system {KUBECTL} apply -f {q(cluster.cni_manifest)}"])
    return script(f"Pod network: kubectl apply of {cluster.cni_manifest} (applied again only when it changes)",
                  host, body)


def prepull_dashboard(host: Host, cluster: Cluster) -> str:
    """So the dashboard can move to this node at once when its node dies."""
    body = "".join(
        f"if ! {CRICTL} inspecti {q(image)} >/dev/null 2>&1; then\n"
        f"  system {CRICTL} pull {q(image)}\n"
        f"  changed {q('image ' + image)}\n"
        "fi\n"
        for image in cluster.dashboard_images)
    return script(f"Pre-pull the kubernetes-dashboard images on {host.name}", host, body)


def wait_ready(inventory: Inventory, node: Host) -> str:
    first = inventory.control_planes[0]
    body = f"system {KUBECTL} wait --for=condition=Ready node/{node.name} --timeout=600s\n"
    return script(f"Wait until {node.name} is Ready (on {first.name})", first, body)


def drain_and_delete(inventory: Inventory, node: Host) -> str:
    """Run when a node leaves the inventory: its pods move before the node goes."""
    first = inventory.control_planes[0]
    body = (
        f"if {KUBECTL} get node {node.name} >/dev/null 2>&1; then\n"
        f"  system {KUBECTL} drain {node.name} --ignore-daemonsets --delete-emptydir-data --timeout=600s\n"
        f"  system {KUBECTL} delete node {node.name}\n"
        f"  changed 'node {node.name} drained and deleted'\n"
        "fi\n"
    )
    return script(f"Remove {node.name} from the cluster: drain, then delete the node (on {first.name})", first, body)


def reset_node(node: Host) -> str:
    """Run on the node itself after it was drained; on a control plane kubeadm also removes
    its etcd member."""
    body = (
        f'if [ -f "$root{KUBELET_KUBECONFIG}" ]; then\n'
        "  system kubeadm reset --force\n"
        "  changed 'kubeadm reset'\n"
        "fi\n"
    )
    return script(f"Take {node.name} out of the cluster: kubeadm reset", node, body)


def admin_kubeconfig(inventory: Inventory) -> str:
    """Prints the admin kubeconfig: the platform stack's Kubernetes provider uses it (a secret)."""
    first = inventory.control_planes[0]
    return script("Print the cluster's admin kubeconfig (kept by the stack as a secret)", first,
                  f'cat "$root{ADMIN_KUBECONFIG}"\n')
