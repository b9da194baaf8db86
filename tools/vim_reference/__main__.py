"""/usr/bin/python3 tools/vim_reference: run the reference's self-check and print the measured differences."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # tools/, the package's parent
from vim_reference import self_check  # noqa: E402

print('self-check (max rel diff, float64):', self_check())
