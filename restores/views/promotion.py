"""Promoting a standby."""

from __future__ import annotations

from django.http import HttpRequest

from restores.forms.confirm import PromoteForm
from restores.models import Cluster
from restores.services import promotion
from restores.views.common import Action, cluster_action, posted


@cluster_action("promote")
def cluster_promote(request: HttpRequest, cluster: Cluster) -> Action:
    return Action(
        PromoteForm(posted(request)),
        lambda d: promotion.promote_request(cluster=cluster, confirm=d["confirm"],
                                            user=request.user, primary_gone=d["primary_gone"]),
        {"offer_override": promotion.promotion_override_offered(cluster),
         "primary": promotion.standby_primary(cluster)},
    )
