"""``manage.py install_pack PATH [--host NAME]``: install a model pack from a zip or a folder."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from hosts.models import Host
from model_packs.services import install_pack, pack_files
from model_packs.validation import PackRejected
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Install a model pack (a .zip or a folder with pack.json, providers/, checksums.txt)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the pack: a .zip file or a folder")
        parser.add_argument(
            "--host", metavar="NAME", help="check the pack's host version range against this host"
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["path"])
        host = None
        if options["host"]:
            host = Host.objects.filter(name=options["host"]).first()
            if host is None:
                raise CommandError(
                    _("--host: no host named %(name)s") % {"name": repr(options["host"])}
                )
        try:
            if path.is_dir():
                files = pack_files(folder=path)
            elif path.is_file():
                files = pack_files(zip_bytes=path.read_bytes())
            else:
                raise CommandError(
                    _("path: %(path)s is neither a zip file nor a folder") % {"path": path}
                )
            pack, created = install_pack(files=files, host=host, installed_by="manage.py")
        except PackRejected as exc:
            raise CommandError(
                _("pack rejected: %(problems)s")
                % {"problems": "; ".join(f"{k}: {v}" for k, v in exc.errors.items())}
            ) from None
        providers = ", ".join(p.provider_id for p in pack.providers.all())
        text = (
            _("installed: %(pack)s; providers: %(providers)s")
            if created
            else _("already installed: %(pack)s; providers: %(providers)s")
        )
        name = f"{pack.pack_id} {pack.version}"
        if pack.is_current:
            name = _("%(pack)s (current)") % {"pack": name}
        self.stdout.write(text % {"pack": name, "providers": providers})
