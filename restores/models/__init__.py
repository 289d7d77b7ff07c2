"""What the console knows: clusters, their repos and backups (inventory), the operations it
runs and their events (operations), clone drafts (drafts), drill plans, their runs and the
signed-off reports (drills), grants (access) and the audit log (audit). Models are the source
of truth the UI reads; operations change only through `transitions`, the audit log only
through `auditlog`.
"""

from restores.models.access import Grant
from restores.models.audit import AuditEntry
from restores.models.drafts import CloneDraft
from restores.models.drills import DrillPlan, DrillRun, ReportSignoff
from restores.models.inventory import Backup, Cluster, Repository
from restores.models.operations import Operation, OperationEvent

__all__ = ["AuditEntry", "Backup", "CloneDraft", "Cluster", "DrillPlan", "DrillRun", "Grant",
           "Operation", "OperationEvent", "ReportSignoff", "Repository"]
