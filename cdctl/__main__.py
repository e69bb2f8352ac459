import sys

from cdctl.cli import main

sys.exit(main())
