"""``python -m cmet.data.vendor [RELEASE_DIR]``: rewrite the vendored vectors from the release folder."""

import sys
from pathlib import Path

from cmet.data.vendor import write_vendored

src = sys.argv[1] if len(sys.argv) > 1 else str(Path.cwd().parent / "shared" / "data" / "cmet_release")
for p in write_vendored(src):
    print(p, p.stat().st_size, "bytes")
