"""Entry point for `pulumi up`; the program itself lives in tomcat_cd.program."""

from tomcat_cd.program import run

run()
