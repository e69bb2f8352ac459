"""Random and mangled domain files and stack configs: cdctl answers 0 or 2, never a traceback."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdctl.cli import main
from conftest import copy_project

DOMAIN_KEYS = ["nodePort", "replicas", "hosts", "resources", "javaOpts", "jvmFlags", "env", "probe",
               "baseImage", "master", "develop", "cpu", "memory", "path", "bogus"]
PLATFORM_KEYS = ["role", "domainsDir", "target", "elastic", "kibana", "filebeat", "weaveScope", "elasticPassword",
                 "version", "replicas", "heap", "nodePort", "enabled", "retentionDays", "bogus",
                 "inventory", "bootstrap", "cluster", "harbor", "jenkins", "backups", "sshPrivateKey",
                 "controlPlanes", "workers", "controlPlaneEndpoint", "nginx", "name", "address", "port", "user",
                 "keySecret", "hostKey", "ssh", "offsite", "podSubnet", "cniManifest", "scheme"]
STACK_KEYS = ["harborHost", "harborUsername", "harborPassword", "baseImage", "warRoot", "domainsDir",
              "buildImages", "protectNamespace", "versions", "environment", "bogus"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["32001", "10.0.0.1 db", "v1.2.0", "test.gyyx.cn", "500m", "/health",
                                           "../../etc", "", "{secure: x}", "a.b"]),
    st.integers(32001, 32767), st.integers(31000, 33000),
)


def values(keys):
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), inner, max_size=5),
    ), max_leaves=12)


domain_docs = st.dictionaries(st.sampled_from(DOMAIN_KEYS), values(DOMAIN_KEYS), max_size=8)
stack_docs = st.dictionaries(st.sampled_from(STACK_KEYS).map(lambda k: f"tomcat-cd:{k}"),
                             values(STACK_KEYS + ["test.gyyx.cn", "api.gyyx.cn", "nope.example.com"]), max_size=8)


def mangle(text: str, data) -> str:
    """Cut, duplicate or corrupt a slice of otherwise valid YAML."""
    if not text:
        return text
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start, len(text)))
    how = data.draw(st.sampled_from(["cut", "dup", "junk"]))
    if how == "cut":
        return text[:start] + text[end:]
    if how == "dup":
        return text[:end] + text[start:end] + text[end:]
    return text[:start] + data.draw(st.text(alphabet=":-[]{}'\"#&*!|>%@` \n\t\x00é", max_size=6)) + text[end:]


def run_cdctl(*argv: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse
            code = exit_.code
    assert "Traceback" not in err.getvalue()
    return code


def scratch_project() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="fuzz-"))
    return copy_project(scratch / "project", scratch / "wars").root


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(doc=domain_docs, data=st.data())
def test_random_domain_files_exit_0_or_2(doc, data):
    root = scratch_project()
    try:
        text = yaml.safe_dump(doc)
        if data.draw(st.booleans()):
            text = mangle(text, data)
        (root / "domains/test.gyyx.cn.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        for argv in (["check"], ["render", "--stack", "develop", "--out", str(root / "out")]):
            assert run_cdctl("--project-dir", str(root), *argv) in (0, 2)
    finally:
        shutil.rmtree(root.parent)


def check_stack_file(stack: str, doc: dict, data) -> None:
    """Write a random (maybe mangled) Pulumi.<stack>.yaml; render and check answer 0 or 2."""
    root = scratch_project()
    try:
        text = yaml.safe_dump({"config": doc})
        if data.draw(st.booleans()):
            text = mangle(text, data)
        (root / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        code = run_cdctl("--project-dir", str(root), "render", "--stack", stack, "--out", str(root / "out"))
        assert code in (0, 2)
        assert run_cdctl("--project-dir", str(root), "check", "--stack", stack) in (0, 2)
    finally:
        shutil.rmtree(root.parent)


@FUZZ
@given(doc=stack_docs, data=st.data())
def test_random_stack_configs_exit_0_or_2(doc, data):
    check_stack_file("develop", doc, data)


@FUZZ
@given(args=st.lists(st.text(alphabet="=.-abcv0123 ", max_size=12), max_size=3))
def test_random_version_arguments_exit_0_or_2(args):
    root = scratch_project()
    try:
        argv = [a for arg in args for a in ("--version", arg)]
        assert run_cdctl("--project-dir", str(root), "render", "--stack", "develop",
                         "--out", str(root / "out"), *argv) in (0, 2)
    finally:
        shutil.rmtree(root.parent)


platform_docs = st.dictionaries(st.sampled_from(PLATFORM_KEYS).map(lambda k: f"tomcat-cd:{k}"),
                                values(PLATFORM_KEYS), max_size=8)


@FUZZ
@given(doc=platform_docs, data=st.data())
def test_random_platform_configs_exit_0_or_2(doc, data):
    check_stack_file("platform", doc, data)
