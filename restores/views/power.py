"""Shut down and start, with the cluster's name typed and what stops said."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from restores.forms.confirm import PowerForm
from restores.models import Cluster
from restores.selectors.standbys import standbys_of
from restores.services import power, promotion
from restores.views.common import Action, cluster_action, posted


@cluster_action()
def cluster_power(request: HttpRequest, cluster: Cluster, action: str) -> Action:
    """Shut down or start: the page says what stops, or which promoted cluster a start
    would make a second primary beside."""
    if action not in ("shutdown", "start"):
        raise Http404("no such action")
    shutdown = action == "shutdown"
    return Action(
        PowerForm(posted(request)),
        lambda d: power.power_request(
            cluster=cluster, shutdown=shutdown, user=request.user, confirm=d["confirm"],
            acknowledge_split_brain=d["acknowledge"],
        ),
        {"followers": standbys_of(cluster) if shutdown else [],
         "promoted": [] if shutdown else promotion.promoted_successors(cluster)},
    )
