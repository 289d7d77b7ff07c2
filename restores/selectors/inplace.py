"""What an in-place restore's review says about the downtime: the last one's measured figure,
or an estimate from the newest backup's size."""

from __future__ import annotations

import dataclasses
import datetime as dt

from restores.models import Backup, Cluster, Operation


@dataclasses.dataclass(frozen=True)
class DowntimeEstimate:
    seconds: float
    basis: str  # how it was reached, in words

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)


# A conservative restore rate for a first estimate, before this cluster has a measured one.
ASSUMED_RESTORE_BYTES_PER_SECOND = 50 * 1024 * 1024


ASSUMED_FIXED_SECONDS = 20.0


def in_place_estimate(cluster: Cluster, newest: Backup | None) -> DowntimeEstimate | None:
    """How long an in-place restore keeps `cluster` down: its last one's measured downtime,
    or the newest backup's size at a conservative restore rate."""
    last = (cluster.operations.filter(kind__in=(Operation.Kind.RESTORE_IN_PLACE,
                                                Operation.Kind.RESTORE_DATABASE),
                                      status=Operation.Status.SUCCEEDED,
                                      result__has_key="downtime_seconds")
            .order_by("-finished_at").values_list("result", "finished_at").first())
    if last:
        try:
            seconds = float(last[0]["downtime_seconds"])
        except (TypeError, ValueError):
            seconds = 0.0
        if seconds > 0:
            when = f"{last[1]:%Y-%m-%d %H:%M} UTC"
            return DowntimeEstimate(seconds, f"the last in-place restore of {cluster.name} "
                                             f"({when}) kept it down that long")
    if newest is None:
        return None
    seconds = ASSUMED_FIXED_SECONDS + newest.database_size / ASSUMED_RESTORE_BYTES_PER_SECOND
    return DowntimeEstimate(seconds, "an estimate from the newest backup's size at 50 MiB/s; "
                                     "WAL replay to a later point adds to it")
