"""The Pulumi program: `__main__.py` calls `run`, which registers the components."""

from tomcat_cd.program.main import run

__all__ = ["run"]
