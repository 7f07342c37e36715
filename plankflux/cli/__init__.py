"""plankflux's command line: :mod:`plankflux.cli.main` (``plankflux VERB``) and the Hydra
verbs in :mod:`plankflux.cli.hydra_tasks`.

Imported before torch by every entry point, so it can set how long torch's OpenMP
threads spin before they sleep. By default (300,000 spins) a waiting thread keeps its
core busy, and when the CPU is shared (a second run, a test suite, DDP ranks on a
2-core machine) every parallel operation waits for threads that are not scheduled:
measured on 2 cores next to one other busy process, EfficientNet-Lite0 training fell
from about 500 to 47 img/s. 3,000 spins gave 103 img/s there and no measurable loss
on an idle machine (about 510 img/s either way); ``OMP_WAIT_POLICY=PASSIVE`` gave 251
shared but halved the idle speed, so it is left to the user (README, the demo's
run-time note). A value the user set wins.
"""

import os

os.environ.setdefault("GOMP_SPINCOUNT", "3000")
