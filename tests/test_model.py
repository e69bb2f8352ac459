"""The domain-file loader: defaults, and one exact line per problem."""

from __future__ import annotations

import pytest

from tomcat_cd.core.errors import ConfigError
from tomcat_cd.core.model import HostAlias, Resources, load_sites


def problems_of(project) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_sites(project.domains, relative_to=project.root)
    return [str(p) for p in caught.value.problems]


def test_example_domains_load_sorted_with_their_fields(project):
    sites = load_sites(project.domains)
    assert [s.domain for s in sites] == ["api.gyyx.cn", "shop.gyyx.cn", "test.gyyx.cn"]
    test = sites[2]
    assert test.master_node_port == 32001
    assert test.node_port("master") == 32001
    assert test.node_port("develop") == 31001
    assert test.replicas == {"master": 2, "develop": 1}
    assert test.hosts == (HostAlias("10.0.0.5", ("db.internal", "cache.internal")),
                          HostAlias("10.0.0.9", ("sso.gyyx.cn",)))
    assert test.resources == Resources(cpu="500m", memory="1Gi")
    assert test.java_opts == "-Xms512m -Xmx768m"
    assert test.probe.path == "/health"
    assert [p.name for p in test.config_files()] == ["hello.conf"]
    assert [p.name for p in test.tomcat_files()] == ["context.xml"]


def test_a_minimal_domain_file_gets_every_default(empty_project):
    empty_project.domain("min.example.com", "nodePort: 32100\n")
    (site,) = load_sites(empty_project.domains)
    assert site.replicas == {"master": 2, "develop": 1}
    assert site.hosts == () and site.env == {} and site.jvm_flags == ()
    assert site.resources == Resources("500m", "1Gi", "2", None)
    assert site.java_opts == "-XX:MaxRAMPercentage=75.0"
    assert (site.probe.path, site.probe.startup_seconds) == ("/", 300)
    assert site.config_dir is None and site.tomcat_dir is None


