"""Copied to the bundle root as ``runplz_boot.py`` and run there by path.

Layout: ``<bundle>/lib/runplz`` (this runplz), ``<bundle>/deps`` (attrs,
cattrs, ...). The shipped runplz goes first on sys.path; the deps go last, so
packages the job's own environment has win.
"""

import os
import sys

if sys.version_info < (3, 10):
    sys.stderr.write("runplz: the target needs python3 >= 3.10; found %s\n" % sys.version.split()[0])
    sys.exit(2)

_here = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
    del sys.path[0]
sys.path.insert(0, os.path.join(_here, "lib"))
sys.path.append(os.path.join(_here, "deps"))

if sys.argv[1:2] == ["agent"]:
    from runplz.runtime.agent import main  # noqa: E402

    sys.exit(main(sys.argv[2:]))

from runplz.runtime.entry import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
