from django.urls import path

from restores import audit_views, drill_views, views, wizard_views

app_name = "restores"

_cluster = "clusters/<str:platform>/<str:namespace>/<str:name>/"

urlpatterns = [
    path("", views.fleet, name="fleet"),
    path(_cluster, views.cluster_detail, name="cluster"),
    path(_cluster + "backup/", views.backup_create, name="backup_create"),
    path(_cluster + "restore/", views.cluster_restore, name="cluster_restore"),
    path(_cluster + "standby/", views.cluster_standby, name="cluster_standby"),
    path(_cluster + "promote/", views.cluster_promote, name="cluster_promote"),
    path(_cluster + "drill/", drill_views.drill_create, name="drill_create"),
    path(_cluster + "<str:action>/", views.cluster_power, name="cluster_power"),
    path("operations/<uuid:operation_id>/", views.operation_detail, name="operation"),
    path("operations/<uuid:operation_id>/approve/", views.operation_approve,
         name="operation_approve"),
    path("operations/<uuid:operation_id>/reject/", views.operation_reject,
         name="operation_reject"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit.csv", audit_views.audit_csv, name="audit_csv"),
    path("drills/", drill_views.drill_list, name="drills"),
    path("drills.csv", drill_views.drill_csv, name="drills_csv"),
    path("clone/", wizard_views.clone_start, name="clone_start"),
    path("clone/<uuid:draft_id>/submit/", wizard_views.clone_submit, name="clone_submit"),
    path("clone/<uuid:draft_id>/<str:step>/", wizard_views.clone_step, name="clone_step"),
]
