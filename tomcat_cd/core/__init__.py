"""The pure core: the domain model, conventions, settings, plans, builders and host scripts.

Nothing here imports Pulumi or runs a process: the program (tomcat_cd.program, components/)
and the engine driver (tomcat_cd.driver) build on it, never the other way round."""
