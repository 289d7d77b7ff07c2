from django.urls import path

from restores.views import (
    audit,
    backups,
    clones,
    clusters,
    drill_plans,
    drills,
    fleet,
    inplace,
    operations,
    power,
    promotion,
    reports,
    standbys,
)

app_name = "restores"

_cluster = "clusters/<str:platform>/<str:namespace>/<str:name>/"

urlpatterns = [
    path("", fleet.fleet, name="fleet"),
    path(_cluster, clusters.cluster_detail, name="cluster"),
    path(_cluster + "backup/", backups.backup_create, name="backup_create"),
    path(_cluster + "restore/", inplace.cluster_restore, name="cluster_restore"),
    path(_cluster + "standby/", standbys.cluster_standby, name="cluster_standby"),
    path(_cluster + "promote/", promotion.cluster_promote, name="cluster_promote"),
    path(_cluster + "drill/", drills.drill_create, name="drill_create"),
    path(_cluster + "<str:action>/", power.cluster_power, name="cluster_power"),
    path("operations/<uuid:operation_id>/", operations.operation_detail, name="operation"),
    path("operations/<uuid:operation_id>/approve/", operations.operation_approve,
         name="operation_approve"),
    path("operations/<uuid:operation_id>/reject/", operations.operation_reject,
         name="operation_reject"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit.csv", audit.audit_csv, name="audit_csv"),
    path("drills/", drills.drill_list, name="drills"),
    path("drills.csv", drills.drill_csv, name="drills_csv"),
    # the audit report
    path("drills/report/", reports.drill_report, name="drill_report"),
    path("drills/report.pdf", reports.drill_report_pdf, name="drill_report_pdf"),
    path("drills/report.csv", reports.drill_report_csv, name="drill_report_csv"),
    path("drills/report.json", reports.drill_report_json, name="drill_report_json"),
    path("drills/report/prepare/", reports.drill_report_prepare, name="drill_report_prepare"),
    path("drills/report/signoffs/<int:signoff_id>/sign/", reports.drill_report_sign,
         name="drill_report_sign"),
    # drill plans and runs
    path("drills/plans/new/", drill_plans.drill_plan_new, name="drill_plan_new"),
    path("drills/plans/<int:plan_id>/", drill_plans.drill_plan, name="drill_plan"),
    path("drills/runs/<int:run_id>/", drill_plans.drill_run, name="drill_run"),
    path("drills/runs/<int:run_id>/remediation/", drill_plans.drill_run_remediation,
         name="drill_run_remediation"),
    path("clone/", clones.clone_start, name="clone_start"),
    path("clone/<uuid:draft_id>/submit/", clones.clone_submit, name="clone_submit"),
    path("clone/<uuid:draft_id>/<str:step>/", clones.clone_step, name="clone_step"),
]
