"""What an in-place restore covers beyond its point."""

from __future__ import annotations

from django import forms


class InPlaceOptionsForm(forms.Form):
    """What an in-place restore covers beyond its point: some databases only (from the set's
    own list), and whether the current state is backed up first."""

    db_include = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        label="Restore only these databases (none ticked: the whole cluster)",
    )
    safety_backup = forms.BooleanField(
        required=False, initial=True,
        label="First take a backup of the current state, so this restore can be undone",
    )

    def __init__(self, *args: object, databases: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["db_include"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(n, n) for n in databases]
        field.error_messages["invalid_choice"] = (
            "%(value)s is not a database of the newest backup set; choose from the list."
        )
