import sys

from shazamlet.cli import main

sys.exit(main())
