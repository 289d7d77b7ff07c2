"""A rejection under the two-person rule, with its reason."""

from __future__ import annotations

from django import forms


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=500, label="Why it is rejected",
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))
