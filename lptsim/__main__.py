import sys

from lptsim.cli import main

sys.exit(main())
