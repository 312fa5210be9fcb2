"""`manage.py addmember <username> --group <name> [--staff]`: a Django user in a group (the
group is created when missing), with the password read from standard input."""

import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a user in a group; the password is read from standard input."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--group", required=True, help="The group, which is also the user's Confab room.")
        parser.add_argument("--staff", action="store_true", help="May announce to the group.")

    def handle(self, *args, username, group, staff, **options):
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("no password on standard input")
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            raise CommandError(f"{username} exists already")
        user = users.objects.create_user(username=username, password=password, is_staff=staff)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        self.stdout.write(f"created {username} in {group}{' (staff)' if staff else ''}")
