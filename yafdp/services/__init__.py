"""The shipped catalog's handlers (``data/``): one module per service, each a handful of plain handler functions.

A handler is ``handler(event, uow)``: ``event`` is the EventBridge envelope, ``uow`` a
:class:`~yafdp.runtime.unit_of_work.UnitOfWork` over the service's own state. Which handler serves which rule is
written in the catalog (``data/services/<service>.json``), so adding a service touches no other module here. A
catalog folder's own ``services/<service>.py`` comes first; these are found after it
(:mod:`yafdp.catalog.code`), so a copy of ``data/`` runs these handlers until it has its own.
"""
