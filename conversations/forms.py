"""Forms of the chat page: the conversation's settings and its reference document."""

from __future__ import annotations

from django import forms
from django.conf import settings

from conversations.models import ChatModel, Conversation, Preset

PRESET_FIELDS = ("system_prompt", "model", "max_tokens")
DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".text", ".rst", ".csv")


class ConversationSettingsForm(forms.ModelForm):
    """Model (among those an admin enabled), preset, system prompt, reply length."""

    model = forms.ChoiceField(required=False, label="Model")
    preset = forms.ModelChoiceField(
        queryset=Preset.objects.filter(enabled=True), required=False, label="Preset"
    )
    max_tokens = forms.IntegerField(
        required=False, min_value=1, max_value=64_000, label="Longest reply (tokens)"
    )

    class Meta:
        model = Conversation
        fields = ("model", "preset", "system_prompt", "max_tokens")
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 4})}
        labels = {"system_prompt": "System prompt"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        enabled = list(ChatModel.objects.enabled())
        self.fields["model"].choices = [("", f"Default ({settings.CLAUDE_MODEL})")] + [
            (m.model_id, m.label) for m in enabled
        ]
        self.fields["system_prompt"].max_length = 20_000

    def save(self, commit: bool = True) -> Conversation:
        conversation = super().save(commit=False)
        preset = self.cleaned_data.get("preset")
        if preset is not None and "preset" in self.changed_data:
            # A newly picked preset fills in what the user did not set in the same change.
            chosen = {f: getattr(conversation, f) for f in PRESET_FIELDS if f in self.changed_data}
            conversation.apply_preset(preset)
            for name, value in chosen.items():
                setattr(conversation, name, value)
        if commit:
            conversation.save()
        return conversation


class DocumentForm(forms.Form):
    """A text or markdown file, sent as a cached system block with every request."""

    document = forms.FileField(label="Reference document (.txt or .md)")

    def clean_document(self) -> tuple[str, str]:
        upload = self.cleaned_data["document"]
        name = upload.name or "document"
        if not name.lower().endswith(DOCUMENT_SUFFIXES):
            raise forms.ValidationError("Attach a text or markdown file (.txt, .md).")
        if upload.size > settings.DOCUMENT_MAX_BYTES:
            raise forms.ValidationError(
                f"That file is {upload.size:,} bytes; the limit is "
                f"{settings.DOCUMENT_MAX_BYTES:,} bytes."
            )
        raw = upload.read(settings.DOCUMENT_MAX_BYTES + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("That file is not UTF-8 text.") from exc
        if "\x00" in text:
            raise forms.ValidationError("That file looks binary, not text.")
        if not text.strip():
            raise forms.ValidationError("That file is empty.")
        return name, text
