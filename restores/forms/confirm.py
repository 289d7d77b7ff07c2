"""Typed confirmations (the cluster's name, exactly as typed) and the acknowledgements some
destructive actions ask for."""

from __future__ import annotations

from django import forms


class ConfirmForm(forms.Form):
    """A typed confirmation: the cluster's name, exactly as typed (not stripped: "hippo "
    is not "hippo"); the service compares it."""

    confirm = forms.CharField(max_length=63, required=False, strip=False,
                              label="Type the cluster's name")


class PowerForm(ConfirmForm):
    """Shut down or start: the typed name, and for a former primary whose standby was
    promoted, the recorded acknowledgement that starting it makes a second primary."""

    acknowledge = forms.BooleanField(
        required=False,
        label="I understand this starts a second writable primary; applications stay away "
              "from it",
    )


class PromoteForm(ConfirmForm):
    primary_gone = forms.BooleanField(
        required=False,
        label="The old primary is down for good (a disaster, not a switchover)",
    )
