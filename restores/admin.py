from django.contrib import admin

from .models import Backup, Cluster, Operation, OperationEvent, Repository


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "namespace", "platform", "role", "pg_version", "present", "synced_at")
    list_filter = ("platform", "role")


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("cluster", "name", "kind", "earliest_recovery", "latest_recovery")


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("label", "repository", "type", "stopped_at", "database_size")
    list_filter = ("type",)


class EventInline(admin.TabularInline):
    model = OperationEvent
    extra = 0
    can_delete = False
    readonly_fields = ("at", "step", "level", "message", "command", "detail")


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "cluster", "status", "step", "created_at")
    list_filter = ("kind", "status")
    inlines = [EventInline]
    readonly_fields = ("version", "refs", "result")
