"""``python -m qdgs.publish ...`` (see :mod:`qdgs.publish.command`)."""

import sys

from qdgs.publish.command import main

sys.exit(main())
