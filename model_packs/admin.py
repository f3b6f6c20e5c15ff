from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from model_packs import services
from model_packs.models import Pack, PackProvider
from model_packs.validation import PackRejected
from relay_project.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInline


class PackInstallForm(forms.Form):
    file = forms.FileField(
        required=False, label=_("File"), help_text=_("The pack as a zip archive.")
    )
    folder = forms.CharField(
        required=False,
        max_length=200,
        label=_("Folder"),
        help_text=_("Or a pack folder inside RELAY_PACKS_DIR."),
    )

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("folder")):
            raise forms.ValidationError(_("Give either a zip file or a folder name."))
        return data


class PackProviderInline(ReadOnlyInline):
    model = PackProvider
    fields = ("provider_id", "base_url", "smoke_test_model", "default_models", "prices_as_of")
    readonly_fields = fields


@admin.register(Pack)
class PackAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("pack_id", "version", "name", "is_current", "host_versions", "installed_at")
    list_filter = ("is_current",)
    search_fields = ("pack_id", "name")
    inlines = [PackProviderInline]
    change_list_template = "admin/model_packs/pack/change_list.html"

    def get_urls(self):
        extra = [
            path(
                "install/",
                self.admin_site.admin_view(self.install_view),
                name="model_packs_pack_install",
            )
        ]
        return extra + super().get_urls()

    def install_view(self, request: HttpRequest) -> HttpResponse:
        """Packs are installed only through the validating service, never by editing rows."""
        if not request.user.has_perm("model_packs.add_pack"):
            raise PermissionDenied
        form = PackInstallForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data.get("file"):
                    files = services.pack_files(zip_bytes=form.cleaned_data["file"].read())
                else:
                    folder = services.resolve_pack_folder(form.cleaned_data["folder"])
                    files = services.pack_files(folder=folder)
                pack, created = services.install_pack(
                    files=files, installed_by=request.user.get_username()
                )
            except PackRejected as exc:
                for field, message in exc.errors.items():
                    form.add_error(None, f"{field}: {message}")
            else:
                text = (
                    gettext("Installed: %(pack)s")
                    if created
                    else gettext("Already installed: %(pack)s")
                )
                self.message_user(
                    request, text % {"pack": f"{pack.pack_id} {pack.version}"}, messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:model_packs_pack_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Install a model pack"),
            "form": form,
        }
        return TemplateResponse(request, "admin/model_packs/pack/install.html", context)
