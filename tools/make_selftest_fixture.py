"""Regenerate the selftest fixture shipped in runtime/data/selftest (needs the training side: torch, brevitas).

    python tools/make_selftest_fixture.py [FOLDER]

tests/test_selftest_fixture.py fails when the shipped copy differs from what this writes, so run
it (and commit the result) after changing the exporter, the models or the quantizer.
"""

import sys

from edge_snn.selftest_fixture import shipped_folder, write_fixture

if __name__ == "__main__":
    folder = write_fixture(sys.argv[1] if len(sys.argv) > 1 else shipped_folder())
    print(f"wrote {folder}")