BAD_FILES = [
    ("unknown key", "nodePort: 32100\nreplica: 2\n",
     "domains/a.example.com.yaml: replica: unknown key (known keys: appLogMultiline, baseImage, env, gate, hosts, "
     "javaOpts, jvmFlags, nodePort, probe, replicas, resources)"),
    ("multiline regex Filebeat cannot run", "nodePort: 32100\nappLogMultiline: '^(?!at )'\n",
     "domains/a.example.com.yaml: appLogMultiline: uses lookaround or a back-reference, which Filebeat's "
     "regular expressions (RE2) lack"),
    ("bad multiline regex", "nodePort: 32100\nappLogMultiline: '^(unclosed'\n",
     "domains/a.example.com.yaml: appLogMultiline: is not a regular expression: missing ), unterminated subpattern at position 1"),
    ("missing port", "replicas: {master: 1}\n", "domains/a.example.com.yaml: nodePort: is required"),
    ("port as text", "nodePort: '32100'\n", "domains/a.example.com.yaml: nodePort: must be an integer, got a string"),
    ("port too low", "nodePort: 31500\n",
     "domains/a.example.com.yaml: nodePort: must be between 32001 and 32767, got 31500"),
    ("port too high", "nodePort: 40000\n",
     "domains/a.example.com.yaml: nodePort: must be between 32001 and 32767, got 40000"),
    ("replicas of unknown env", "nodePort: 32100\nreplicas: {prod: 2}\n",
     "domains/a.example.com.yaml: replicas.prod: unknown key (known keys: develop, master)"),
    ("negative replicas", "nodePort: 32100\nreplicas: {master: -1}\n",
     "domains/a.example.com.yaml: replicas.master: must be between 0 and 100, got -1"),
    ("hosts not a list", "nodePort: 32100\nhosts: 10.0.0.1 db\n",
     "domains/a.example.com.yaml: hosts: must be a list of strings, got a string"),
    ("host line without name", "nodePort: 32100\nhosts: ['10.0.0.1']\n",
     "domains/a.example.com.yaml: hosts[0]: must be 'IP name [name...]', got '10.0.0.1'"),
    ("host line with bad ip", "nodePort: 32100\nhosts: ['db 10.0.0.1']\n",
     "domains/a.example.com.yaml: hosts[0]: 'db' is not an IP address (expected 'IP name [name...]')"),
    ("host line with bad name", "nodePort: 32100\nhosts: ['10.0.0.1 db_01!']\n",
     "domains/a.example.com.yaml: hosts[0]: 'db_01!' is not a host name"),
    ("bad cpu", "nodePort: 32100\nresources: {cpu: lots}\n",
     "domains/a.example.com.yaml: resources.cpu: must be a CPU quantity such as 500m or 2, got 'lots'"),
    ("bad env name", "nodePort: 32100\nenv: {1X: y}\n",
     "domains/a.example.com.yaml: env.1X: name must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    ("relative probe path", "nodePort: 32100\nprobe: {path: health}\n",
     "domains/a.example.com.yaml: probe.path: must be an absolute URL path such as /health, got 'health'"),
    ("not a mapping", "- 1\n- 2\n", "domains/a.example.com.yaml: must be a mapping of fields (nodePort, replicas, ...)"),
    ("escape out of unicode", 'nodePort: 32100\njavaOpts: "\\UFFFFFFFF"\n',
     "domains/a.example.com.yaml: not valid YAML: line 2, column 14: found invalid Unicode character escape code"),
    ("duplicate key", "nodePort: 32100\nreplicas: {master: 1}\nnodePort: 32101\n",
     "domains/a.example.com.yaml: not valid YAML: line 3, column 1: duplicate key 'nodePort' (first on line 1)"),
    ("deep nesting", "nodePort: 32100\nenv: " + "[" * 40 + "]" * 40 + "\n",
     "domains/a.example.com.yaml: not valid YAML: nested deeper than 32 levels (line 2)"),
    ("reserved env POD_NAME", "nodePort: 32100\nenv: {POD_NAME: x}\n",
     "domains/a.example.com.yaml: env.POD_NAME: is set by tomcat-cd itself (reserved: CATALINA_BASE, "
     "CATALINA_HOME, CATALINA_OPTS, JAVA_OPTS, POD_NAME); use javaOpts for JVM options"),
    ("reserved env JAVA_OPTS", "nodePort: 32100\nenv: {JAVA_OPTS: -Xmx1g}\n",
     "domains/a.example.com.yaml: env.JAVA_OPTS: is set by tomcat-cd itself (reserved: CATALINA_BASE, "
     "CATALINA_HOME, CATALINA_OPTS, JAVA_OPTS, POD_NAME); use javaOpts for JVM options"),
    ("javaOpts with a quote", "nodePort: 32100\njavaOpts: \"-Dname='x\"\n",
     "domains/a.example.com.yaml: javaOpts: must be JVM options separated by spaces, of letters, digits and "
     "_=:.,/+%@- only (catalina.sh runs JVM options through the shell's eval: quotes, $ and backquotes would "
     "be read as shell), got \"-Dname='x\""),
    ("javaOpts running a command", "nodePort: 32100\njavaOpts: '-Dx=$(id)'\n",
     "domains/a.example.com.yaml: javaOpts: must be JVM options separated by spaces, of letters, digits and "
     "_=:.,/+%@- only (catalina.sh runs JVM options through the shell's eval: quotes, $ and backquotes would "
     "be read as shell), got '-Dx=$(id)'"),
    ("jvm flag with a backquote", "nodePort: 32100\njvmFlags: ['-Dx=`id`']\n",
     "domains/a.example.com.yaml: jvmFlags[0]: must be one JVM flag of letters, digits and _=:.,/+%@- only "
     "(catalina.sh runs JVM options through the shell's eval: quotes, $ and backquotes would be read as "
     "shell), got '-Dx=`id`'"),
    ("scoped IPv6 host", "nodePort: 32100\nhosts: ['fe80::1%eth0 db']\n",
     "domains/a.example.com.yaml: hosts[0]: 'fe80::1%eth0' has a zone (%...), which /etc/hosts in a pod cannot use"),
    ("probe path with a newline", "nodePort: 32100\nprobe: {path: \"/health\\n\"}\n",
     "domains/a.example.com.yaml: probe.path: must be an absolute URL path such as /health, got '/health\\n'"),
    ("broken yaml", "nodePort: [\n",
     "domains/a.example.com.yaml: not valid YAML: line 2, column 1: expected the node content, but found '<stream end>'"),
]


