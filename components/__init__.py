"""Thin Pulumi ComponentResources over the pure builders in `tomcat_cd`."""
