"""``python -m flows NAME [ARGS...]``: run one flow from the command line, for example

    python -m flows train --model alice/model/cls/net --dataset alice/dataset/img/digits:v1 \\
        --repo https://example.org/code.git --param epochs=3
    python -m flows --help              # the flows
    python -m flows evaluate --help     # one flow's arguments

``python -m flows.train ...`` (and so on) does the same.
"""

import sys

from flows.cli import dispatch

if __name__ == "__main__":
    raise SystemExit(dispatch(sys.argv[1:]))
