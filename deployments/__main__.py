"""python -m deployments: register the work pools and deployments on $PREFECT_API_URL; the last
line of output is the list of deployments as JSON."""

import contextlib
import json
import sys

from deployments import deploy_all

if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):  # Prefect's own tables
        names = deploy_all()
    print(json.dumps(names))
