"""The severity model's library: features, training, evaluation, scoring, the registry.

scikit-learn's OpenMP runtime (libgomp) keeps idle threads spinning by default. With two
processes on a 2-core machine (a run from the UI beside `make run`, the API beside
training, two test processes) each gradient-boosting fit on the sample took 33 s instead of
1.5 s; with passive waiting, 2.6 s. The policy must be set before the runtime loads: here,
in the first module of ours that every entry point imports. ``OMP_WAIT_POLICY`` set by the
user wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
