"""Suite-wide settings: one torch thread per test process.

The suite runs under pytest-xdist with one worker per core; letting every worker also
spawn a thread per core oversubscribes the machine and makes small models slower.
"""

import torch

torch.set_num_threads(1)
