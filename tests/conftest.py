import os

# Tests run on 2 cores next to each other's processes: keep torch and BLAS to one thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")
