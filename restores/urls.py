from django.urls import path

from . import views

app_name = "restores"

_cluster = "clusters/<str:platform>/<str:namespace>/<str:name>/"

urlpatterns = [
    path("", views.fleet, name="fleet"),
    path(_cluster, views.cluster_detail, name="cluster"),
    path(_cluster + "backup/", views.backup_create, name="backup_create"),
    path("operations/<uuid:operation_id>/", views.operation_detail, name="operation"),
]
