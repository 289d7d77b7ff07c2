"""The admin: inventory rows to look at, grants to manage, and the history read-only.

Operations, their events and the audit log can be read here but never added, changed or
deleted: an operation changes only through its services and steps, and the audit log only by
appending. Changes to grants, to a user's groups and to the superuser flag are audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from restores.models import (
    AuditEntry,
    Backup,
    Cluster,
    Grant,
    Operation,
    OperationEvent,
    Repository,
)
from restores.services import access
from restores.services.grants import grant_changed, grant_deleted, user_changed, user_snapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "cluster", "status", "step", "requested_by", "approved_by",
                    "created_at")
    list_filter = ("kind", "status")
    inlines = [EventInline]


@admin.register(OperationEvent)
class OperationEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "operation", "step", "level", "message")
    list_filter = ("level",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "actor_name", "address", "action", "cluster_name", "result")
    list_filter = ("action",)
    search_fields = ("actor_name", "cluster_name", "operation_id")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("__str__", "role", "platform", "namespace", "created_at")
    list_filter = ("role", "platform")

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        before = Grant.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        grant_changed(grant=obj, before=before, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        grant_deleted(grant=obj, user=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for grant in queryset:
            grant_deleted(grant=grant, user=request.user)
        super().delete_queryset(request, queryset)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """Django's user admin; a change to who someone is in the console (groups, superuser,
    staff, active) is audited with its before and after."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = User.objects.filter(pk=obj.pk).first() if change else None
        obj._dr_before = user_snapshot(stored) if stored is not None else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Groups are saved here, after the user: compare once both are.
        super().save_related(request, form, formsets, change)
        access.forget(form.instance)
        user_changed(target=form.instance, before=getattr(form.instance, "_dr_before", None),
                     user=request.user)
