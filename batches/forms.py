"""The upload form of the Batch jobs page."""

from __future__ import annotations

from django import forms
from django.conf import settings

from batches.models import BatchJob
from batches.uploads import MAX_TOKENS_CEILING, ParsedRow, UploadInvalid, parse_upload
from conversations.models import ChatModel

SYSTEM_PROMPT_MAX_CHARS = 20_000


class BatchJobForm(forms.Form):
    """A JSONL or CSV file of prompts, and how to send them."""

    file = forms.FileField(
        label="Prompts file (.jsonl or .csv)",
        help_text='JSONL: one {"prompt": "..."} or {"messages": [...]} per line, optional '
        '"custom_id", "system", "max_tokens", "temperature". CSV: a "prompt" column, optional '
        '"custom_id", "system", "max_tokens" columns.',
    )
    model = forms.ChoiceField(label="Model")
    system_prompt = forms.CharField(
        label="System prompt",
        required=False,
        max_length=SYSTEM_PROMPT_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    max_tokens = forms.IntegerField(
        label="Longest reply (tokens)", min_value=1, max_value=MAX_TOKENS_CEILING
    )
    mode = forms.ChoiceField(
        label="Send",
        choices=BatchJob.Mode.choices,
        initial=BatchJob.Mode.BATCH,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(m.model_id, m.label) for m in ChatModel.objects.enabled()]
        self.fields["model"].initial = settings.CLAUDE_MODEL
        self.fields["max_tokens"].initial = settings.CLAUDE_MAX_TOKENS

    def clean_file(self) -> tuple[str, list[ParsedRow]]:
        upload = self.cleaned_data["file"]
        limit = settings.BATCH_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {limit:,}."
            )
        name = (upload.name or "prompts")[:200]
        try:
            rows = parse_upload(name, upload.read(limit + 1))
        except UploadInvalid as exc:
            raise forms.ValidationError(exc.problems) from None
        return name, rows
