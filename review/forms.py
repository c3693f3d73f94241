"""Forms of the review screens: feedback on a reply, queue filters, item decisions."""

from __future__ import annotations

from django import forms

from review.access import reviewers
from review.feedback import COMMENT_MAX_CHARS, NOTE_MAX_CHARS
from review.models import Flag, Rating, ReviewItem


class RatingForm(forms.Form):
    value = forms.ChoiceField(choices=Rating.Value.choices)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX_CHARS)


class FlagForm(forms.Form):
    category = forms.ChoiceField(choices=Flag.Category.choices)
    note = forms.CharField(required=False, max_length=NOTE_MAX_CHARS, widget=forms.Textarea)


class CloseForm(forms.Form):
    note = forms.CharField(max_length=NOTE_MAX_CHARS, widget=forms.Textarea)


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Nobody", label="Assign to"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = reviewers()


STATE_CHOICES = [
    ("active", "Open or in review"),
    *ReviewItem.State.choices,
    ("all", "Any state"),
]
ASSIGNEE_CHOICES = [("", "Anyone"), ("me", "Me"), ("nobody", "Nobody")]


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False)
    category = forms.ChoiceField(
        choices=[("", "Any category"), *Flag.Category.choices], required=False
    )
    model = forms.ChoiceField(choices=[("", "Any model")], required=False)
    assignee = forms.ChoiceField(choices=ASSIGNEE_CHOICES, required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, models: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "Any model"), *((m, m) for m in models)]

    def apply(self, items, *, user):
        """The queue narrowed by the valid filters (an invalid one is ignored)."""
        data = {}
        if self.is_bound:
            self.is_valid()
            data = self.cleaned_data  # the fields that passed
        state = data.get("state") or "active"
        if state == "active":
            items = items.active()
        elif state != "all":
            items = items.in_state(state)
        if data.get("category"):
            items = items.with_category(data["category"])
        if data.get("model"):
            items = items.for_model(data["model"])
        if data.get("assignee") == "me":
            items = items.filter(assignee=user)
        elif data.get("assignee") == "nobody":
            items = items.filter(assignee__isnull=True)
        return items.created_between(data.get("since"), data.get("until"))
