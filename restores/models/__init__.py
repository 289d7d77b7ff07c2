"""What the console knows: clusters, their repos and backups (inventory), the operations it
runs and their events (operations), clone drafts (drafts), grants (access) and the audit log
(audit). Models are the source of truth the UI reads; operations change only through
`transitions`, the audit log only through `auditlog`.
"""

from restores.models.access import Grant
from restores.models.audit import AuditEntry
from restores.models.drafts import CloneDraft
from restores.models.inventory import Backup, Cluster, Repository
from restores.models.operations import Operation, OperationEvent

__all__ = ["AuditEntry", "Backup", "CloneDraft", "Cluster", "Grant", "Operation",
           "OperationEvent", "Repository"]
