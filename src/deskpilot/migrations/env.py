"""Alembic environment. Migrations run through ``deskpilot.core.migrate`` on a connection the
caller provides (the owner's), never from a URL in a file."""

from __future__ import annotations

from alembic import context

import deskpilot.gateway.store.models as _gateway_models  # noqa: F401  (registers tables)
from deskpilot.core.models import Base
from deskpilot.metering import models as _metering_models  # noqa: F401  (registers tables)
from deskpilot.quotas import models as _quota_models  # noqa: F401
from deskpilot.rag import models as _rag_models  # noqa: F401
from deskpilot.tenancy import models as _tenancy_models  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
