"""The point to restore to, as a DBA gives it: latest, a backup set, a time (date, time of day
and zone, resolved to UTC: a time the zone skipped is refused, a repeated one noticed), an
LSN, a transaction id or a named restore point."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import Any

from django import forms

from restores.models import Backup
from restores.platforms.targets import InvalidRestoreOptions, RestoreTarget

TIME_NEEDS_ALL = "A time target needs a date, a time of day and a time zone."


TIME_DOES_NOT_EXIST = (
    "{clock} does not exist on {date} in {zone} (the clocks moved forward then). "
    "Pick another time."
)


TIME_OUT_OF_RANGE = "{date} {clock} in {zone} is outside the dates the console can handle."


TIME_AMBIGUOUS = (
    "{clock} happened twice on {date} in {zone} (the clocks moved back). The earlier one is "
    "used: {utc}. Pick UTC to be exact."
)


KIND_CHOICES = [
    ("latest", "Latest: replay all archived WAL"),
    ("time", "A point in time"),
    ("set", "The end of a backup set (--set)"),
    ("immediate", "Immediate: stop as soon as a backup set is consistent"),
    ("lsn", "An LSN"),
    ("xid", "A transaction id"),
    ("name", "A named restore point"),
]


@cache
def zone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return [("UTC", "UTC"), *[(z, z) for z in zones if z != "UTC"]]


class PointForm(forms.Form):
    kind = forms.ChoiceField(choices=KIND_CHOICES, widget=forms.RadioSelect, initial="latest",
                             label="Restore to")
    label = forms.ChoiceField(required=False, label="Backup set")
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    clock = forms.TimeField(required=False, label="Time",
                            widget=forms.TimeInput(attrs={"type": "time", "step": "0.001"}))
    zone = forms.ChoiceField(required=False, initial="UTC", label="Time zone")
    exclusive = forms.BooleanField(required=False,
                                   label="Stop just before the target (exclusive)")
    lsn = forms.CharField(required=False, max_length=17, label="LSN",
                          widget=forms.TextInput(attrs={"placeholder": "0/3000060"}))
    xid = forms.IntegerField(required=False, min_value=1, label="Transaction id")
    name = forms.CharField(required=False, max_length=63, label="Restore point name")

    def __init__(self, *args: Any, backups: list[Backup], typed_label: bool = False,
                 **kwargs: Any) -> None:
        """`typed_label`: the repo's backups are unknown (a cloud repo): the set is typed."""
        super().__init__(*args, **kwargs)
        if typed_label:
            self.fields["label"] = forms.CharField(
                required=False, max_length=40, label="Backup set label",
                widget=forms.TextInput(attrs={"placeholder": "20261124-093012F"}),
            )
        else:
            label = self.fields["label"]
            assert isinstance(label, forms.ChoiceField)
            label.choices = [("", "pgBackRest picks the newest that fits")] + [
                (b.label, f"{b.label} ({b.type}, ended {b.stopped_at:%Y-%m-%d %H:%M:%S} UTC)")
                for b in backups
            ]
            label.error_messages["invalid_choice"] = "Pick a backup set of this repo."
        zone = self.fields["zone"]
        assert isinstance(zone, forms.ChoiceField)
        zone.choices = zone_choices()
        zone.error_messages["invalid_choice"] = "Pick a time zone from the list."
        self.target: RestoreTarget | None = None
        self.notice = ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        kind = data.get("kind", "latest")
        values: dict[str, Any] = {"kind": kind, "exclusive": bool(data.get("exclusive"))
                                  and kind in ("time", "lsn", "xid")}
        if kind in ("set", "immediate", "time", "lsn") and data.get("label"):
            values["label"] = data["label"]
        if kind == "set" and not data.get("label"):
            self.add_error("label", "Pick the backup set to restore.")
            return data
        if values.get("label") is not None:
            try:
                RestoreTarget(label=values["label"])
            except InvalidRestoreOptions as exc:
                self.add_error("label", exc.message)
                return data
        if kind == "time":
            values["time"] = self._instant(data)
        elif kind in ("lsn", "xid", "name"):
            values[kind] = data.get(kind) or None
            if values[kind] is None:
                self.add_error(kind, "This target needs a value.")
        if self.errors:
            return data
        try:
            self.target = RestoreTarget(**values)
        except InvalidRestoreOptions as exc:
            field = kind if kind in ("time", "lsn", "xid", "name") else "kind"
            self.add_error("clock" if field == "time" else field, exc.message)
        return data

    def _instant(self, data: dict[str, Any]) -> dt.datetime | None:
        date, clock, zone = data.get("date"), data.get("clock"), data.get("zone") or ""
        if not (date and clock and zone):
            self.add_error("clock", TIME_NEEDS_ALL)
            return None
        return resolve_instant(date, clock, zone, form=self)

    def display(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "date": d["date"].isoformat() if d.get("date") else "",
            # A time input takes at most milliseconds: store what it can show again.
            "clock": d["clock"].isoformat(
                timespec="milliseconds" if d["clock"].microsecond else "seconds"
            ) if d.get("clock") else "",
            "zone": d.get("zone") or "UTC",
        }


def resolve_instant(date: dt.date, clock: dt.time, zone: str,
                    form: PointForm | None = None) -> dt.datetime | None:
    """A wall-clock time in a zone as an aware UTC instant; a time the zone skipped is an
    error, a time it repeated resolves to the earlier instant (with a notice)."""
    tz = zoneinfo.ZoneInfo(zone)
    local = dt.datetime.combine(date, clock).replace(tzinfo=tz)
    try:  # year 1 or 9999 shifted by the zone's offset leaves datetime's range
        instant = local.astimezone(dt.UTC)
        back = instant.astimezone(tz).replace(tzinfo=None)
        later = local.replace(fold=1).astimezone(dt.UTC)
    except OverflowError:
        if form is not None:
            form.add_error("clock", TIME_OUT_OF_RANGE.format(date=date, clock=clock, zone=zone))
        return None
    if back != local.replace(tzinfo=None):
        if form is not None:
            form.add_error("clock", TIME_DOES_NOT_EXIST.format(clock=clock, date=date, zone=zone))
        return None
    if later != instant and form is not None:
        form.notice = TIME_AMBIGUOUS.format(clock=clock, date=date, zone=zone,
                                            utc=f"{instant:%Y-%m-%d %H:%M:%S} UTC")
    return instant
