"""A host reached over real SSH for the host-script tests: Debian's OpenSSH server on a loopback
address with a throwaway key pair, a throwaway root for the files scripts write
(TOMCAT_CD_ROOT) and stand-ins for the system tools they call (tests/stubs/system-tool), so
nothing the scripts do reaches the machine running the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import free_port, require_installed
from tomcat_cd.core.hosts.script import exports

SSHD = Path("/usr/sbin/sshd")
STUB = Path(__file__).parent / "stubs" / "system-tool"
STUBBED = ("apt-get", "apt-mark", "dpkg-query", "swapon", "swapoff", "modprobe", "sysctl", "systemctl", "curl",
           "kubeadm", "crictl", "kubectl", "nginx")
# Calls that only look; every other call in the log changed the machine.
READ_ONLY = ("dpkg-query", "swapon", "crictl --runtime-endpoint unix:///run/containerd/containerd.sock inspecti",
             "kubectl --kubeconfig /etc/kubernetes/admin.conf get", "kubeadm token create",
             "kubeadm init phase upload-certs")


def require_sshd() -> None:
    require_installed(SSHD.exists() and shutil.which("ssh") is not None,
                      "OpenSSH is not installed (scripts/install-checkers installs Debian's openssh-server)")


@dataclass
class SshHost:
    """One sshd on `address`; every session it opens runs with the throwaway root and stubs."""

    address: str
    port: int
    key: Path
    """The client's private key (OpenSSH format)."""
    host_key: str
    """The server's public key line, as `hostKey` in the inventory takes it."""
    known_hosts: Path
    root: Path
    state: Path
    log: Path
    server: subprocess.Popen

    def environment(self) -> dict[str, str]:
        return {"TOMCAT_CD_ROOT": str(self.root), "STUB_STATE": str(self.state), "STUB_LOG": str(self.log),
                "PATH": f"{self.state.parent / 'stubs'}:/usr/sbin:/usr/bin:/sbin:/bin"}

    def ssh(self, command: str, stdin: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-F", "none", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
             f"root@{self.address}", command], input=stdin, capture_output=True, text=True, timeout=60)

    def run(self, script: str, secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a script as the platform stack does, `bash -s` with its secrets ahead of it on
        stdin, after emptying the log of calls."""
        self.log.write_text("")
        return self.ssh("bash -s", exports(secrets or {}) + script)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def changing_calls(self) -> list[str]:
        return [call for call in self.calls() if not call.startswith(READ_ONLY)]

    def tree(self) -> dict[str, tuple]:
        """Every path under the root with its mode, modification time and content."""
        result = {}
        for path in sorted(self.root.rglob("*")):
            stat = path.lstat()
            content = path.read_bytes() if path.is_file() else b""
            result[str(path.relative_to(self.root))] = (oct(stat.st_mode), stat.st_mtime_ns, content)
        return result

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)


def start_ssh_host(folder: Path, address: str = "127.0.0.1", log: Path | None = None,
                   stubbed: tuple[str, ...] = STUBBED) -> SshHost:
    """sshd on `address` (any of 127.0.0.0/8) with its own keys, root, stub state and log; the
    stand-ins' settings reach every session through `environment=` in authorized_keys."""
    require_sshd()
    folder.mkdir(parents=True)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    stubs = folder / "stubs"
    stubs.mkdir()
    for tool in stubbed:
        (stubs / tool).symlink_to(STUB)
    root, state = folder / "root", folder / "state"
    root.mkdir()
    state.mkdir()
    port = free_port(address)
    host_key = " ".join((folder / "host.pub").read_text().split()[:2])
    host = SshHost(address, port, folder / "client", host_key, folder / "known_hosts", root, state,
                   log or folder / "calls.log", server=None)  # type: ignore[arg-type]
    options = ",".join(f'environment="{name}={value}"' for name, value in host.environment().items())
    (folder / "authorized_keys").write_text(f"{options} {(folder / 'client.pub').read_text()}")
    host.known_hosts.write_text(f"[{address}]:{port} {host_key}\n")
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", f"ListenAddress {address}", f"HostKey {folder / 'host'}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "PermitUserEnvironment yes", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    host.server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex((address, port)) != 0:
        if host.server.poll() is not None:
            raise AssertionError(f"sshd did not start: {host.server.stderr.read()}")
        if time.monotonic() > deadline:
            host.stop()
            raise AssertionError("sshd did not listen within 10 s")
        time.sleep(0.05)
    return host
