"""Imports every area's models so that SQLAlchemy and Alembic see all tables."""

from portal.accounts.models import (  # noqa: F401
    Account,
    Invitation,
    LoginSession,
    Membership,
    User,
)
from portal.api.models import ApiKey  # noqa: F401
from portal.backups.models import (  # noqa: F401
    Backup,
    BackupPendingDeletion,
    ImportUndo,
)
from portal.contacts.models import Activity, Contact, CustomField, Group, Subscription, Tag  # noqa: F401
from portal.core.audit import AuditEvent  # noqa: F401
from portal.core.models import StoredFileChunk, StoredFileRecord  # noqa: F401
from portal.core.privacy import Suppression, SuppressionKey  # noqa: F401
from portal.database import never_reuse_ids
from portal.extensions import db
from portal.imports.models import ImportJob, ImportRow, ImportRowProblem  # noqa: F401
from portal.integrations.models import (  # noqa: F401
    ExportRun,
    OutgoingEvent,
    ProviderLink,
    SyncRun,
    TagMapping,
)
from portal.jobs.models import Heartbeat  # noqa: F401
from portal.lifecycle.models import LifecycleJob, SignupRequest  # noqa: F401

never_reuse_ids(db.metadata)
