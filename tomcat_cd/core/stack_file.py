"""The schema of a site stack's `tomcat-cd:` config, and of its versions and builds entries,
as pydantic models.

Values arrive as Pulumi hands them over: the program gets JSON text for structured values and
"true" for a boolean, a stack file that Pulumi rewrote quotes every scalar. `as_given` reads
both the way Pulumi itself does before the strict models see them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Mapping

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, model_validator

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problems
from tomcat_cd.core.events import ACTIONS, FORMATS, NOTIFY_DEFAULT
from tomcat_cd.core.fields import type_name
from tomcat_cd.core.schema import Between, Matches, OneOf, Strict, TextBool, TextInt, json_text_decoded, own_error, problems_of

VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GIT_ID = re.compile(r"[0-9a-f]{7,40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# A Jenkins build number or tag, and who deployed: both go into update messages and history.
BUILD_ID = re.compile(r"[A-Za-z0-9._#-]{0,64}")
BY = re.compile(r"[A-Za-z0-9._@+-]{0,64}")
# A pushed image as the registry answered: `<host>/<repo>:<tag>@sha256:<hex>`.
PUSHED_IMAGE = re.compile(r"[A-Za-z0-9.:-]+/[a-z0-9._/-]+:[A-Za-z0-9._-]{1,128}@sha256:[0-9a-f]{64}")
BUILDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BUILDER_ENDPOINT = re.compile(r"(tcp|unix)://[^\s]{1,240}")
# How many pushed images of a domain the record keeps (newest first): what rollback can reach
# without a rebuild.
IMAGES_KEPT = 10
TARGETS = ("render", "cluster")
# Pulumi's own default runs a few operations at once, each Deployment's await (its rollout and
# minReadySeconds) holding one: a first import of 200 sites queued for 18 minutes (README).
PARALLEL_DEFAULT = 128
CHECKPOINTS = ("auto", "each-step", "at-end")
# `pulumi config set --path` stores 1.10 as a number unless told otherwise.
STRING_HINT = " (set it with pulumi config set --path --type string)"
VERSION_WHAT = "a version such as v1.2.0 (letters, digits, . _ -)"


def _version(value: Any) -> Any:
    if not isinstance(value, str):
        raise own_error(f"must be {VERSION_WHAT}, got {type_name(value)}{STRING_HINT}")
    return value


def _build_number(value: Any) -> Any:
    return str(value) if type(value) is int else value  # a Jenkins build number


Version = Annotated[str, BeforeValidator(_version), Matches(VERSION, VERSION_WHAT)]


class BuildRecord(Strict):
    """What built a domain's deployed version (written by `cdctl deploy`)."""

    build_id: Annotated[str, BeforeValidator(_build_number),
                        Matches(BUILD_ID, "a build number or id (letters, digits, ._#-; 64 at most)")] = ""
    git_id: Annotated[str, Matches(GIT_ID, "a hex git id")]
    by: Annotated[str, Matches(BY, "a user id (letters, digits, ._@+-; 64 at most)")] = ""
    war_sha256: Annotated[str, Matches(SHA256, "the war's sha256 in hex")] = ""
    """The deployed war's sha256: what `cdctl promote` proves it carries over."""


