"""`cdctl check` and `cdctl render` as a user runs them: output, files and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import GIT_ID, REPO, cdctl


def test_check_accepts_the_example_domains():
    result = cdctl("check")
    assert result.code == 0, result.err
    assert result.out.startswith("ok: 3 domain file(s) in ")


def test_check_reports_every_problem_with_exit_2(project):
    project.domain("a.gyyx.cn", "nodePort: 32001\nreplicas: {master: many}\n")
    result = cdctl("--project-dir", str(project.root), "check")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: domains/a.gyyx.cn.yaml: replicas.master: must be an integer, got a string",
        "error: domains/test.gyyx.cn.yaml: nodePort: 32001 is already used by domains/a.gyyx.cn.yaml",
        "2 problem(s); nothing was written or changed",
    ]


def test_render_writes_one_object_per_file_and_a_build_context_per_site(project, tmp_path):
    out = tmp_path / "out"
    wars = tmp_path / "wars"
    result = cdctl("--project-dir", str(project.root), "render", "--stack", "develop", "--out", str(out))
    assert result.code == 0, result.err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("k8s/")] == [
        "k8s/_cluster/namespace-develop.yaml",
        "k8s/develop/deployment-shop-gyyx-cn.yaml",
        "k8s/develop/deployment-test-gyyx-cn.yaml",
        "k8s/develop/service-shop-gyyx-cn.yaml",
        "k8s/develop/service-test-gyyx-cn.yaml",
    ]
    assert {"build/test.gyyx.cn/Dockerfile", "build/test.gyyx.cn/config/hello.conf",
            "build/test.gyyx.cn/tomcat/server.xml", "build/test.gyyx.cn/tomcat/context.xml",
            "build/test.gyyx.cn/tomcat/logging.properties", "build/test.gyyx.cn/build.json"} <= set(files)
    for path in out.joinpath("k8s").rglob("*.yaml"):
        assert len(list(yaml.safe_load_all(path.read_text()))) == 1, path
    build = json.loads((out / "build/test.gyyx.cn/build.json").read_text())
    assert build == {"baseImage": "harbor.gyyx.cn/template/tomcat:9.0-jdk8",
                     "image": f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-{GIT_ID}",
                     "war": f"{wars}/test.gyyx.cn/v1.2.0/ROOT.war"}
    # The wars are Jenkins' to drop: render warns once per missing war and goes on.
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        'warning: Pulumi.develop.yaml: tomcat-cd:versions["shop.gyyx.cn"]: war not found: '
        f"{wars}/shop.gyyx.cn/v2.4.1/ROOT.war (render goes on; a deploy refuses it)",
        'warning: Pulumi.develop.yaml: tomcat-cd:versions["test.gyyx.cn"]: war not found: '
        f"{wars}/test.gyyx.cn/v1.2.0/ROOT.war (render goes on; a deploy refuses it)",
    ]


def test_render_twice_gives_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert cdctl("render", "--stack", "master", "--out", str(first)).code == 0
    assert cdctl("render", "--stack", "master", "--out", str(second)).code == 0
    read = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert read(first) == read(second)


def test_version_override_acts_like_jenkins_version(tmp_path):
    out = tmp_path / "out"
    result = cdctl("render", "--stack", "master", "--out", str(out), "--version", "test.gyyx.cn=v1.3.0")
    assert result.code == 0, result.err
    deployment = yaml.safe_load((out / "k8s/master/deployment-test-gyyx-cn.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.3.0-master-{GIT_ID}"


def test_render_removes_files_of_sites_no_longer_deployed(project, tmp_path):
    out = tmp_path / "out"
    assert cdctl("--project-dir", str(project.root), "render", "--stack", "develop", "--out", str(out)).code == 0
    (out / "k8s/develop/by-hand.yaml").write_text("kind: Stale\n")
    (out / "build/linked").symlink_to(out / "build/shop.gyyx.cn")
    (out / "notes.txt").write_text("not render's\n")
    project.stack("develop", """
        config:
          tomcat-cd:harborHost: harbor.gyyx.cn
          tomcat-cd:versions: {test.gyyx.cn: v1.2.0}
        """)
    assert cdctl("--project-dir", str(project.root), "render", "--stack", "develop", "--out", str(out)).code == 0
    assert not (out / "k8s/develop/deployment-shop-gyyx-cn.yaml").exists()
    assert not (out / "build/shop.gyyx.cn").exists()
    assert not (out / "k8s/develop/by-hand.yaml").exists() and not (out / "build/linked").is_symlink()
    assert (out / "notes.txt").is_file() and (out / "build/test.gyyx.cn/Dockerfile").is_file()


def test_a_sites_own_tomcat_file_changes_that_site_only_on_a_re_render(project, tmp_path):
    """Identical build-context files are shared (hard links); a re-render replaces one, never writes into it."""
    out = tmp_path / "out"
    render = lambda: cdctl("--project-dir", str(project.root), "render", "--stack", "master", "--out", str(out))
    assert render().code == 0
    shared = [out / f"build/{d}/tomcat/logging.properties" for d in ("api.gyyx.cn", "shop.gyyx.cn", "test.gyyx.cn")]
    assert len({p.stat().st_ino for p in shared}) == 1 and shared[0].stat().st_nlink == 3
    default = shared[0].read_text()
    project.write("domains/test.gyyx.cn/tomcat/logging.properties", "handlers = java.util.logging.ConsoleHandler\n")
    assert render().code == 0
    assert shared[2].read_text() == "handlers = java.util.logging.ConsoleHandler\n"
    assert shared[0].read_text() == shared[1].read_text() == default and shared[0].stat().st_nlink == 2


def test_bad_input_writes_nothing(project, tmp_path):
    out = tmp_path / "out"
    project.domain("test.gyyx.cn", "nodePort: 32001\nhosts: ['10.0.0.300 db']\n")
    result = cdctl("--project-dir", str(project.root), "render", "--stack", "develop", "--out", str(out))
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "error: domains/test.gyyx.cn.yaml: hosts[0]: '10.0.0.300' is not an IP address (expected 'IP name [name...]')")
    assert not out.exists()


def test_unknown_environment_and_bad_version_argument_exit_2(project, tmp_path):
    unknown = cdctl("--project-dir", str(project.root), "render", "--stack", "prod", "--out", str(tmp_path))
    assert unknown.code == 2
    assert unknown.err.splitlines()[0] == f"error: Pulumi.prod.yaml: no such stack file in {project.root} (stacks: develop, master, platform)"
    project.stack("staging", "config:\n  tomcat-cd:harborHost: h.example.com\n")
    staging = cdctl("--project-dir", str(project.root), "render", "--stack", "staging", "--out", str(tmp_path))
    assert staging.code == 2 and "unknown environment 'staging'" in staging.err
    bad = cdctl("render", "--stack", "develop", "--out", str(tmp_path), "--version", "test.gyyx.cn")
    assert bad.code == 2
    assert bad.err.splitlines()[0] == ("error: command line: --version: must be DOMAIN=VERSION such as "
                                       "test.gyyx.cn=v1.2.0, got 'test.gyyx.cn'")


def test_help_explains_commands_and_exit_codes():
    result = cdctl("--help")
    assert result.code == 0
    for text in ("render", "check", "exit codes: 0 ok, 1 failure, 2 bad input", "cdctl render --stack develop"):
        assert text in result.out
    assert "as Jenkins' VERSION" in cdctl("render", "--help").out
    assert cdctl("frobnicate").code == 2


def test_outside_a_checkout_says_where_to_point(tmp_path):
    result = cdctl("check", cwd=tmp_path)
    assert result.code == 2
    assert "not inside a tomcat-cd checkout" in result.err


def test_a_site_on_a_platform_port_is_refused_naming_both(project, tmp_path):
    text = (project.root / "Pulumi.platform.yaml").read_text().replace("nodePort: 30601", "nodePort: 31001")
    (project.root / "Pulumi.platform.yaml").write_text(text)
    site = cdctl("--project-dir", str(project.root), "render", "--stack", "develop", "--out", str(tmp_path / "d"))
    assert site.code == 2
    assert site.err.splitlines()[0] == ("error: domains/test.gyyx.cn.yaml: nodePort: 31001 (develop) is also "
                                        "tomcat-cd:kibana.nodePort of the platform stack (Pulumi.platform.yaml)")
    platform = cdctl("--project-dir", str(project.root), "render", "--stack", "platform", "--out", str(tmp_path / "p"))
    assert platform.code == 2
    assert platform.err.splitlines()[0] == ("error: Pulumi.platform.yaml: tomcat-cd:kibana.nodePort: 31001 is also "
                                            "the develop NodePort of test.gyyx.cn (domains/test.gyyx.cn.yaml)")
    assert not (tmp_path / "d").exists() and not (tmp_path / "p").exists()


def test_what_cdctl_runs_gets_sigint_back_when_cdctl_was_started_with_it_ignored():
    """A background job (`&`, Jenkins' `sh`) starts with SIGINT ignored; passed on, Pulumi's
    plugins ignored the SIGINT Pulumi stops them with, and every update waited for them."""
    import signal
    import subprocess
    import sys
    from pathlib import Path
    child = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    script = ("import subprocess, sys; from cdctl.cli import restore_interrupts; restore_interrupts(); "
              f"subprocess.run([sys.executable, '-c', {child!r}])")
    ignored = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    repo = str(Path(__file__).resolve().parent.parent)
    without = subprocess.run([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', "
                              f"{child!r}])"], preexec_fn=ignored, capture_output=True, text=True, check=True)
    restored = subprocess.run([sys.executable, "-c", script], preexec_fn=ignored, capture_output=True, text=True,
                              check=True, cwd=repo)
    assert without.stdout.strip() == "True"
    assert restored.stdout.strip() == "False"


def test_what_cdctl_runs_writes_its_temporary_files_into_a_folder_removed_at_the_end(tmp_path):
    """Pulumi's Kubernetes provider leaves a kubeconfig copy in the temporary folder each time it
    starts; in cdctl's own folder, it goes when cdctl ends, even when cdctl is interrupted."""
    machine_temp = tmp_path / "tmp"
    machine_temp.mkdir()
    script = ("import subprocess\nfrom cdctl.cli import private_temp_dir\n"
              "with private_temp_dir():\n"
              "    made = subprocess.run(['mktemp', '-t', 'kubeconfigXXXX'], text=True, capture_output=True)\n"
              "    print(made.stdout.strip(), flush=True)\n"
              "    raise KeyboardInterrupt\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "TMPDIR": str(machine_temp)})
    assert "KeyboardInterrupt" in done.stderr
    made = done.stdout.strip()
    assert Path(made).parent.parent == machine_temp and Path(made).parent.name.startswith("cdctl-"), made
    assert list(machine_temp.iterdir()) == []


def test_an_engine_that_cannot_be_found_is_one_line_not_a_traceback():
    # Without HOME, scripts/install-pulumi cannot say where its cache is.
    done = subprocess.run([sys.executable, "-m", "cdctl", "history", "test.gyyx.cn", "--env", "develop"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {REPO}/scripts/install-pulumi --print-path failed: {REPO}/scripts/versions.env: line 3: HOME: unbound variable"]
