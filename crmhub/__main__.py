import sys

from crmhub.cli import main

sys.exit(main())
