"""Forms of the admin's sign-off, revoke and applicability pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone


class SignOffForm(forms.Form):
    signer_role = forms.CharField(
        max_length=100, required=False, help_text="Defaults to the role the catalogue names."
    )
    environment = forms.CharField(max_length=100, required=False, initial="production")
    release = forms.CharField(label="Release or commit", max_length=100, required=False)
    evidence_url = forms.URLField(
        label="Evidence link", max_length=500, required=False, assume_scheme="https"
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    expires_at = forms.DateTimeField(
        label="Re-attest by",
        required=False,
        help_text="YYYY-MM-DD; when this must be signed again.",
    )

    def clean_expires_at(self) -> datetime | None:
        value = self.cleaned_data["expires_at"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The re-attestation date must be in the future.")
        return value


class RevokeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why the sign-off no longer holds."
    )


class ApplicabilityForm(forms.Form):
    applicable = forms.TypedChoiceField(
        choices=[("0", "Not applicable"), ("1", "Applicable")],
        coerce=lambda v: v == "1",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required when marking not applicable.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("applicable") is False and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why this does not apply to the project.")
        return data
