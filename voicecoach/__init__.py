"""voicecoach: an offline, hands-free voice coach for guided stretching."""

import os

# Our matrices are tiny (the echo filter's 17x17 fit); OpenBLAS's worker threads only spin
# between calls, and took a whole core from the 10 ms speaker loop (measured: 107 % -> 23 %).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
