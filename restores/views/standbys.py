"""Creating a standby of a cluster."""

from __future__ import annotations

from django.http import HttpRequest

from restores.forms.standbys import StandbyForm
from restores.models import Cluster
from restores.services import standbys
from restores.views.common import Action, cluster_action, posted


@cluster_action("standby")
def cluster_standby(request: HttpRequest, cluster: Cluster) -> Action:
    return Action(
        StandbyForm(posted(request), cluster=cluster),
        lambda d: standbys.standby_request(
            source=cluster, name=d["name"], namespace=d.get("namespace") or cluster.namespace,
            repo_name=d["repo"], user=request.user),
    )
