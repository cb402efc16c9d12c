"""The REST API, one router module per section; :func:`assethub.server.app.create_app` mounts
each under :data:`API`, the one place the ``/api/v1`` prefix is defined.

- :mod:`.identity`: health, whoami, users, groups, tokens
- :mod:`.audit`: the audit log
- :mod:`.folders`: folders and shares
- :mod:`.assets`: assets, versions (refs, history, merge, publish), objects, files, bundles,
  uploads, dataset import, search
- :mod:`.jobs`: runs, evaluations, lineage
- :mod:`.services`: model serving (``/services``)
- :mod:`.follows`: follows and the lakeFS hook
- :mod:`.algorithms`: the algorithm library and models' job settings

Each module's ``router(hub, principal)`` returns its ``APIRouter``; ``principal`` is the
application's authentication dependency (:func:`._common.authenticator`).
"""

API = "/api/v1"
