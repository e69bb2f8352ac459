"""The domain-file loader: defaults, and one exact line per problem."""

from __future__ import annotations

import pytest

from tomcat_cd.errors import ConfigError
from tomcat_cd.model import HostAlias, Resources, load_sites


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
     "domains/a.example.com.yaml: replica: unknown key (known keys: appLogMultiline, baseImage, env, hosts, "
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
