"""``python -m orchestration.team up|down|status`` (make team-up, team-down, team-status)."""

import sys

from orchestration.team.launcher import main

sys.exit(main())