@pytest.mark.parametrize("case,text,expected", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_each_bad_field_is_one_line_naming_file_and_field(empty_project, case, text, expected):
    empty_project.domain("a.example.com", text)
    assert problems_of(empty_project) == [expected]


def test_all_problems_of_all_files_are_reported_at_once(empty_project):
    empty_project.domain("a.example.com", "nodePort: 40000\nhosts: ['x']\n")
    empty_project.domain("b.example.com", "nodePort: 32100\nfoo: 1\n")
    empty_project.domain("Bad_Name", "nodePort: 32101\n")
    lines = problems_of(empty_project)
    assert len(lines) == 4
    assert lines[0].startswith("domains/Bad_Name.yaml: file name must be <domain>.yaml")
    assert lines[1] == "domains/a.example.com.yaml: hosts[0]: must be 'IP name [name...]', got 'x'"
    assert lines[2] == "domains/a.example.com.yaml: nodePort: must be between 32001 and 32767, got 40000"
    assert lines[3].startswith("domains/b.example.com.yaml: foo: unknown key")


def test_two_sites_on_one_port_name_both_files(empty_project):
    empty_project.domain("a.example.com", "nodePort: 32100\n")
    empty_project.domain("b.example.com", "nodePort: 32100\n")
    assert problems_of(empty_project) == [
        "domains/b.example.com.yaml: nodePort: 32100 is already used by domains/a.example.com.yaml"
    ]


def test_two_domains_with_one_kubernetes_name_name_both_files(empty_project):
    empty_project.domain("m.shop.gyyx.cn", "nodePort: 32100\n")
    empty_project.domain("m-shop.gyyx.cn", "nodePort: 32101\n")
    assert problems_of(empty_project) == [
        "domains/m.shop.gyyx.cn.yaml: its Kubernetes name m-shop-gyyx-cn is also the one of "
        "domains/m-shop.gyyx.cn.yaml; rename one of the two domains' files"
    ]


def test_kubernetes_names_over_63_characters_or_not_starting_with_a_letter(empty_project):
    long_domain = "a" * 60 + ".example.com"
    empty_project.domain(long_domain, "nodePort: 32100\n")
    empty_project.domain("1st.example.com", "nodePort: 32101\n")
    assert problems_of(empty_project) == [
        "domains/1st.example.com.yaml: its Kubernetes name 1st-example-com must start with a letter "
        "(a Service name is an RFC 1035 label)",
        f"domains/{long_domain}.yaml: its Kubernetes name {long_domain.replace('.', '-')} has 72 characters; "
        "Kubernetes allows 63",
    ]


def test_only_regular_files_of_bounded_size_are_read(empty_project):
    import os

    os.mkfifo(empty_project.domains / "fifo.example.com.yaml")  # read() would block for ever
    (empty_project.domains / "dir.example.com.yaml").mkdir()
    empty_project.domain("big.example.com", "nodePort: 32100\n" + "#" * 70_000 + "\n")
    empty_project.domain("nl.example.com\n", "nodePort: 32101\n")
    assert problems_of(empty_project) == [
        "domains/big.example.com.yaml: is 70017 bytes; a domain file may have at most 65536",
        "domains/dir.example.com.yaml: is a folder; a domain file is a regular file",
        "domains/fifo.example.com.yaml: is not a regular file",
        "domains/nl.example.com\\n.yaml: file name must be <domain>.yaml with a lower-case domain such as "
        "test.gyyx.cn, got 'nl.example.com\\n'",
    ]


def test_a_site_folder_without_its_domain_file_is_an_error(empty_project):
    empty_project.write("domains/gone.example.com/config/app.conf", "x=1\n")
    assert problems_of(empty_project) == ["domains/gone.example.com: folder has no domain file gone.example.com.yaml beside it"]


def test_tomcat_overrides_must_be_tomcat_conf_files_and_well_formed(empty_project):
    empty_project.domain("a.example.com", "nodePort: 32100\n")
    empty_project.write("domains/a.example.com/tomcat/servr.xml", "<Server/>")
    empty_project.write("domains/a.example.com/tomcat/context.xml", "<Context>")
    empty_project.write("domains/a.example.com/tomcat/Catalina/localhost/ROOT.xml", "<Context/>")
    lines = problems_of(empty_project)
    assert lines[0] == "domains/a.example.com/tomcat/context.xml: not well-formed XML: no element found: line 1, column 9"
    assert lines[1].startswith("domains/a.example.com/tomcat/servr.xml: not a Tomcat conf file (allowed: catalina.policy")
    assert len(lines) == 2


def test_missing_domains_folder(tmp_path):
    with pytest.raises(ConfigError, match="domains folder not found"):
        load_sites(tmp_path / "nowhere")


def test_the_committed_json_schema_is_what_cdctl_schema_prints():
    from conftest import REPO, cdctl

    printed = cdctl("schema")
    assert printed.code == 0, printed.err
    assert printed.out == (REPO / "schemas/domain.schema.json").read_text(), "run: cdctl schema > schemas/domain.schema.json"


def test_the_example_domain_files_name_the_schema_and_pass_a_real_json_schema_validator():
    import json

    import jsonschema
    import yaml

    from conftest import REPO

    schema = json.loads((REPO / "schemas/domain.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((REPO / "domains").glob("*.yaml")):
        assert path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/domain.schema.json", path
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    for bad in ({"replicas": {"master": 2}}, {"nodePort": 40000}, {"nodePort": 32001, "replica": 2},
                {"nodePort": 32001, "resources": {"cpu": "lots"}}, {"nodePort": 32001, "env": {"1X": "y"}}):
        assert list(validator.iter_errors(bad)), bad
