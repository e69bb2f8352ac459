"""The engine driver: runs the Pulumi CLI for cdctl (deploy, delete, history, rollback, drift).

It builds on the core and never imports the program or the components: what a targeted
update needs of them (the URNs) comes from tomcat_cd.core.urns."""
