"""Test-only: when TOMCAT_CD_TEST_SLOW_PROGRAM names a file, the Pulumi program (and only it)
creates that file and then sleeps, so a test can interrupt an update at a known point. With
TOMCAT_CD_TEST_SLOW_IGNORES_SIGINT set it sleeps through the SIGINT Pulumi stops it with, as a
program in the middle of work would take a while to stop."""

import os
import signal
import sys
import time

_marker = os.environ.get("TOMCAT_CD_TEST_SLOW_PROGRAM")
if _marker and any("pulumi-language-python-exec" in arg for arg in sys.argv):
    if os.environ.get("TOMCAT_CD_TEST_SLOW_IGNORES_SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    open(_marker, "w").close()
    time.sleep(float(os.environ.get("TOMCAT_CD_TEST_SLOW_SECONDS", "20")))
