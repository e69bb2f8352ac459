"""The YAML tomcat-cd writes is PyYAML's, byte for byte, whichever path writes it."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import cdctl
from tomcat_cd.core import yamltext

# Words and characters that change how YAML reads a scalar: types, indicators, quotes, breaks.
TRICKY = ["true", "True", "yes", "NO", "on", "off", "null", "~", "", " ", "-", "- x", "--- x", "...x", "<<", "=",
          "8080", "-1", "0x1F", "0o17", "1e3", "1_000", "1:30", ".inf", "-.nan", "2026-12-03", "10.0.0.1",
          "a: b", "a:", ":a", "?x", "x #y", "#x", "x#y", "'q'", 'say "hi"', "@x", "`x", "%x", "!x", "&x", "*x",
          "|x", ">x", "[x]", "{x}", "a,b", "x ", " x", "a\nb", "a\tb", "ü", "é:", "\x85", "$(POD_NAME)",
          "-XX:MaxRAMPercentage=75.0", "harbor.gyyx.cn/a/b:v1.2.0-master-abc1234", "app.kubernetes.io/name"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.sampled_from(TRICKY), st.text(alphabet=st.sampled_from(sorted(set("".join(TRICKY)))), max_size=8))
keys = st.one_of(st.sampled_from(TRICKY), st.text(max_size=6), st.integers(0, 9), st.booleans())
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(keys, inner, max_size=4)), max_leaves=16)


class LibyamlNoAliases(yaml.CSafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True


def pyyaml(obj) -> str:
    """What render wrote before it had a writer of its own: PyYAML through libyaml."""
    return yaml.dump(obj, Dumper=LibyamlNoAliases, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1000)


# Manifest-like trees: words of the characters manifests hold, not starting with a YAML
# indicator, some of which read as another type or a marker and are single-quoted by PyYAML
# ("true", "8080", "a:", "- x", "...x"). tomcat-cd writes every one of them itself.
REST = "az09_./=+~$()<>^;\\:@,!&*%?|\"[]{} -"
WORD = st.builds(str.__add__, st.sampled_from("az09_./=+~$()<^;\\-"), st.text(alphabet=st.sampled_from(REST), max_size=10))
words = st.one_of(WORD, st.sampled_from(["true", "8080", "a:", "a: b", "- x", "-", "---x", "...x", "~", "x ", "<<", "="]))
manifests = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), words), lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(words, inner, max_size=4)), max_leaves=24)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(keys, trees, min_size=1, max_size=5))
def test_any_tree_is_written_as_pyyaml_writes_it(tree):
    assert yamltext.to_yaml(tree) == pyyaml(tree)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(words, manifests.filter(lambda t: not _list_in_list(t)), min_size=1, max_size=6))
def test_a_manifest_like_tree_is_written_without_pyyaml_as_pyyaml_writes_it(tree):
    assert "".join(yamltext._block(tree, "", in_sequence=False)) == pyyaml(tree)


def _list_in_list(tree) -> bool:
    """PyYAML's `- - x` is left to PyYAML: no manifest has a sequence of sequences."""
    if isinstance(tree, dict):
        return any(_list_in_list(v) for v in tree.values())
    if isinstance(tree, list):
        return any((isinstance(v, list) and v) or _list_in_list(v) for v in tree)
    return False


def test_every_rendered_object_is_written_as_pyyaml_writes_it_and_most_without_pyyaml(tmp_path: Path):
    written, direct = 0, 0
    for stack in ("master", "develop", "platform"):
        assert cdctl("render", "--stack", stack, "--out", str(tmp_path / stack)).code == 0
        for path in sorted((tmp_path / stack / "k8s").rglob("*.yaml")):
            obj = yaml.safe_load(path.read_text())
            assert yamltext.to_yaml(obj) == path.read_text() == pyyaml(obj), path
            written += 1
            try:
                "".join(yamltext._block(obj, "", in_sequence=False))
                direct += 1
            except yamltext._NotPlain:
                pass
    sites = len(list((tmp_path / "master" / "k8s").rglob("*.yaml")))
    assert written > sites and direct >= sites, (written, direct, sites)