# A pin's key: a domain, or the whole environment (a freeze).
FREEZE_KEY = "*"
PIN_REASON = re.compile(r"[^\x00-\x1f\x7f]{1,500}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
URL = re.compile(r"https?://[^\s/]+(/[^\s]*)?")


class PinRecord(Strict):
    """A domain held at its version (or, under `*`, a frozen environment): written by
    `cdctl pin`/`freeze` and by a gate's automatic rollback."""

    by: Annotated[str, Matches(BY, "a user id (letters, digits, ._@+-; 64 at most)")]
    at: Annotated[str, Matches(TIME, "a UTC time such as 2026-12-02T10:00:00Z")]
    reason: Annotated[str, Matches(PIN_REASON, "a reason of one line, 500 characters at most")]
    version: Version | None = None
    failed_version: Version | None = None
    """The version whose health gate failed (a gate's rollback)."""
    failed_update: Annotated[TextInt, Between(1, 10**9)] | None = None


PushedImage = Annotated[str, Matches(PUSHED_IMAGE, "an image pushed by digest (<host>/<repo>:<tag>@sha256:<hex>)")]
VERSION_ENTRY: TypeAdapter[str] = TypeAdapter(Version)
IMAGES_ENTRY: TypeAdapter[list[str]] = TypeAdapter(list[PushedImage])
BUILD_ENTRY: TypeAdapter[BuildRecord] = TypeAdapter(BuildRecord)
PIN_ENTRY: TypeAdapter[PinRecord] = TypeAdapter(PinRecord)


class StackFile(Strict):
    """The `tomcat-cd:` keys of `Pulumi.<stack>.yaml` (without the prefix)."""

    environment: str | None = Field(None, description="master or develop (default: the stack's name)")
    harbor_host: Annotated[str, Matches(HOST, "a host name such as harbor.gyyx.cn")] = Field(
        description="Harbor registry host (required)")
    harbor_username: str | None = Field(None, description="robot account that pulls and pushes")
    # Checked by settings.check_secrets, whose message names the command that sets it.
    harbor_password: Any = Field(None, description="the robot's password, a Pulumi secret")
    base_image: str = "tomcat:9.0-jdk8"
    war_root: str = conventions.WAR_ROOT_DEFAULT
    domains_dir: str = "domains"
    build_images: TextBool | None = None
    builder: Annotated[str, Matches(BUILDER, "a buildx builder name")] | None = Field(
        None, description="buildx builder that builds the images (default: buildx's current one)")
    builder_endpoint: Annotated[str, Matches(BUILDER_ENDPOINT, "a BuildKit endpoint such as tcp://buildkit:1234 "
                                                               "or unix:///run/buildkit/buildkitd.sock")] | None = Field(
        None, description="BuildKit daemon the builder reaches (the program makes a remote buildx builder for it)")
    protect_namespace: TextBool | None = None
    parallel: Annotated[TextInt, Between(1, 1000)] = Field(
        PARALLEL_DEFAULT, description="resource operations a whole-stack update runs at once (pulumi --parallel)")
    checkpoints: Annotated[str, OneOf(CHECKPOINTS)] = Field(
        "auto", description="when a whole-stack update saves the state: each-step, at-end, or auto (at-end for a "
                            "first import into an empty stack, else each-step)")
    versions: dict[str, Any] = Field(default_factory=dict, description="deployed version per domain")
    builds: dict[str, Any] = Field(default_factory=dict, description="what built each domain's version")
    images: dict[str, Any] = Field(default_factory=dict, description="each domain's pushed images, newest first")
    pins: dict[str, Any] = Field(default_factory=dict, description="domains held at their version, `*`: a freeze "
                                                                   "(cdctl pin, cdctl freeze)")
    health_gate: TextBool = Field(True, description="run each domain's health gate after a cluster deploy "
                                                    "(default true; the domain file's gate: tunes it)")
    elasticsearch_url: Annotated[str, Matches(URL, "an http(s) URL such as http://es.gyyx.cn:9200")] | None = Field(
        None, description="Elasticsearch the health gate counts the new pods' errors in")
    elasticsearch_username: Annotated[str, Matches(BY, "a user name")] | None = Field(
        None, description="a user that may read the sites' indices (the gate)")
    elasticsearch_password: Any = Field(None, description="its password, a Pulumi secret")
    node_address: Annotated[str, Matches(HOST, "a host name or IP address")] | None = Field(
        None, description="where the gate's health check reaches the NodePorts (default: the first node's address)")
    markers: TextBool = Field(True, description="write a deploy marker to Elasticsearch (tomcat-cd-events-yyyy.MM) "
                                                "for every deploy, rollback, promote, delete and gate verdict")
    notify_format: Annotated[str, OneOf(FORMATS)] = Field(
        "generic", description="the webhook's format: generic, dingtalk, wecom or slack")
    notify_url: Any = Field(None, description="the webhook's URL, a Pulumi secret (or $TOMCAT_CD_NOTIFY_URL)")
    notify_secret: Any = Field(None, description="DingTalk's signing secret, a Pulumi secret "
                                                 "(or $TOMCAT_CD_NOTIFY_SECRET)")
    notify_on: list[Annotated[str, OneOf((*ACTIONS, "gate-failed"))]] = Field(
        list(NOTIFY_DEFAULT), description="what notifies: deploy, rollback, promote, delete, gate, gate-failed")
    target: Annotated[str, OneOf(TARGETS)] | None = None
    kubeconfig: str | None = None
    render_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def as_given(cls, values: Any) -> Any:
        return json_text_decoded(values, ("versions", "builds", "images", "pins", "notifyOn"))


def read_entries(versions: Mapping[Any, Any], builds: Mapping[Any, Any], problems: Problems,
                 prefix: str) -> tuple[dict[str, str], dict[str, BuildRecord]]:
    """Each valid entry of the versions and builds maps; each invalid one is a problem."""
    good_versions: dict[str, str] = {}
    for domain, version in versions.items():
        where = f'{prefix}versions["{domain}"]'
        if not isinstance(domain, str) or not conventions.is_valid_domain(domain):
            problems.add(where, "is not a domain such as test.gyyx.cn")
            continue
        try:
            good_versions[domain] = VERSION_ENTRY.validate_python(version)
        except ValidationError as error:
            problems_of(error, StackFile, problems, where)
    good_builds: dict[str, BuildRecord] = {}
    for domain, record in builds.items():
        where = f'{prefix}builds["{domain}"]'
        if not isinstance(record, Mapping):
            problems.add(where, "must be a mapping of buildId, gitId, by, warSha256")
            continue
        try:
            good_builds[str(domain)] = BUILD_ENTRY.validate_python(record)
        except ValidationError as error:
            problems_of(error, BuildRecord, problems, where)
    return good_versions, good_builds


def read_images(images: Mapping[Any, Any], problems: Problems, prefix: str) -> dict[str, tuple[str, ...]]:
    """Each valid entry of the images map (at most IMAGES_KEPT per domain); each invalid one is a problem."""
    good: dict[str, tuple[str, ...]] = {}
    for domain, refs in images.items():
        where = f'{prefix}images["{domain}"]'
        try:
            good[str(domain)] = tuple(IMAGES_ENTRY.validate_python(refs))[:IMAGES_KEPT]
        except ValidationError as error:
            problems_of(error, StackFile, problems, where)
    return good


def read_pins(pins: Mapping[Any, Any], problems: Problems, prefix: str) -> dict[str, PinRecord]:
    """Each valid entry of the pins map; each invalid one is a problem."""
    good: dict[str, PinRecord] = {}
    for key, record in pins.items():
        where = f'{prefix}pins["{key}"]'
        if key != FREEZE_KEY and not (isinstance(key, str) and conventions.is_valid_domain(key)):
            problems.add(where, f"is not a domain such as test.gyyx.cn, nor {FREEZE_KEY} (the whole environment)")
            continue
        try:
            good[key] = PIN_ENTRY.validate_python(record)
        except ValidationError as error:
            problems_of(error, PinRecord, problems, where)
    return good
