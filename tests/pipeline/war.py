"""A small real web application, built by the tests: JSP pages Tomcat compiles itself.

- `/`            prints `token=<token>` (a token per version, so a test knows what runs)
- `/health.jsp`  the readiness path: `ok`
- `/fail.jsp`    throws: Tomcat logs a SEVERE record with the stack trace (tomcatlogs)
- `/devlog.jsp`  appends an ERROR line and a stack trace to `/data/logs/app.log` (devlogs)

A `broken` war's `/` throws as `/fail.jsp` does (its health path still answers): the release a
health gate is there to catch.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tomcat_cd.core import conventions

WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="4.0">
  <display-name>tomcat-cd pipeline test</display-name>
</web-app>
"""


def pages(token: str, broken: bool = False) -> dict[str, str]:
    app_log = f"{conventions.LOG_KINDS['devlogs']}/app.log"
    fail = f'<% if (true) throw new IllegalStateException("boom in {token}"); %>\n'
    return {
        "index.jsp": fail if broken else f'<%@ page contentType="text/plain" %>token={token}\n',
        "health.jsp": '<%@ page contentType="text/plain" %>ok\n',
        "fail.jsp": fail,
        "devlog.jsp": (
            '<%@ page import="java.io.*,java.time.*,java.time.format.*" contentType="text/plain" %><%\n'
            f'  try (PrintWriter log = new PrintWriter(new FileWriter("{app_log}", true))) {{\n'
            '    String now = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss"));\n'
            f'    log.println(now + " ERROR devlog from {token}");\n'
            f'    new RuntimeException("devlog trace of {token}").printStackTrace(log);\n'
            '  }\n'
            '%>logged\n'),
    }


def build_war(path: Path, token: str, broken: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as war:
        war.writestr("WEB-INF/web.xml", WEB_XML)
        for name, text in pages(token, broken).items():
            war.writestr(name, text)
    return path
