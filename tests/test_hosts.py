"""The platform stack's machines: the inventory, the order of the remote steps, the exact
commands they run, real checkers on what they write (kubeadm, shellcheck), and the program
wiring them as `remote.Command`s under Pulumi's mocks, secrets kept secret."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, cdctl, require_installed
from pulumi_harness import is_secret, run_program, unwrap_secrets
from tomcat_cd.core.errors import ConfigError
from tomcat_cd.core.hosts import cluster, plan, services
from tomcat_cd.core.hosts.inventory import Harbor, Host
from tomcat_cd.core.platform_plan import build_platform_plan
from tomcat_cd.core.platform_settings import parse_platform_settings

SOURCE = "Pulumi.platform.yaml"
INVENTORY = {
    "controlPlaneEndpoint": "k8s-api.example.com:6443",
    "controlPlanes": [{"name": f"k8s-master-{i}", "address": f"10.0.0.1{i}"} for i in (1, 2, 3)],
    "workers": [{"name": f"k8s-node-{i}", "address": f"10.0.0.2{i}"} for i in (1, 2)],
    "harbor": {"name": "harbor", "address": "10.0.0.31"},
    "jenkins": {"name": "jenkins", "address": "10.0.0.32", "user": "deploy"},
    "gitlab": {"name": "gitlab", "address": "10.0.0.33", "keySecret": "gitlabSshKey"},
    "nginx": [{"name": "nginx-1", "address": "10.0.0.41"}],
}
SECRETS = {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nssh-test-key\n",
           "gitlabSshKey": "-----BEGIN OPENSSH PRIVATE KEY-----\ngitlab-test-key\n",
           "harborAdminPassword": "Harbor-admin-pw-1", "harborDatabasePassword": "Harbor-db-pw-1",
           "harborRobotSecret": "Robot-secret-pw-1", "elasticPassword": "es-test-pw", "kibanaPassword": "kb-test-pw",
           "filebeatPassword": "fb-test-pw"}
BOOTSTRAP = {"inventory": INVENTORY, "bootstrap": True, "harbor": {"hostname": "harbor.example.com"},
             "backups": {"offsite": "backup@10.0.0.50:/srv/backups"}}


def settings(values=None):
    return parse_platform_settings("platform", {"inventory": INVENTORY, **(values or {})}, SOURCE)


def steps(project_root: Path, values=None) -> dict[str, plan.RemoteStep]:
    built = build_platform_plan(settings(values), project_root)
    return {step.name: step for step in built.steps}


@pytest.mark.parametrize("change, problem", [
    ({"controlPlanes": INVENTORY["controlPlanes"][:2]},
     "tomcat-cd:inventory.controlPlanes: must be an odd number (1, 3, 5): stacked etcd with 2 members survives "
     "no more failures than with 1"),
    ({"controlPlanes": [], "controlPlaneEndpoint": None}, "tomcat-cd:inventory.workers: needs controlPlanes to join"),
    ({"controlPlaneEndpoint": None},
     "tomcat-cd:inventory.controlPlaneEndpoint: is required with controlPlanes: the load-balanced API address every node joins"),
    ({"controlPlaneEndpoint": "k8s-api"},
     "tomcat-cd:inventory.controlPlaneEndpoint: must be host:port of the load-balanced API, such as "
     "k8s-api.example.com:6443, got 'k8s-api'"),
    ({"workers": [{"name": "k8s-master-1", "address": "10.0.0.99"}]},
     "tomcat-cd:inventory.controlPlanes: node name k8s-master-1 appears twice"),
    ({"workers": [{"name": "Node_1", "address": "10.0.0.21"}]},
     "tomcat-cd:inventory.workers[0].name: must be a lower-case host name such as k8s-node-1, got 'Node_1'"),
    ({"workers": [{"name": "k8s-node-1", "address": "10.0.0.21", "pasword": "x"}]},
     "tomcat-cd:inventory.workers[0].pasword: unknown key (known keys: address, hostKey, keySecret, name, port, user)"),
    ({"harbor": {"name": "harbor", "address": "10.0.0.31", "port": 70000}},
     "tomcat-cd:inventory.harbor.port: must be between 1 and 65535, got 70000"),
])
def test_inventory_problems_name_file_and_field(change, problem):
    inventory = {key: value for key, value in {**INVENTORY, **change}.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        parse_platform_settings("platform", {"inventory": inventory}, SOURCE)
    assert [str(p) for p in caught.value.problems] == [f"{SOURCE}: {problem}"]


def test_ssh_keys_must_be_secrets_and_bootstrap_needs_them(project):
    with pytest.raises(ConfigError) as caught:
        parse_platform_settings("platform", {"inventory": INVENTORY, "sshPrivateKey": "plain"}, SOURCE)
    assert [str(p) for p in caught.value.problems] == [
        f"{SOURCE}: tomcat-cd:sshPrivateKey: must be a secret: pulumi config set --secret sshPrivateKey -s platform"]
    with pytest.raises(ConfigError) as caught:
        build_platform_plan(settings({"bootstrap": True}), project.root)
    assert [p.field for p in caught.value.problems] == [
        "tomcat-cd:gitlabSshKey", "tomcat-cd:harborAdminPassword", "tomcat-cd:harborDatabasePassword",
        "tomcat-cd:harborRobotSecret", "tomcat-cd:sshPrivateKey"]


def test_steps_run_in_the_order_kubeadm_needs(project):
    by_name = steps(project.root)
    names = list(by_name)

    def before(first: str, then: str) -> None:
        assert names.index(first) < names.index(then), f"{first} must come before {then}"
        assert first in _transitive(by_name, then), f"{then} must wait for {first}"

    before("prepare-k8s-master-1", "kubeadm-init")
    before("kubeadm-init", "join-credentials")
    before("join-credentials", "join-k8s-master-2")
    before("join-k8s-master-2", "join-k8s-master-3")  # one etcd member at a time
    for worker in ("k8s-node-1", "k8s-node-2"):
        before(f"prepare-{worker}", f"join-{worker}")
        before("join-k8s-master-3", f"join-{worker}")
        before(f"join-{worker}", "pod-network")
    for node in ("k8s-master-1", "k8s-master-2", "k8s-master-3", "k8s-node-1", "k8s-node-2"):
        before("pod-network", f"prepull-{node}")
    assert "member-k8s-master-1" not in by_name, "the first control plane is never drained by an inventory edit"
    assert by_name["join-credentials"].triggers == ("k8s-master-2", "k8s-master-3", "k8s-node-1", "k8s-node-2")


def _transitive(by_name, name: str) -> set[str]:
    seen, todo = set(), list(by_name[name].after)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += by_name[current].after
    return seen


def test_removing_a_node_drains_it_on_a_control_plane_then_resets_it(project):
    by_name = steps(project.root)
    ready, member = by_name["ready-k8s-node-2"], by_name["member-k8s-node-2"]
    assert ready.host.name == "k8s-master-1" and "member-k8s-node-2" in ready.after  # deleted first
    kubectl = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
    assert f"system {kubectl} drain k8s-node-2 --ignore-daemonsets --delete-emptydir-data --timeout=600s\n" \
        in ready.delete_script
    assert f"system {kubectl} delete node k8s-node-2\n" in ready.delete_script
    assert member.host.name == "k8s-node-2" and "system kubeadm reset --force\n" in member.delete_script


def test_the_exact_kubeadm_command_lines(project):
    by_name = steps(project.root)
    assert ("system kubeadm init --config /etc/kubernetes/tomcat-cd/kubeadm-init.yaml --upload-certs "
            "--skip-token-print --skip-certificate-key-print\n") in by_name["kubeadm-init"].script
    assert 'system kubeadm join --config "$config"\n' in by_name["join-k8s-node-1"].script
    credentials = by_name["join-credentials"].script
    assert 'token="$(kubeadm token create --ttl 24h --description "tomcat-cd join")"' in credentials
    assert "kubeadm init phase upload-certs --upload-certs --config /etc/kubernetes/tomcat-cd/kubeadm-init.yaml" \
        in credentials
    assert ("system kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f "
            "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s-1.11.yaml") \
        in by_name["pod-network"].script
    other = steps(project.root, {"cluster": {"cniManifest": "https://example.com/calico.yaml", "podSubnet": "192.168.0.0/16"}})
    assert "apply -f https://example.com/calico.yaml" in other["pod-network"].script
    assert "podSubnet: 192.168.0.0/16" in other["kubeadm-init"].script
    assert by_name["join-k8s-master-2"].secrets == {
        "KUBEADM_TOKEN": plan.FromStep("join-credentials", "token"),
        "KUBEADM_CA_CERT_HASH": plan.FromStep("join-credentials", "caCertHash"),
        "KUBEADM_CERTIFICATE_KEY": plan.FromStep("join-credentials", "certificateKey")}
    assert "KUBEADM_CERTIFICATE_KEY" not in by_name["join-k8s-node-1"].secrets


def kubeadm() -> Path:
    bin_dir = subprocess.run([str(REPO / "scripts/install-cluster"), "--print-path"], capture_output=True,
                             text=True, check=True).stdout.strip()
    path = Path(bin_dir) / "kubeadm"
    require_installed(path.exists(), f"{path} not built: run scripts/install-cluster")
    return path


def _validate(config: str, tmp_path: Path) -> subprocess.CompletedProcess:
    file = tmp_path / "kubeadm.yaml"
    file.write_text(config)
    return subprocess.run([str(kubeadm()), "config", "validate", "--config", str(file)], capture_output=True, text=True)


@pytest.mark.checker
def test_kubeadm_itself_accepts_the_init_and_join_configs(tmp_path):
    spec = settings()
    assert (result := _validate(cluster.init_config(spec.cluster, spec.inventory), tmp_path)).returncode == 0, result.stderr
    values = {"KUBEADM_TOKEN": "abcdef.0123456789abcdef", "KUBEADM_CA_CERT_HASH": "sha256:" + "0" * 64,
              "KUBEADM_CERTIFICATE_KEY": "1" * 64}
    for host, control_plane in ((spec.inventory.control_planes[1], True), (spec.inventory.workers[0], False)):
        config = cluster.join_config(spec.inventory, host, control_plane)
        expanded = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], config)
        assert (result := _validate(expanded, tmp_path)).returncode == 0, result.stderr
    broken = cluster.init_config(spec.cluster, spec.inventory).replace("controlPlaneEndpoint", "controlPlaneEndpiont")
    assert _validate(broken, tmp_path).returncode != 0, "kubeadm must refuse an unknown field"


@pytest.mark.checker
def test_every_rendered_host_script_and_the_files_it_installs_pass_shellcheck(project, tmp_path):
    project.write("Pulumi.platform.yaml", yaml.safe_dump({"config": {
        f"tomcat-cd:{key}": value for key, value in {**BOOTSTRAP, "bootstrap": False}.items()}}))
    result = cdctl("render", "--stack", "platform", "--out", str(tmp_path / "out"), cwd=project.root)
    assert result.code == 0, result.err
    scripts = sorted((tmp_path / "out/hosts").rglob("*.sh"))
    expected = steps(project.root, {**BOOTSTRAP, "bootstrap": False}).values()
    assert len(scripts) == len(expected) + sum(1 for step in expected if step.delete_script) == 43
    assert (tmp_path / "out/hosts/ORDER.txt").exists()
    installed = tmp_path / "installed"
    installed.mkdir()
    for script in scripts:  # the cron jobs each script writes: heredocs starting with #!/bin/sh
        for index, body in enumerate(re.findall(r"<<'TOMCAT_CD_EOF'[^\n]*\n(#!/bin/sh\n.*?)TOMCAT_CD_EOF", script.read_text(), re.S)):
            (installed / f"{script.stem}-{index}.sh").write_text(body)
    jobs = sorted(installed.iterdir())
    assert len(jobs) == 7  # image cleanup on 5 nodes, Jenkins' off-site copy, GitLab's backup
    shellcheck = str(Path(sys.executable).parent / "shellcheck")
    proc = subprocess.run([shellcheck, *map(str, scripts + jobs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    # And shellcheck is not one to pass anything: the prelude with one quote dropped fails.
    broken = tmp_path / "broken.sh"
    broken.write_text(scripts[0].read_text().replace('mkdir -p "$path"', "mkdir -p $path", 1))
    assert subprocess.run([shellcheck, str(broken)], capture_output=True, text=True).returncode != 0


def test_thin_backup_is_hourly_keeps_ten_and_uses_only_documented_fields():
    # ThinBackup >= 2.0's Configuration-as-Code fields, as its documentation lists them.
    documented = {"backupAdditionalFiles", "backupAdditionalFilesRegex", "backupBuildArchive", "backupBuildResults",
                  "backupBuildsToKeepOnly", "backupConfigHistory", "backupNextBuildNumber", "backupPath",
                  "backupPluginArchives", "backupUserContents", "cleanupDiff", "diffBackupSchedule",
                  "excludedFilesRegex", "failFast", "forceQuietModeTimeout", "fullBackupSchedule",
                  "moveOldBackupsToZipFile", "nrMaxStoredFull", "waitForIdle"}
    thin = services.thin_backup_casc()["unclassified"]["thinBackup"]
    assert set(thin) <= documented
    assert thin["fullBackupSchedule"] == "H * * * *" and thin["nrMaxStoredFull"] == 10


def test_backups_are_copied_off_site(project):
    by_name = steps(project.root, {"backups": {"offsite": "backup@10.0.0.50:/srv/backups"}})
    assert "rsync -a --delete /data/jenkins-backup/ backup@10.0.0.50:/srv/backups/jenkins/" in by_name["jenkins-install"].script
    gitlab = by_name["gitlab-backup"].script
    assert "gitlab-rake gitlab:backup:create CRON=1" in gitlab and "0 2 * * * root" in gitlab
    assert "/etc/gitlab/gitlab-secrets.json" in gitlab, "a GitLab backup cannot be restored without its secrets"
    assert "no off-site target" in steps(project.root)["gitlab-backup"].script


def test_jenkins_gets_the_war_tree_of_every_domain(project):
    script = steps(project.root)["jenkins-install"].script
    for domain in sorted(path.stem for path in project.domains.glob("*.yaml")):
        assert f"ensure_dir /data/jks-cd-config/{domain} 755\nensure_owner /data/jks-cd-config/{domain} jenkins\n" in script


def test_harbor_projects_follow_the_domain_files(project):
    by_name = steps(project.root)
    projects = sorted(name.removeprefix("harbor-project-") for name in by_name if name.startswith("harbor-project-"))
    domains = sorted(path.stem for path in project.domains.glob("*.yaml"))
    assert projects == sorted(["template", *domains])
    project.domain("new.gyyx.cn", "nodePort: 32100\n")
    assert "harbor-project-new.gyyx.cn" in steps(project.root)


# --- the program under Pulumi's mocks ---------------------------------------------------------

def run_bootstrap(project, values=None):
    config = {**BOOTSTRAP, **(values or {}), **SECRETS}
    return run_program(project.root, "platform", config, secret_keys=tuple(SECRETS))


def test_every_step_is_a_remote_command_wired_in_order(project):
    recorder = run_bootstrap(project)
    commands = {r.name: r for r in recorder.of_type("command:remote:Command")}
    assert sorted(commands) == sorted(steps(project.root, BOOTSTRAP | {"bootstrap": False}))
    chain = ["kubeadm-init", "join-k8s-master-2", "join-k8s-master-3", "join-k8s-node-1", "pod-network",
             "prepull-k8s-node-1"]
    for first, then in zip(chain, chain[1:]):
        assert first in recorder.depends_on(then), f"{then} must wait for {first}"
    assert "prepare-k8s-node-1" in recorder.depends_on("join-k8s-node-1")
    assert {"join-k8s-node-1", "join-k8s-node-2", "join-k8s-master-3"} <= recorder.depends_on("pod-network")
    worker = commands["join-k8s-node-1"].inputs
    assert worker["create"] == worker["update"] == "bash -s"
    jenkins = commands["jenkins-install"].inputs
    assert jenkins["create"] == "sudo -n bash -s" and unwrap_secrets(jenkins["connection"])["user"] == "deploy"
    logging = recorder.depends_on("logging-namespace-logging")
    assert "pod-network" in logging, "the platform's objects wait for the cluster"


def test_secrets_stay_secret_in_every_command(project):
    recorder = run_bootstrap(project)
    commands = {r.name: r for r in recorder.of_type("command:remote:Command")}
    join = commands["join-k8s-master-2"].inputs
    assert is_secret(join["stdin"]), "the join token travels as a secret"
    assert "export KUBEADM_TOKEN=abcdef.0123456789abcdef\n" in unwrap_secrets(join["stdin"])
    assert is_secret(commands["harbor-robot"].inputs["stdin"])
    assert "export HARBOR_ROBOT_SECRET=Robot-secret-pw-1\n" in unwrap_secrets(commands["harbor-robot"].inputs["stdin"])
    for name, command in commands.items():
        key = unwrap_secrets(command.inputs["connection"])["privateKey"]
        assert is_secret(command.inputs["connection"]), f"{name}: the connection holds the private key"
        assert key == SECRETS["gitlabSshKey" if name == "gitlab-backup" else "sshPrivateKey"]
        plain = {k: v for k, v in command.inputs.items() if not is_secret(v) and k != "connection"}
        for secret in SECRETS.values():
            assert secret not in repr(plain), f"{name} shows a secret in the clear"
    assert not is_secret(commands["prepare-k8s-node-1"].inputs["stdin"]), "a script without secrets stays reviewable"


def test_steps_that_hand_on_secrets_keep_their_output_secret_and_out_of_the_log(project):
    recorder = run_bootstrap(project)
    commands = {r.name: r for r in recorder.of_type("command:remote:Command")}
    for name in ("join-credentials", "admin-kubeconfig"):
        assert "stdout" in recorder.secret_outputs[name], name
        assert commands[name].inputs["logging"] == "stderr", f"{name} prints a secret: its stdout is not logged"
    assert "stdout" not in recorder.secret_outputs["prepare-k8s-node-1"]
    assert commands["prepare-k8s-node-1"].inputs["logging"] == "stdoutAndStderr"


def test_without_bootstrap_nothing_runs_on_the_machines(project):
    recorder = run_bootstrap(project, {"bootstrap": False})
    assert recorder.of_type("command:remote:Command") == []


@pytest.mark.parametrize("password", ['quote"d', "back\\slash", "new\nline"])
def test_harbor_install_refuses_passwords_harbor_yml_cannot_quote_before_doing_anything(password):
    script = services.install_harbor(Host("harbor", "127.0.0.1"), Harbor(hostname="harbor.example.com"))
    # PATH holds nothing: were the check to pass, the next step would fail differently.
    done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/nonexistent", "HARBOR_ADMIN_PASSWORD": password,
                               "HARBOR_DATABASE_PASSWORD": "db-pw"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Harbor passwords may not hold a double quote, a backslash or a control character (harbor.yml quotes them)"]
