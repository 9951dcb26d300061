import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Create the demo superuser 'admin' (password from DEMO_ADMIN_PASSWORD, "
        "default 'admin') unless a superuser already exists. For the local demo only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="User name (admin).")

    def handle(self, *args, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("a superuser exists; nothing to do")
            return
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        users.objects.create_superuser(options["username"], "", password)
        self.stdout.write(f"created superuser {options['username']!r}")
